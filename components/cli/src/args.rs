//! Argument parsing helpers on top of `lexopt` (small enough for 1 MiB components).
//!
//! Every command accepts the flags of the Django management commands it replaces, so a manifest
//! switches with a one-line change: `-d/--database`, `-v/--verbosity {0,1,2,3}`, `-V/--version`,
//! `-h/--help`, and, accepted and ignored, `--settings X`, `--pythonpath X`, `--traceback`,
//! `--no-color`, `--force-color`, `--skip-checks`. Beyond them: `--log-format {text,json}`.
//!
//! Parsing is pure: it never prints and never exits. `-h/--help` and `--version` stop the parse
//! with [`Parsed::Help`] / [`Parsed::Version`] carrying the text, which the command prints
//! ([`Parsed::or_print`]); the djinit runner parses the same command line with the same code to
//! compute what the command needs, and must not exit or print while doing so.

use std::ffi::OsString;
use std::str::FromStr;
use std::time::Duration;

/// A bad command line. Kind `Usage` (exit code 64).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl djinit_wait::Classify for UsageError {
    fn kind(&self) -> djinit_wait::Kind {
        djinit_wait::Kind::Usage
    }
}

/// One command-line item, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Short(char),
    Long(String),
    Value(String),
}

impl Arg {
    /// `-s` or `--long`.
    pub fn is(&self, short: char, long: &str) -> bool {
        self.is_short(short) || self.is_long(long)
    }
    pub fn is_short(&self, short: char) -> bool {
        matches!(self, Arg::Short(c) if *c == short)
    }
    pub fn is_long(&self, long: &str) -> bool {
        matches!(self, Arg::Long(l) if l == long)
    }
    /// The usage error for an argument the command does not know.
    pub fn unexpected(&self) -> UsageError {
        match self {
            Arg::Short(c) => UsageError(format!("unknown option -{c} (see --help)")),
            Arg::Long(l) => UsageError(format!("unknown option --{l} (see --help)")),
            Arg::Value(v) => UsageError(format!("unexpected argument {v:?} (see --help)")),
        }
    }
}

/// What a command line asks for: run with these options, or print help or the version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<T> {
    Run(T),
    /// `-h/--help`: the command's help followed by the exit-code table.
    Help(String),
    /// `--version`: `PROG (djinit) VERSION`.
    Version(String),
}

impl<T> Parsed<T> {
    /// The options to run with; for help and version, print the text (stdout, a reader that went
    /// away is no error) and `None`: the command is done, exit 0.
    pub fn or_print(self) -> Option<T> {
        match self {
            Parsed::Run(t) => Some(t),
            Parsed::Help(text) | Parsed::Version(text) => {
                print_quietly(&text);
                None
            }
        }
    }

