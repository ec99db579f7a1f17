//! Shared command-line plumbing for djinit's components (and the native runner).
//!
//! A command's `main` is one line:
//!
//! ```no_run
//! fn run() -> anyhow::Result<()> { Ok(()) }
//! fn main() -> std::process::ExitCode { djinit_cli::main("wait4db", run) }
//! ```
//!
//! [`main`] prints any error as one line on stderr (`wait4db: error: ...`, never a stack trace)
//! and maps it to the exit code of [`exit::ExitCode`], the one table every djinit command uses.

pub mod args;
pub mod exit;
pub mod log;

pub use args::{Args, UsageError};
pub use exit::{ExitCode, Failure};
pub use log::Log;

/// Run `run`, print its error (if any) as one line on stderr and turn it into the process exit
/// code. The only place where errors become exit codes.
pub fn main(prog: &str, run: impl FnOnce() -> anyhow::Result<()>) -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            let code = exit::for_error(&err);
            if !exit::is_quiet(&err) {
                let label = if code == ExitCode::NotMet {
                    ""
                } else {
                    "error: "
                };
                eprintln!("{prog}: {label}{}", one_line(&format!("{err:#}")));
            }
            exit(code)
        }
    }
}

/// Leave with `code`. On wasm32-wasip2 this calls `wasi:cli/exit.exit-with-code`: the plain WASI 0.2
/// `exit` that std uses would turn every failure into 1.
pub fn exit(code: ExitCode) -> std::process::ExitCode {
    #[cfg(all(target_os = "wasi", target_env = "p2"))]
    if code != ExitCode::Ok {
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        wasip2::cli::exit::exit_with_code(code as u8);
    }
    std::process::ExitCode::from(code as u8)
}

/// Fold a message onto one line (server messages may contain newlines).
pub fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, part) in s
        .split(['\n', '\r'])
        .filter(|p| !p.trim().is_empty())
        .enumerate()
    {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(part.trim_end());
    }
    out
}
