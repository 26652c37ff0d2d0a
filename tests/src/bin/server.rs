//! `xuncha-server` for the end-to-end tests (same code, see `xuncha_server::cli`).

fn main() {
    xuncha_server::cli::main();
}
