//! `djinit`: runs djinit's embedded command components, or any WASI command component, with
//! least privilege. See `djinit --help`.
//!
//! Modules, bottom up: [`grants`] (what may be granted: plain data), [`cli`] (the runner's own
//! command line), [`commands`] (the command table: each command's own `needs`, turned into
//! grants; why needs come from the command libraries rather than through WIT is argued there),
//! [`policy`], [`net`], [`files`] (enforcing grants in the WASI context), [`exec`] (one way to
//! run a component: `prepare`, then `wasi:cli/run` or [`lock_exec`]'s session), [`launch`]
//! (from a command line to a run). `main` only dispatches.

mod child;
mod cli;
mod commands;
mod describe;
mod embedded;
mod exec;
mod files;
mod grants;
mod launch;
mod limits;
mod lock_exec;
mod net;
mod policy;
mod stdio;
mod stop;

use std::path::PathBuf;

/// The static (musl) build allocates with mimalloc: with musl's malloc, start-up of an embedded
/// command was 1.8x the glibc build's (`just bench ship`, issue 12). glibc builds keep glibc's.
#[cfg(target_env = "musl")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use crate::cli::Action;

fn main() -> std::process::ExitCode {
    match run() {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => djinit_cli::main("djinit", djinit_cli::exit::no_library, || Err(e)),
    }
}

/// The exit code of the component, or the runner's own error.
fn run() -> anyhow::Result<u8> {
    djinit_cli::log::format::init_from_env().map_err(djinit_cli::UsageError)?;
    let inv = cli::parse(std::env::args_os().skip(1))?;
    match inv.action {
        Action::Help => {
            stdio::print(&help());
            Ok(0)
        }
        Action::Version => {
            stdio::print(&version());
            Ok(0)
        }
        Action::Command { name, args } => launch::command(&inv.options, name, args),
        Action::File { path, args } => launch::file(&inv.options, PathBuf::from(path), args),
    }
}

/// `djinit --help`: usage, the embedded commands with their summaries, the exit-code table.
fn help() -> String {
    let commands: Vec<(String, String)> = embedded::names()
        .map(|n| {
            let summary = commands::find(n).map_or("", |c| c.summary);
            (n.to_string(), summary.to_string())
        })
        .collect();
    format!("{}\n{}", cli::help(&commands), djinit_cli::exit::table())
}

/// `djinit --version`: versions, target, and the embedded commands.
fn version() -> String {
    let names: Vec<&str> = embedded::names().collect();
    format!(
        "djinit {} (wasmtime 48.0.8, {}{}; commands: {})\n",
        env!("CARGO_PKG_VERSION"),
        djinit_engine::TARGET,
        if djinit_engine::CAN_COMPILE {
            ", jit"
        } else {
            ""
        },
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    )
}
