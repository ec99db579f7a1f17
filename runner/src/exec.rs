//! Running one component: load, link WASI, instantiate, call `wasi:cli/run`, map the outcome to
//! an exit code.
//!
//! Start-up stays lean: one engine, only the component being run is deserialized (no
//! compilation), one current-thread event loop. The guest runs on a wasmtime fiber driven by
//! that loop, racing [`Stopper::stopped`], so a stop request wins even while the guest waits in a
//! host call.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use djinit_cli::{ExitCode, Failure, UsageError};
use djinit_wait::Kind;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Precompiled, Store};
use wasmtime_wasi::p2::bindings::Command;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};

use crate::cli::Options;
use crate::describe::wasm_error;
use crate::files::FileMounts;
use crate::grants::Grants;
use crate::limits::MemoryLimit;
use crate::policy::{self, EnvView};
use crate::stop::Stopper;

/// Where the component comes from.
pub enum Source {
    /// Embedded in this binary (precompiled by this build, compressed).
    Embedded(crate::embedded::Packed),
    /// `djinit run FILE`.
    File(PathBuf),
}

/// One run: what to run, with which arguments, environment, grants and limits.
pub struct Run {
    /// For messages: the command name or the file name.
    pub label: String,
    pub source: Source,
    /// `argv[0]` and the arguments.
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub grants: Grants,
    pub memory_mib: u64,
    pub timeout: Option<Duration>,
}

impl Run {
    /// A run of `source` as `label` with `args`: `grants` (the command table's, none for a file)
    /// plus what the runner `options` grant, and the environment the component sees (the
    /// granted variables set on the host, every `--env`, and values the policy computed).
    pub fn new(
        options: &Options,
        label: String,
        source: Source,
        args: Vec<String>,
        mut grants: Grants,
    ) -> Result<Run, Failure> {
        options.grant(&mut grants);
        let view = EnvView {
            overrides: &options.env,
        };
        let mut env = view.select(&grants.env)?;
        for (k, v) in &grants.env_set {
            env.entry(k.clone()).or_insert_with(|| v.clone());
        }
        Ok(Run {
            argv: std::iter::once(label.clone()).chain(args).collect(),
            label,
            source,
            env,
            grants,
            memory_mib: options.memory_mib,
            timeout: options.timeout,
        })
    }
}

