//! `djinit`: runs djinit's embedded command components, or any WASI command component, with
//! least privilege. See `djinit --help`.

mod child;
mod cli;
mod commands;
mod embedded;
mod exec;
mod files;
mod limits;
mod lock_exec;
mod net;
mod policy;
mod stdio;
mod stop;

use std::path::{Path, PathBuf};

use djinit_cli::{Failure, UsageError};
use djinit_wait::Kind;

use crate::cli::Action;
use crate::exec::{Run, Source};
use crate::policy::{EnvView, Grants};

fn main() -> std::process::ExitCode {
    match run() {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => djinit_cli::main("djinit", djinit_cli::exit::no_library, || Err(e)),
    }
}

/// The exit code of the component, or the runner's own error.
fn run() -> anyhow::Result<u8> {
    djinit_cli::log::format::init_from_env().map_err(UsageError)?;
    let inv = cli::parse(std::env::args_os().skip(1))?;
    let options = inv.options;
    match inv.action {
        Action::Help => {
            let commands: Vec<(String, String)> = embedded::names()
                .map(|n| {
                    let summary = commands::find(n).map_or("", |c| c.summary);
                    (n.to_string(), summary.to_string())
                })
                .collect();
            stdio::print(&format!(
                "{}\n{}",
                cli::help(&commands),
                djinit_cli::exit::table()
            ));
            Ok(0)
        }
        Action::Version => {
            let names: Vec<&str> = embedded::names().collect();
            stdio::print(&format!(
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
            ));
            Ok(0)
        }
        Action::Command { name, args } => {
            let Some(bytes) = embedded::get(&name) else {
                if embedded::is_empty() {
                    return Err(Failure::new(
                        Kind::Internal,
                        "this djinit build has no embedded components (built without target/precompiled/*.cwasm): run `just build`",
                    )
                    .into());
                }
                let names: Vec<&str> = embedded::names().collect();
                let hint = cli::suggest(&name, names.iter().copied())
                    .map(|n| format!("did you mean {n:?}? "))
                    .unwrap_or_default();
                return Err(UsageError(format!(
                    "unknown command {name:?} ({hint}commands: {}; see --help)",
                    names.join(", ")
                ))
                .into());
            };
            let view = EnvView {
                overrides: &options.env,
            };
            // A command without a policy module gets only what the options grant.
            let mut grants = commands::find(&name)
                .map(|c| c.grants(&args, &view))
                .unwrap_or_default();
            grants.extend_with(&options);
            // Every embedded command writes its lines in the runner's format.
            grants.env.push(djinit_cli::log::format::ENV_VAR.into());
            let mut env = view.select(&grants.env)?;
            if let Some(format) = options.log_format {
                env.insert(
                    djinit_cli::log::format::ENV_VAR.into(),
                    format.name().into(),
                );
            }
            for (k, v) in &grants.env_set {
                env.entry(k.clone()).or_insert_with(|| v.clone());
            }
            // `lockedmigrate --exec -- CMD`: the lock through the component, CMD natively.
            let exec_split = (name == "lockedmigrate")
                .then(|| lock_exec::split(&args))
                .flatten();
            let argv = std::iter::once(name.clone()).chain(args).collect();
            if let Some((lock_args, cmd)) = exec_split {
                return lock_exec::run(
                    Run {
                        label: name,
                        source: Source::Embedded(bytes),
                        argv,
                        env,
                        grants,
                        memory_mib: options.memory_mib,
                        timeout: options.timeout,
                    },
                    lock_args,
                    cmd,
                );
            }
            exec::run(Run {
                label: name,
                source: Source::Embedded(bytes),
                argv,
                env,
                grants,
                memory_mib: options.memory_mib,
                timeout: options.timeout,
            })
        }
        Action::File { path, args } => {
            let path = PathBuf::from(path);
            let label = file_label(&path);
            let mut grants = Grants::default();
            grants.extend_with(&options);
            let env = EnvView {
                overrides: &options.env,
            }
            .select(&[])?;
            let argv = std::iter::once(label.clone()).chain(args).collect();
            exec::run(Run {
                label,
                source: Source::File(path),
                argv,
                env,
                grants,
                memory_mib: options.memory_mib,
                timeout: options.timeout,
            })
        }
    }
}

/// `argv[0]` and the name in messages for `run FILE`: the file name without extension.
fn file_label(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("component")
        .to_string()
}
