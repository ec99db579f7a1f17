//! Shared command-line plumbing for djinit's components (and the native runner).
//!
//! A command's `main` is one line:
//!
//! ```no_run
//! fn run() -> anyhow::Result<()> { Ok(()) }
//! # fn classify(_: &(dyn std::error::Error + 'static)) -> Option<djinit_wait::Kind> { None }
//! fn main() -> std::process::ExitCode { djinit_cli::main("wait4db", classify, run) }
//! ```
//!
//! [`main`] prints any error as one line on stderr (`wait4db: error: ...`, never a stack trace)
//! and maps it to the exit code of [`exit::ExitCode`], the one table every djinit command uses.
//! Libraries never name an exit code: their errors report a `djinit_wait::Kind`, found in the
//! error chain by the classifier the command passes (e.g. `djinit_pg::classify`), and
//! [`exit::for_kind`] is the one mapping from kinds to codes. This crate does not depend on the
//! PostgreSQL client.

pub mod args;
pub mod exit;
pub mod log;
pub mod needs;

pub use args::{Args, CommandLine, Env, Parsed, UsageError};
pub use exit::{ExitCode, Failure};
pub use log::Log;
pub use needs::{HostCommand, HostRun, Needs, Peer};

/// Run `run`, print its error (if any) as one line on stderr and turn it into the process exit
/// code. The only place where errors become exit codes.
pub fn main(
    prog: &str,
    classify: djinit_wait::Classifier,
    run: impl FnOnce() -> anyhow::Result<()>,
) -> std::process::ExitCode {
    if let Err(m) = log::format::init_from_env() {
        eprintln!("{prog}: error: {}", one_line(&m));
        return exit(ExitCode::Usage);
    }
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            let code = exit::for_error(&err, classify);
            if !exit::is_quiet(&err) {
                print_error(prog, code, &format!("{err:#}"));
            }
            exit(code)
        }
    }
}

/// The one line for a command's failure with exit `code`: `prog: error: message` (`prog: message`
/// for "not met", which is an answer rather than an error); in JSON with `exit_code`,
/// `exit_name` and `retry_may_help`.
pub fn print_error(prog: &str, code: ExitCode, msg: &str) {
    let (level, label) = if code == ExitCode::NotMet {
        (log::Level::Warn, "")
    } else {
        (log::Level::Error, "error: ")
    };
    log::format::emit(
        prog,
        level,
        label,
        msg,
        &[
            ("exit_code", (code as u8).into()),
            ("exit_name", code.name().into()),
            ("retry_may_help", code.retry_may_help().into()),
        ],
    );
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

/// Fold a message onto one line (server messages may contain newlines) and escape what a
/// terminal would act on ([`escape_controls`]). Every line djinit prints goes through this or
/// [`print_line`].
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
        out.push_str(&escape_controls(part.trim_end()));
    }
    out
}

/// Print one line on stdout, control characters escaped: for lines that carry names from a
/// file or the network (migration names from a bundle, rows of `django_migrations`).
pub fn print_line(line: impl AsRef<str>) {
    println!("{}", escape_controls(line.as_ref()));
}

/// `s` with control characters written out as escapes a terminal does not act on, readable:
/// C0 and C1 controls and DEL as `\x1b`, tab as `\t`; the invisible Unicode characters that
/// reorder or hide text (bidirectional overrides and isolates, line/paragraph separators) as
/// `\u{202e}`. Text from a server, a DNS answer, a bundle or a file can carry `ESC[2J` or an
/// OSC title sequence; printed raw, it would rewrite the operator's screen.
pub fn escape_controls(s: &str) -> std::borrow::Cow<'_, str> {
    fn hostile(c: char) -> bool {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }
    if !s.chars().any(hostile) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            c if c.is_control() && (c as u32) < 0x100 => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if hostile(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_escapes_are_written_out() {
        assert_eq!(
            one_line("boom\x1b[2J\x1b]0;owned\x07 at\r\n line 2\u{9b}\u{202e}"),
            "boom\\x1b[2J\\x1b]0;owned\\x07 at  line 2\\x9b\\u{202e}"
        );
        assert_eq!(escape_controls("tab\there\x7f"), "tab\\there\\x7f");
        assert_eq!(escape_controls("plain ünïcode ✓"), "plain ünïcode ✓");
        assert!(matches!(
            escape_controls("nothing to do"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
