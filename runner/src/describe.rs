//! Messages for errors of the wasm engine, one line each.

/// One line for a wasmtime error: the trap (`wasm trap: interrupt`), else the error's chain,
/// without the multi-line "error while executing at wasm backtrace:" context wasmtime adds to
/// every error of a guest call.
pub fn wasm_error(e: &wasmtime::Error) -> String {
    if let Some(trap) = e.downcast_ref::<wasmtime::Trap>() {
        return trap.to_string();
    }
    let parts: Vec<String> = e
        .chain()
        .map(|c| c.to_string())
        .filter(|s| !s.starts_with("error while executing at wasm backtrace"))
        .collect();
    djinit_cli::one_line(&parts.join(": "))
}
