//! The runner's own command line: `djinit [RUNNER OPTIONS] COMMAND [ARGS...]` and
//! `djinit [RUNNER OPTIONS] run [RUNNER OPTIONS] FILE [ARGS...]`.
//!
//! Runner options come before the command (or before `FILE` for `run`); everything after the
//! command name or `FILE` goes to the component unchanged.

use std::ffi::OsString;
use std::time::Duration;

use djinit_cli::log::Format;
use djinit_cli::{args::Arg, Args, UsageError};

use crate::grants::{DirGrant, EnvGrant, Grants, Target};

/// Default memory limit per component, MiB.
pub const DEFAULT_MEMORY_MIB: u64 = 64;

/// Runner options, each adding to (never removing from) what a command's policy grants.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--allow-net HOST:PORT`: outbound TCP to this address (repeatable).
    pub allow_tcp: Vec<Target>,
    /// `--allow-udp HOST:PORT`: UDP datagrams to and from this address (repeatable).
    pub allow_udp: Vec<Target>,
    /// `--dir HOST[::GUEST]` (read-only) and `--dir-rw HOST[::GUEST]`.
    pub dirs: Vec<DirGrant>,
    /// `--env NAME[=VALUE]`.
    pub env: Vec<EnvGrant>,
    /// `--memory MIB`: limit on the component's linear memories, all together.
    pub memory_mib: u64,
    /// `--timeout SECS`: wall-clock limit for the component.
    pub timeout: Option<Duration>,
    /// `--log-format {text,json}`: the runner's own lines and the embedded command's (passed as
    /// `DJINIT_LOG_FORMAT`); default from `DJINIT_LOG_FORMAT`, else text.
    pub log_format: Option<Format>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            allow_tcp: Vec::new(),
            allow_udp: Vec::new(),
            dirs: Vec::new(),
            env: Vec::new(),
            memory_mib: DEFAULT_MEMORY_MIB,
            timeout: None,
            log_format: None,
        }
    }
}

impl Options {
    /// Add what these options grant to `grants`.
    pub fn grant(&self, grants: &mut Grants) {
        grants.tcp.extend(self.allow_tcp.iter().cloned());
        grants.udp.extend(self.allow_udp.iter().cloned());
        grants.dirs.extend(self.dirs.iter().cloned());
    }
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Help,
    Version,
    /// An embedded command, by name.
    Command {
        name: String,
        args: Vec<String>,
    },
    /// `run FILE`: a component file (`.cwasm`, or `.wasm` with the `jit` feature).
    File {
        path: String,
        args: Vec<String>,
    },
}

pub struct Invocation {
    pub options: Options,
    pub action: Action,
}

/// Parse the runner's command line (without the program name).
pub fn parse<I>(args: I) -> Result<Invocation, UsageError>
where
    I: IntoIterator,
    I::Item: Into<OsString>,
{
    let mut args = Args::from_iter(args);
    let mut options = Options::default();
    let mut run_file = false;
    while let Some(arg) = args.next()? {
        if arg.is('h', "help") {
            return Ok(Invocation {
                options,
                action: Action::Help,
            });
        } else if arg.is('V', "version") {
            return Ok(Invocation {
                options,
                action: Action::Version,
            });
        } else if arg.is_long("allow-net") {
            options
                .allow_tcp
                .push(Target::parse(&args.value()?, "--allow-net")?);
        } else if arg.is_long("allow-udp") {
            options
                .allow_udp
                .push(Target::parse(&args.value()?, "--allow-udp")?);
        } else if arg.is_long("dir") {
            options.dirs.push(DirGrant::parse(&args.value()?, false)?);
        } else if arg.is_long("dir-rw") {
            options.dirs.push(DirGrant::parse(&args.value()?, true)?);
        } else if arg.is_long("env") {
            options.env.push(EnvGrant::parse(&args.value()?)?);
        } else if arg.is_long("memory") {
            let mib: u64 = args.number()?;
            if !(1..=65536).contains(&mib) {
                return Err(UsageError(format!(
                    "--memory expects 1 to 65536 (MiB), got {mib}"
                )));
            }
            options.memory_mib = mib;
        } else if arg.is_long("log-format") {
            let format = Format::parse(&args.value()?)
                .map_err(|m| UsageError(format!("--log-format {m}")))?;
            djinit_cli::log::format::set(format);
            options.log_format = Some(format);
        } else if arg.is_long("timeout") {
            let t = args.seconds()?;
            if t.is_zero() {
                return Err(UsageError("--timeout must be more than 0 seconds".into()));
            }
            options.timeout = Some(t);
        } else if let Arg::Value(v) = arg {
            if !run_file && v == "run" {
                // Runner options may also follow `run`, up to FILE.
                run_file = true;
                continue;
            }
            let action = if run_file {
                Action::File {
                    path: v,
                    args: args.rest()?,
                }
            } else if v == "help" {
                // `djinit help CMD` is `djinit CMD --help`, as in git and cargo.
                match args.next()? {
                    None => Action::Help,
                    Some(Arg::Value(name)) => Action::Command {
                        name,
                        args: vec!["--help".into()],
                    },
                    Some(other) => return Err(other.unexpected()),
                }
            } else {
                Action::Command {
                    name: v,
                    args: args.rest()?,
                }
            };
            return Ok(Invocation { options, action });
        } else {
            return Err(arg.unexpected());
        }
    }
    Err(UsageError(if run_file {
        "run needs a component FILE (see --help)".into()
    } else {
        "no command given (see --help)".into()
    }))
}

