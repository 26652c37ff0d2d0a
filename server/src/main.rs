//! `xuncha-server`: the sync server and supervisor dashboard (see `xuncha_server::cli`).

fn main() {
    xuncha_server::cli::main();
}
