//! `djinit-compile --out-dir DIR FILE.wasm...`: precompile WASI components for `djinit`.
//!
//! Writes `DIR/<name>.cwasm` for each `<name>.wasm` (only when its bytes change), compiled by Cranelift with the engine
//! configuration of `djinit-engine`, so `djinit` (built from the same djinit version) loads them
//! in well under a millisecond instead of compiling at start. Artifacts contain baseline machine
//! code for the build triple and load on any CPU of that triple. They are native code: only load
//! artifacts you built yourself.

use std::path::{Path, PathBuf};

use anyhow::Context;
use djinit_cli::{args::Arg, Args, Failure, UsageError};
use djinit_wait::Kind;

const HELP: &str = "\
Usage: djinit-compile --out-dir DIR FILE.wasm...

Precompile WASI components (wasm32-wasip2) for `djinit run` and for embedding in djinit.
Writes DIR/<name>.cwasm for each <name>.wasm. The artifacts only load into a djinit built from
the same djinit version (same wasmtime and engine configuration), on the same target triple.

Options:
  -o, --out-dir DIR   where to write the .cwasm files (created if missing)
  -h, --help          this help
      --version       print the version
";

fn main() -> std::process::ExitCode {
    djinit_cli::main("djinit-compile", djinit_cli::exit::no_library, run)
}

fn run() -> anyhow::Result<()> {
    let mut args = Args::from_env();
    let mut out_dir: Option<PathBuf> = None;
    let mut inputs: Vec<PathBuf> = Vec::new();
    while let Some(arg) = args.next()? {
        if arg.is('o', "out-dir") {
            out_dir = Some(args.value()?.into());
        } else if arg.is('h', "help") {
            print!("{HELP}\n{}", djinit_cli::exit::table());
            return Ok(());
        } else if arg.is_long("version") {
            println!(
                "djinit-compile {} (wasmtime 48, target {})",
                env!("CARGO_PKG_VERSION"),
                djinit_engine::TARGET
            );
            return Ok(());
        } else if let Arg::Value(v) = arg {
            inputs.push(v.into());
        } else {
            return Err(arg.unexpected().into());
        }
    }
    let out_dir = out_dir.ok_or_else(|| UsageError("--out-dir DIR is required".into()))?;
    if inputs.is_empty() {
        return Err(UsageError("no component given (FILE.wasm...)".into()).into());
    }
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let engine = djinit_engine::engine().map_err(|e| anyhow::anyhow!("{e:#}"))?;
    for input in &inputs {
        let out = compile_one(&engine, input, &out_dir)?;
        eprintln!("djinit-compile: {} -> {}", input.display(), out.display());
    }
    Ok(())
}

fn compile_one(engine: &wasmtime::Engine, input: &Path, out_dir: &Path) -> anyhow::Result<PathBuf> {
    let name = input
        .file_stem()
        .and_then(|s| s.to_str())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| UsageError(format!("{}: not a FILE.wasm path", input.display())))?;
    let wasm = std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;
    let cwasm = engine.precompile_component(&wasm).map_err(|e| {
        Failure::new(
            Kind::Data,
            format!(
                "{}: not a component this engine accepts: {e:#}",
                input.display()
            ),
        )
    })?;
    let out = out_dir.join(format!("{name}.cwasm"));
    // Same bytes as last time: leave the file (and its mtime) alone, so `runner/build.rs` does
    // not rerun and an unchanged tree does not relink djinit (15-25 s on 2 cores).
    if std::fs::read(&out).is_ok_and(|old| old == cwasm) {
        return Ok(out);
    }
    // Write then rename, so a concurrent `cargo build` of djinit never embeds half a file.
    let tmp = out_dir.join(format!(".{name}.cwasm.tmp"));
    std::fs::write(&tmp, &cwasm).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &out).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(out)
}
