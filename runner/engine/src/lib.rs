//! The one [`wasmtime::Config`] djinit uses to precompile components (`djinit-compile`) and to run
//! them (`djinit`).
//!
//! A precompiled component (`.cwasm`) only loads into an engine whose configuration matches the
//! one that compiled it (wasm features, tunables, epoch interruption, target). Both sides build
//! their engine with [`engine`], so they cannot drift apart.
//!
//! Settings and why:
//!
//! * **Component model** on; component-model async (WASIp3) off.
//! * **Wasm features** listed explicitly ([`WASM_FEATURES`]): the WebAssembly 2.0 set (MVP,
//!   mutable globals, sign extension, saturating float-to-int, bulk memory, reference types,
//!   multi-value, fixed-width SIMD) plus tail calls, extended constant expressions and
//!   multi-memory. Off: threads and shared memory, relaxed SIMD (non-deterministic), GC (also
//!   compiled out of wasmtime), exceptions, memory64, stack switching. A component using a feature outside the list is
//!   rejected when it is compiled, not at run time.
//! * **Epoch interruption** on: the runner bumps the epoch to stop a CPU-bound guest (SIGTERM,
//!   SIGINT, `--timeout`).
//! * **Async**: always available in wasmtime 48 (`Config::async_support` is a no-op there); the
//!   runner drives components with `instantiate_async`/`call_run` so a guest blocked in a host
//!   call (sleep, socket read) can be abandoned promptly.
//! * **No native unwind info, no address map** in the compiled code: smaller artifacts and no
//!   quadratic unwind-table registration at load and exit (see [`config`]); traps still report
//!   their message (the runner prints one line, without backtrace).
//! * **Portable machine code**: the target triple is set explicitly to the triple this crate is
//!   built for. Wasmtime then infers no host CPU features, so Cranelift emits baseline code
//!   (x86-64: SSE2 only; aarch64: ARMv8.0 without LSE) and a `.cwasm` built on one machine loads
//!   on any CPU of the same triple. On load wasmtime still checks every CPU feature an artifact
//!   was compiled with against the host and refuses a mismatch with a clear error. djinit's
//!   components are network-bound, so baseline code costs nothing measurable.

use wasmtime::{Config, Engine, WasmFeatures};

/// The target triple the engine compiles for: the triple this crate was built for.
pub const TARGET: &str = env!("DJINIT_ENGINE_TARGET");

/// Every WebAssembly feature the engine accepts; everything else is off.
pub const WASM_FEATURES: WasmFeatures = WasmFeatures::WASM2
    // A wasmparser pseudo-feature (typed function references in the type section) that wasmtime
    // ties to its `gc` cargo feature, which djinit leaves out.
    .difference(WasmFeatures::GC_TYPES)
    .union(WasmFeatures::TAIL_CALL)
    .union(WasmFeatures::EXTENDED_CONST)
    .union(WasmFeatures::MULTI_MEMORY)
    .union(WasmFeatures::COMPONENT_MODEL);

/// The configuration shared by the compiler and the runner.
pub fn config() -> Config {
    let mut config = Config::new();
    // Errors only for an unknown triple; TARGET is the triple rustc built us for.
    config
        .target(TARGET)
        .expect("wasmtime supports the triple djinit is built for");
    config.wasm_features(WasmFeatures::all().difference(WASM_FEATURES), false);
    config.wasm_features(WASM_FEATURES, true);
    config.wasm_component_model(true);
    config.concurrency_support(false);
    config.epoch_interruption(true);
    // No native unwind info (.eh_frame) for guest code: nothing unwinds through guest frames
    // (wasmtime walks them by frame pointer), and registering/deregistering it costs quadratic
    // time in the static build's unwinder (LLVM libunwind keeps one list entry per function: ~7 ms
    // of every 15 ms start-up was spent removing them at exit). Also 160 KB less per component.
    config.native_unwind_info(false);
    // No native-to-wasm address map: it only adds wasm offsets to trap backtraces, which the
    // runner reduces to one line anyway (exec::describe). ~400 KB (11 %) less per component.
    config.generate_address_map(false);
    config
}

/// An engine with [`config`]. With the `compiler` feature it can compile `.wasm`; without it it
/// only loads precompiled `.cwasm` produced by an engine with the same configuration.
pub fn engine() -> wasmtime::Result<Engine> {
    Engine::new(&config())
}

/// Whether this build can compile `.wasm` components (the `compiler` feature).
pub const CAN_COMPILE: bool = cfg!(feature = "compiler");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_builds_with_the_shared_config() {
        engine().expect("the shared configuration is valid for this build");
    }

    #[test]
    fn feature_list_is_explicit() {
        assert!(WASM_FEATURES.contains(WasmFeatures::COMPONENT_MODEL));
        assert!(WASM_FEATURES.contains(WasmFeatures::SIMD));
        assert!(!WASM_FEATURES.contains(WasmFeatures::THREADS));
        assert!(!WASM_FEATURES.contains(WasmFeatures::RELAXED_SIMD));
        assert!(!WASM_FEATURES.contains(WasmFeatures::MEMORY64));
        assert!(!WASM_FEATURES.contains(WasmFeatures::GC_TYPES));
    }

    #[cfg(feature = "compiler")]
    #[test]
    fn precompiled_components_load_into_the_runtime_engine() {
        // The smallest valid component.
        let wasm = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
        let engine = engine().unwrap();
        let cwasm = engine.precompile_component(&wasm).unwrap();
        // SAFETY: `cwasm` was produced just above by an engine with this configuration.
        unsafe { wasmtime::component::Component::deserialize(&engine, &cwasm) }.unwrap();
    }
}