/// The command `name` was probably meant to be: the known one closest to it, if at most two edits
/// away (`wait4bd`, `ensure-admin`, `lockedmigrat`), for "did you mean" in the usage error.
pub fn suggest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| (edit_distance(name, k), k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k)
}

/// Optimal string alignment distance: insertions, deletions, substitutions and transpositions of
/// adjacent characters each cost 1 (`4bd` → `4db` is one edit).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// `--help` text: usage, runner options, the embedded commands. The exit-code table follows it.
pub fn help(commands: &[(String, String)]) -> String {
    let mut s = String::from(
        "\
Usage: djinit [RUNNER OPTIONS] COMMAND [ARGS...]
       djinit [RUNNER OPTIONS] run FILE [ARGS...]

Runs djinit's commands, WASI components embedded in this binary, each with least privilege:
only the environment variables the command reads, outbound TCP only to the database it will use
(from -d/--database ALIAS, default DATABASE_URL), host name lookup, no UDP, no directories.
`run FILE` runs any WASI wasi:cli/command component (.cwasm from djinit-compile; .wasm only
in builds with the `jit` feature) with nothing granted but what the options below add.
Runner options go before COMMAND (or FILE); the rest goes to the component.

Commands (`djinit COMMAND --help` for each):
",
    );
    if commands.is_empty() {
        s.push_str("  (none: this build embeds no components; run `just build`)\n");
    }
    for (name, summary) in commands {
        s.push_str(&format!("  {name:<18}{summary}\n"));
    }
    s.push_str(
        "\
Runner options (each adds to what the command is granted):
  --allow-net HOST:PORT   allow outbound TCP to HOST:PORT (repeatable; names re-resolved on use)
  --allow-udp HOST:PORT   allow UDP datagrams to and from HOST:PORT (repeatable)
  --dir HOST[::GUEST]     mount host directory HOST read-only at GUEST (default: same path)
  --dir-rw HOST[::GUEST]  the same, writable
  --env NAME[=VALUE]      set NAME in the component (NAME alone: pass the host's value)
  --memory MIB            memory limit of the component, all linear memories (default 64)
  --timeout SECS          wall-clock limit for the component (exit 71 when exceeded)
  --log-format F          text (default) or json, for the runner's lines and the command's
                          (one object per line; env DJINIT_LOG_FORMAT)
  -h, --help              this help
  -V, --version           print the version
  help COMMAND            the same as COMMAND --help

A denied connection shows in the component as \"permission denied\" (exit 77).
SIGINT/SIGTERM stop the component at once (exit 130/143).
",
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(a: &[&str]) -> Invocation {
        parse(a.iter().copied()).unwrap()
    }

    #[test]
    fn options_before_command_and_rest_untouched() {
        let inv = parse_ok(&[
            "--allow-net",
            "db:5432",
            "--env",
            "A=1",
            "--memory=32",
            "--timeout",
            "2.5",
            "wait4db",
            "--env",
            "x",
            "-t",
            "5",
        ]);
        assert_eq!(
            inv.action,
            Action::Command {
                name: "wait4db".into(),
                args: vec!["--env".into(), "x".into(), "-t".into(), "5".into()]
            }
        );
        assert_eq!(
            inv.options.allow_tcp,
            vec![Target {
                host: "db".into(),
                port: 5432
            }]
        );
        assert_eq!(inv.options.memory_mib, 32);
        assert_eq!(inv.options.timeout, Some(Duration::from_millis(2500)));
        assert_eq!(inv.options.env.len(), 1);
    }

    #[test]
    fn run_file_takes_options_before_file() {
        let inv = parse_ok(&["run", "--env", "X", "a.cwasm", "-v", "3"]);
        assert_eq!(
            inv.action,
            Action::File {
                path: "a.cwasm".into(),
                args: vec!["-v".into(), "3".into()]
            }
        );
        assert_eq!(inv.options.env.len(), 1);
    }

    #[test]
    fn help_version_and_errors() {
        assert_eq!(parse_ok(&["--help"]).action, Action::Help);
        assert_eq!(parse_ok(&["help"]).action, Action::Help);
        assert_eq!(parse_ok(&["--version"]).action, Action::Version);
        assert_eq!(parse_ok(&["-V"]).action, Action::Version);
        assert_eq!(
            parse_ok(&["help", "wait4db"]).action,
            Action::Command {
                name: "wait4db".into(),
                args: vec!["--help".into()]
            }
        );
        assert!(parse(["help", "-x"]).is_err());
        assert!(parse(["--bogus", "wait4db"]).is_err());
        assert!(parse(Vec::<String>::new()).is_err());
        assert!(parse(["run"]).is_err());
        assert!(parse(["--memory", "0", "x"]).is_err());
        assert!(parse(["--timeout", "0", "x"]).is_err());
        assert!(parse(["--allow-net", "nohost", "x"]).is_err());
    }

    #[test]
    fn did_you_mean() {
        let known = [
            "wait4db",
            "dns-discover",
            "ensureadmin",
            "lockedmigrate",
            "checkmigrations",
        ];
        assert_eq!(suggest("wait4bd", known), Some("wait4db"));
        assert_eq!(suggest("ensure-admin", known), Some("ensureadmin"));
        assert_eq!(suggest("lockedmigrat", known), Some("lockedmigrate"));
        assert_eq!(suggest("migrate", known), None);
        assert_eq!(suggest("", known), None);
    }
}
