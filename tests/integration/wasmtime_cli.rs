//! The plain components under the wasmtime CLI 48 (`wasmtime run`), exactly as the README's
//! recipes give them.

use crate::harness::Host;

/// Every recipe of the README's "wasmtime CLI 48" section (see `readme_recipes.rs`).
#[test]
fn readme_recipes_run_under_the_wasmtime_cli() {
    crate::readme_recipes::run_all(Host::WasmtimeCli);
}