pub(crate) struct Host {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limits: MemoryLimit,
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// What every run sets up before calling into the guest.
pub(crate) struct Prepared {
    pub engine: Engine,
    pub stopper: Stopper,
    pub component: Component,
    pub rt: tokio::runtime::Runtime,
    pub host: Host,
    /// Must outlive the run: may hold private copies of granted files.
    pub _files: FileMounts,
}

/// Start watching for stop requests, load the component, build its WASI context and the event
/// loop.
pub(crate) fn prepare(run: &Run) -> anyhow::Result<Prepared> {
    let engine = djinit_engine::engine()
        .map_err(|e| anyhow::anyhow!("cannot configure the wasm engine: {}", wasm_error(&e)))?;
    let stopper = Stopper::start(&engine, run.timeout)?;
    let component = load(&engine, &run.source, &run.label)?;
    let (wasi, files) = policy::wasi_ctx(&run.argv, &run.env, &run.grants)?;
    let limit = usize::try_from(run.memory_mib << 20).unwrap_or(usize::MAX);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .context("cannot start the event loop")?;
    Ok(Prepared {
        engine,
        stopper,
        component,
        rt,
        host: Host {
            wasi,
            table: ResourceTable::new(),
            limits: MemoryLimit::new(limit),
        },
        _files: files,
    })
}

/// The WASI imports (0.2, async), the only thing djinit links into a component. `exit-with-code`,
/// which carries djinit's exit-code table across the component boundary, is stable in WASI
/// 0.2.12 and linked by default in wasmtime-wasi 48.
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Linker<Host>> {
    let mut linker = Linker::<Host>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    Ok(linker)
}

/// A store for one run: the memory limit, and a trap at the first epoch bump (which only a stop
/// request makes).
pub(crate) fn store(engine: &Engine, host: Host) -> Store<Host> {
    let mut store = Store::new(engine, host);
    store.limiter(|h| &mut h.limits);
    store.set_epoch_deadline(1);
    store.epoch_deadline_trap();
    store
}

/// Run `run` to completion (or until stopped); the component's exit code.
pub fn run(run: Run) -> anyhow::Result<u8> {
    let p = prepare(&run)?;
    let stopper = &p.stopper;
    let (outcome, memory_exceeded) =
        p.rt.block_on(drive(&p.engine, &p.component, p.host, stopper));
    let label = &run.label;
    // A stop request explains whatever the guest did after it (e.g. the epoch trap).
    if let Some(reason) = stopper.reason() {
        if reason == crate::stop::Reason::Terminate && run.grants.sigterm_is_shutdown {
            crate::stdio::note!("{label} stopped by SIGTERM: normal shutdown");
            return Ok(0);
        }
        return Err(Failure::new(reason.kind(), format!("{label} {}", reason.describe())).into());
    }
    if memory_exceeded {
        return Err(Failure::new(
            Kind::Limit,
            format!(
                "{label} stopped: memory limit of {} MiB exceeded (--memory)",
                run.memory_mib
            ),
        )
        .into());
    }
    match outcome {
        Outcome::Stopped => unreachable!("stopped without a reason"),
        Outcome::Ran(Ok(())) => Ok(0),
        // `wasi:cli/run` returned an error without a code: exit 1, as wasmtime and libc do.
        Outcome::Ran(Err(())) => Ok(1),
        Outcome::Failed(e) => {
            if let Some(exit) = e.downcast_ref::<I32Exit>() {
                return Ok(u8::try_from(exit.0).unwrap_or(ExitCode::Software as u8));
            }
            let what = match e.downcast_ref::<wasmtime::Trap>() {
                Some(trap) => format!("{label} crashed: {trap}"),
                None => format!("{label} failed: {}", wasm_error(&e)),
            };
            Err(Failure::new(Kind::Internal, what).into())
        }
        Outcome::NotACommand(e) => {
            let kind = match run.source {
                Source::Embedded(_) => Kind::Internal,
                Source::File(_) => Kind::Data,
            };
            Err(Failure::new(
                kind,
                format!(
                    "{label} is not a wasi:cli/command component djinit can run: {}",
                    wasm_error(&e)
                ),
            )
            .into())
        }
    }
}

enum Outcome {
    Stopped,
    NotACommand(wasmtime::Error),
    Failed(wasmtime::Error),
    /// What `wasi:cli/run` returned.
    Ran(Result<(), ()>),
}

async fn drive(
    engine: &Engine,
    component: &Component,
    host: Host,
    stopper: &Stopper,
) -> (Outcome, bool) {
    let mut store = store(engine, host);
    let outcome = {
        let call = async {
            let linker = match linker(engine) {
                Ok(l) => l,
                Err(e) => return Outcome::Failed(e),
            };
            let command = match Command::instantiate_async(&mut store, component, &linker).await {
                Ok(c) => c,
                Err(e) if e.downcast_ref::<wasmtime::Trap>().is_some() => {
                    return Outcome::Failed(e)
                }
                Err(e) if store.data().limits.exceeded() => return Outcome::Failed(e),
                Err(e) => return Outcome::NotACommand(e),
            };
            match command.wasi_cli_run().call_run(&mut store).await {
                Ok(r) => Outcome::Ran(r),
                Err(e) => Outcome::Failed(e),
            }
        };
        tokio::select! {
            biased;
            _ = stopper.stopped() => Outcome::Stopped,
            o = call => o,
        }
    };
    let exceeded = store.data().limits.exceeded();
    (outcome, exceeded)
}

/// Load the component without compiling (precompiled), or compile a `.wasm` in `jit` builds.
pub(crate) fn load(engine: &Engine, source: &Source, label: &str) -> anyhow::Result<Component> {
    match source {
        Source::Embedded(packed) => {
            let bytes = packed.unpack().map_err(|e| {
                Failure::new(
                    Kind::Internal,
                    format!("the embedded {label} component is corrupt ({e}): rebuild with `just build`"),
                )
            })?;
            // SAFETY: `deserialize` trusts its input to be wasmtime's own compiled output (it is
            // native code). These bytes are this build's own: `build.rs` embeds the `.cwasm` files
            // `djinit-compile` produced from our components with `djinit_engine::config()`, the
            // configuration of `engine`. wasmtime still checks the header, version and
            // configuration and refuses a mismatch.
            unsafe { Component::deserialize(engine, &bytes) }.map_err(|e| {
                Failure::new(
                    Kind::Internal,
                    format!(
                        "the embedded {label} component does not load ({}): rebuild with `just build`",
                        wasm_error(&e)
                    ),
                )
                .into()
            })
        }
        Source::File(path) => {
            let shown = path.display();
            let bytes = std::fs::read(path)
                .map_err(|e| Failure::new(Kind::NoInput, format!("cannot read {shown}: {e}")))?;
            match Engine::detect_precompiled(&bytes) {
                Some(Precompiled::Component) => {
                    // SAFETY: as above, `deserialize` runs the file's native code. `djinit run`
                    // documents that it loads `.cwasm` files as trusted code, to be produced by
                    // `djinit-compile` (same engine configuration); wasmtime checks the header,
                    // version, configuration and CPU features before using it.
                    unsafe { Component::deserialize(engine, &bytes) }.map_err(|e| {
                        Failure::new(
                            Kind::Data,
                            format!(
                                "{shown} was precompiled for another djinit version or machine ({}): precompile it again with this djinit's djinit-compile",
                                wasm_error(&e)
                            ),
                        )
                        .into()
                    })
                }
                Some(Precompiled::Module) => Err(Failure::new(
                    Kind::Data,
                    format!("{shown} is a precompiled core module, not a component"),
                )
                .into()),
                None if bytes.starts_with(b"\0asm") => compile(engine, &bytes, path),
                None => Err(Failure::new(
                    Kind::Data,
                    format!("{shown} is neither a WebAssembly component nor a precompiled .cwasm"),
                )
                .into()),
            }
        }
    }
}

#[cfg(feature = "jit")]
fn compile(engine: &Engine, bytes: &[u8], path: &std::path::Path) -> anyhow::Result<Component> {
    Component::new(engine, bytes).map_err(|e| {
        Failure::new(
            Kind::Data,
            format!(
                "{} is not a component this engine accepts: {}",
                path.display(),
                wasm_error(&e)
            ),
        )
        .into()
    })
}

#[cfg(not(feature = "jit"))]
fn compile(_engine: &Engine, _bytes: &[u8], path: &std::path::Path) -> anyhow::Result<Component> {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("NAME");
    Err(UsageError(format!(
        "{} is not precompiled and this djinit runs precompiled components only: run `djinit-compile --out-dir DIR {}`, then `djinit run DIR/{stem}.cwasm` (or build djinit with `--features jit`)",
        path.display(),
        path.display()
    ))
    .into())
}
