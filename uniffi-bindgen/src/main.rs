//! `uniffi-bindgen`, built from the same uniffi version as `xuncha-ffi` (see docs/mobile.md).

fn main() {
    uniffi::uniffi_bindgen_main()
}