    /// The options, if the command line asks to run.
    pub fn run(self) -> Option<T> {
        match self {
            Parsed::Run(t) => Some(t),
            _ => None,
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Parsed<U> {
        match self {
            Parsed::Run(t) => Parsed::Run(f(t)),
            Parsed::Help(h) => Parsed::Help(h),
            Parsed::Version(v) => Parsed::Version(v),
        }
    }
}

/// The command line of one command.
pub struct Args {
    parser: lexopt::Parser,
    last_flag: String,
    /// Set by [`Common::handle`] at `-h/--help` or `--version`: the parse stops there.
    early: Option<Parsed<()>>,
}

impl Args {
    /// The process arguments.
    pub fn from_env() -> Self {
        Args {
            parser: lexopt::Parser::from_env(),
            last_flag: String::new(),
            early: None,
        }
    }

    /// Given arguments (without the program name), for tests.
    #[allow(clippy::should_implement_trait)]
    pub fn from_iter<I: IntoIterator>(args: I) -> Self
    where
        I::Item: Into<OsString>,
    {
        Args {
            parser: lexopt::Parser::from_args(args),
            last_flag: String::new(),
            early: None,
        }
    }

    /// Run a command's parser `body` over these arguments. The body calls [`Common::handle`] for
    /// every argument first; at `-h/--help` or `--version` the parse stops and the result is
    /// [`Parsed::Help`] / [`Parsed::Version`], whatever follows on the command line (as Django's
    /// argparse does).
    pub fn parse<T>(
        mut self,
        body: impl FnOnce(&mut Args) -> Result<T, UsageError>,
    ) -> Result<Parsed<T>, UsageError> {
        let r = body(&mut self);
        match self.early.take() {
            Some(early) => Ok(early.map(|()| unreachable!("early is help or version"))),
            None => r.map(Parsed::Run),
        }
    }

    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Arg>, UsageError> {
        let arg = self.parser.next().map_err(lex)?;
        Ok(match arg {
            None => None,
            Some(lexopt::Arg::Short(c)) => {
                self.last_flag = format!("-{c}");
                Some(Arg::Short(c))
            }
            Some(lexopt::Arg::Long(l)) => {
                self.last_flag = format!("--{l}");
                Some(Arg::Long(l.to_string()))
            }
            Some(lexopt::Arg::Value(v)) => Some(Arg::Value(utf8(v)?)),
        })
    }

    /// The value of the flag just read.
    pub fn value(&mut self) -> Result<String, UsageError> {
        utf8(self.parser.value().map_err(lex)?)
    }

    /// Everything after `--` (or the remaining values), for commands that take a command line.
    pub fn rest(&mut self) -> Result<Vec<String>, UsageError> {
        match self.parser.raw_args() {
            Ok(raw) => raw.map(utf8).collect(),
            Err(e) => Err(lex(e)),
        }
    }

    /// A duration in seconds, fractional allowed (`0.1`), not negative.
    pub fn seconds(&mut self) -> Result<Duration, UsageError> {
        let v = self.value()?;
        parse_seconds(&v).map_err(|m| UsageError(format!("{}: {m}", self.last_flag)))
    }

    /// A number of any `FromStr` type.
    pub fn number<T: FromStr>(&mut self) -> Result<T, UsageError> {
        let v = self.value()?;
        v.trim()
            .parse()
            .map_err(|_| UsageError(format!("{} expects a number, got {v:?}", self.last_flag)))
    }
}

/// Parse a duration wherever djinit takes seconds: a plain number is seconds (`90`, `0.5`, as the
/// Python commands take), or a number with a unit `ms`, `s`, `m` or `h` (`500ms`, `2m`, `1.5h`),
/// as operators write them in manifests. Finite, not negative, at most 10^9 seconds (~31 years:
/// larger values are typos, and `Duration::from_secs_f64` would panic past u64).
pub fn parse_seconds(v: &str) -> Result<Duration, String> {
    let bad = || format!("expects a duration in seconds (e.g. 30, 0.5, 500ms, 2m), got {v:?}");
    let t = v.trim();
    let (number, scale) = [("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0)]
        .iter()
        .find_map(|(unit, scale)| t.strip_suffix(unit).map(|n| (n, *scale)))
        .unwrap_or((t, 1.0));
    // Only digits and one dot: f64's parser would also take "inf", "1e3" and "+5".
    if number.is_empty()
        || !number.chars().all(|c| c.is_ascii_digit() || c == '.')
        || number.matches('.').count() > 1
    {
        return Err(bad());
    }
    match number.parse::<f64>().map(|n| n * scale) {
        Ok(s) if s.is_finite() && (0.0..=1e9).contains(&s) => Ok(Duration::from_secs_f64(s)),
        _ => Err(bad()),
    }
}

fn lex(e: lexopt::Error) -> UsageError {
    UsageError(match e {
        lexopt::Error::MissingValue { option: Some(o) } => format!("{o} needs a value"),
        other => other.to_string(),
    })
}

fn utf8(v: OsString) -> Result<String, UsageError> {
    v.into_string()
        .map_err(|v| UsageError(format!("argument {v:?} is not valid UTF-8")))
}

/// Write `text` to stdout for `--help`/`--version`, ignoring a reader that went away
/// (`wait4db --help | head -1`): `print!` would panic on the broken pipe, and a component's panic
/// is a crash (exit 70). Help that nobody reads is still help given: exit 0.
pub fn print_quietly(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// The flags every command shares.
#[derive(Debug, Clone)]
pub struct Common {
    /// `-d/--database ALIAS`; default `default` (reads `DATABASE_URL`).
    pub database: String,
    /// `-v/--verbosity {0,1,2,3}`; default 1.
    pub verbosity: u8,
}

impl Default for Common {
    fn default() -> Self {
        Common {
            database: "default".into(),
            verbosity: 1,
        }
    }
}

impl Common {
    /// Handle `arg` if it is a shared flag; `Ok(true)` when it was. `-h/--help` and `--version`
    /// stop the parse (an error the body passes on with `?`; [`Args::parse`] turns it into
    /// [`Parsed::Help`] with `help` followed by the exit-code table, or [`Parsed::Version`]).
    pub fn handle(
        &mut self,
        arg: &Arg,
        args: &mut Args,
        prog: &str,
        help: &str,
    ) -> Result<bool, UsageError> {
        if arg.is('h', "help") {
            args.early = Some(Parsed::Help(format!(
                "{}\n\n{}",
                help.trim_end_matches('\n'),
                crate::exit::table()
            )));
            return Err(UsageError("help asked".into()));
        } else if arg.is('V', "version") {
            args.early = Some(Parsed::Version(format!(
                "{prog} (djinit) {}\n",
                env!("CARGO_PKG_VERSION")
            )));
            return Err(UsageError("version asked".into()));
        } else if arg.is('d', "database") {
            // Checked where it is used (`djinit_pg::Config::from_env`), an invalid one being a
            // usage error there (kind `Usage`, exit 64).
            self.database = args.value()?;
        } else if arg.is_long("log-format") {
            // Parsing's one side effect, on purpose: the process's log format is chosen as soon as
            // it is read, so a usage error later on the same line is reported in it, and the
            // runner, parsing the command's line for its needs, writes its own lines in it too.
            let v = args.value()?;
            crate::log::format::set(
                crate::log::Format::parse(&v)
                    .map_err(|m| UsageError(format!("--log-format {m}")))?,
            );
        } else if arg.is('v', "verbosity") {
            self.verbosity = match args.value()?.as_str() {
                "0" => 0,
                "1" => 1,
                "2" => 2,
                "3" => 3,
                other => {
                    return Err(UsageError(format!(
                        "-v/--verbosity expects 0, 1, 2 or 3, got {other:?}"
                    )))
                }
            };
        } else if arg.is_long("settings") || arg.is_long("pythonpath") {
            args.value()?; // Django's; meaningless here.
        } else if ["traceback", "no-color", "force-color", "skip-checks"]
            .iter()
            .any(|l| arg.is_long(l))
        {
        } else {
            return Ok(false);
        }
        Ok(true)
    }
}

/// The environment a command's parser reads (`env(name)`), as the command will see it.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A command's options: parsed purely from its command line and environment, and what running
/// with them needs from the host. A command writes `parse_args` and `needs`; the rest — help and
/// version ([`Args::parse`]), the needs of a command line that does not parse — is here once, and
/// [`CommandLine::needs_of`] is what the djinit runner's command table holds for the command.
pub trait CommandLine: Sized {
    /// The variables the parser reads: granted even for a bad command line, so the command sees
    /// what the host saw and reports the same usage error.
    const PARSER_ENV: &'static [&'static str];

    /// The command's parser over `args` ([`Common::handle`] first for every argument).
    fn parse_args(args: &mut Args, env: Env<'_>) -> Result<Self, UsageError>;

    /// What running with these options needs from the host, `env` being what the command sees.
    fn needs(&self, env: Env<'_>) -> crate::Needs;

    /// The options of `args`, or help or version.
    fn parse(args: Args, env: Env<'_>) -> Result<Parsed<Self>, UsageError> {
        args.parse(|args| Self::parse_args(args, env))
    }

    /// What `COMMAND args` needs: [`CommandLine::needs`] when the line parses, nothing for help
    /// and version, only [`CommandLine::PARSER_ENV`] for a bad line.
    fn needs_of(args: &[String], env: Env<'_>) -> crate::Needs {
        crate::Needs::of(
            Self::parse(Args::from_iter(args), env),
            Self::PARSER_ENV,
            |o| o.needs(env),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds("0.1").unwrap(), Duration::from_millis(100));
        assert_eq!(parse_seconds("180").unwrap(), Duration::from_secs(180));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("inf").is_err());
        assert!(parse_seconds("abc").is_err());
        assert_eq!(parse_seconds("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_seconds("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_seconds(" 1.5h ").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_seconds("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_seconds("0.5").unwrap(), Duration::from_millis(500));
        for bad in ["1e3", "+5", "ms", "5 m", "1.2.3", "5d", "", "2000000000"] {
            assert!(parse_seconds(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn common_flags_and_forms() {
        let mut a = Args::from_iter([
            "-t5",
            "--interval=0.5",
            "-d",
            "replica",
            "--settings",
            "x.y",
            "-v",
            "2",
            "--skip-checks",
            "pos",
        ]);
        let mut c = Common::default();
        let mut seen = vec![];
        while let Some(arg) = a.next().unwrap() {
            if c.handle(&arg, &mut a, "t", "").unwrap() {
                continue;
            }
            if arg.is('t', "timeout") || arg.is('i', "interval") {
                seen.push(a.seconds().unwrap());
            } else if let Arg::Value(v) = &arg {
                assert_eq!(v, "pos");
            } else {
                panic!("{arg:?}");
            }
        }
        assert_eq!(
            seen,
            vec![Duration::from_secs(5), Duration::from_millis(500)]
        );
        assert_eq!(c.database, "replica");
        assert_eq!(c.verbosity, 2);
    }

    fn parse(a: &[&str]) -> Result<Parsed<u8>, UsageError> {
        Args::from_iter(a).parse(|args| {
            let mut c = Common::default();
            while let Some(arg) = args.next()? {
                if !c.handle(&arg, args, "t", "usage: t")? {
                    return Err(arg.unexpected());
                }
            }
            Ok(c.verbosity)
        })
    }

    /// Help and version stop the parse, whatever comes after; nothing is printed, nothing exits.
    #[test]
    fn help_and_version_are_results() {
        assert_eq!(parse(&["-v", "2"]).unwrap(), Parsed::Run(2));
        let Parsed::Help(h) = parse(&["-v", "2", "--help", "--bogus"]).unwrap() else {
            panic!("help")
        };
        assert!(h.starts_with("usage: t\n\n") && h.ends_with(&crate::exit::table()));
        assert_eq!(
            parse(&["--version", "-v", "9"]).unwrap(),
            Parsed::Version(format!("t (djinit) {}\n", env!("CARGO_PKG_VERSION")))
        );
        assert!(parse(&["--bogus", "--help"]).is_err());
    }

    #[test]
    fn errors() {
        let mut a = Args::from_iter(["-t", "soon"]);
        a.next().unwrap();
        assert_eq!(
            a.seconds().unwrap_err().0,
            "-t: expects a duration in seconds (e.g. 30, 0.5, 500ms, 2m), got \"soon\""
        );
        let mut a = Args::from_iter(["-v", "7"]);
        let arg = a.next().unwrap().unwrap();
        assert!(Common::default().handle(&arg, &mut a, "t", "").is_err());
        let mut a = Args::from_iter(["--timeout"]);
        a.next().unwrap();
        assert!(a.seconds().unwrap_err().0.contains("needs a value"));
        assert!(Arg::Long("bogus".into()).unexpected().0.contains("--bogus"));
    }
}
