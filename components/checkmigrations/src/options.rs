//! checkmigrations' command line (compatible with django-k8s' `manage.py checkmigrations`).

use djinit_cli::args::{Arg, Args, Common};
use djinit_cli::{CommandLine, Env, Needs, UsageError};
use std::path::PathBuf;
use std::time::Duration;

pub const HELP: &str = "\
usage: checkmigrations [--bundle DIR] [--wait] [-t SEC] [-i SEC] [-d ALIAS] [-v {0,1,2,3}]

Exits 0 when every migration of the bundle (manage.py djinit_export) is recorded in
django_migrations (prints \"Migrations complete.\"), 1 when some are pending. No Python needed.

options:
      --bundle DIR     the exported bundle (default: $DJINIT_MIGRATIONS)
      --wait           keep checking until complete; connection errors are retried too
  -t, --timeout SEC    with --wait: give up after SEC (default: 180); without: bounds the one check
  -i, --interval SEC   with --wait: pause between checks (default: 1)
  -d, --database ALIAS database alias: `default` reads DATABASE_URL, any other reads
                       DATABASE_URL_<ALIAS> (default: default)
  -v, --verbosity N    0 errors only, 1 result (default), 2 lists pending migrations as app.name,
                       3 every attempt
      --log-format F   text (default) or json: one JSON object per line (env DJINIT_LOG_FORMAT)
  -h, --help           show this help
  -V, --version        show the version
Exit 1 (pending) also after --wait timed out with migrations still pending; a database that stayed
unreachable is 69 (or 75 after --wait).

environment:
  DJINIT_MIGRATIONS    default for --bundle
  DATABASE_URL, DATABASE_URL_<ALIAS>, PG* (see wait4db --help)
";

#[derive(Debug)]
pub struct Options {
    pub common: Common,
    pub bundle: PathBuf,
    pub wait: bool,
    pub timeout: Duration,
    pub interval: Duration,
}

/// The variables the parser reads.
pub const PARSER_ENV: &[&str] = &[djinit_bundle::DIR_VAR];

impl CommandLine for Options {
    const PARSER_ENV: &'static [&'static str] = PARSER_ENV;

    /// The database, the bundle directory (read-only) and the variable naming it. Nothing
    /// writable, no UDP.
    fn needs(&self, _env: Env<'_>) -> Needs {
        Needs {
            database: Some(self.common.database.clone()),
            env: vec![djinit_bundle::DIR_VAR.into()],
            bundle: Some(self.bundle.clone()),
            ..Needs::default()
        }
    }

    fn parse_args(args: &mut Args, env: Env<'_>) -> Result<Options, UsageError> {
        let mut o = Options {
            common: Common::default(),
            bundle: PathBuf::new(),
            wait: false,
            timeout: Duration::from_secs(180),
            interval: Duration::from_secs(1),
        };
        let mut bundle = None;
        while let Some(arg) = args.next()? {
            if o.common.handle(&arg, args, "checkmigrations", HELP)? {
                continue;
            }
            match &arg {
                a if a.is_long("bundle") => bundle = Some(args.value()?),
                a if a.is_long("wait") => o.wait = true,
                a if a.is('t', "timeout") => o.timeout = args.seconds()?,
                a if a.is('i', "interval") => o.interval = args.seconds()?,
                Arg::Short(_) | Arg::Long(_) | Arg::Value(_) => return Err(arg.unexpected()),
            }
        }
        o.bundle = match djinit_bundle::dir(bundle, env) {
            Some(b) => b,
            None => {
                return Err(UsageError(
                    "no migration bundle: pass --bundle DIR or set DJINIT_MIGRATIONS".into(),
                ))
            }
        };
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The runner's entry for this command.
    fn needs(args: &[String], env: Env<'_>) -> Needs {
        Options::needs_of(args, env)
    }

    #[test]
    fn defaults_and_flags() {
        let env = |k: &str| (k == "DJINIT_MIGRATIONS").then(|| "/m".to_string());
        let parse = |a: &[&str], env: &dyn Fn(&str) -> Option<String>| {
            Options::parse(Args::from_iter(a), env).map(|p| p.run().expect("options"))
        };
        let o = parse(&[], &env).unwrap();
        assert_eq!(
            (o.wait, o.timeout, o.interval),
            (false, Duration::from_secs(180), Duration::from_secs(1))
        );
        assert_eq!(o.bundle, PathBuf::from("/m"));
        let o = parse(
            &["--wait", "-t", "5", "--interval=0.2", "--bundle", "/b"],
            &env,
        )
        .unwrap();
        assert!(o.wait);
        assert_eq!(o.interval, Duration::from_millis(200));
        assert_eq!(o.bundle, PathBuf::from("/b"));
        assert!(parse(&["x"], &env).is_err());
        assert!(parse(&[], &|_| None).is_err());
        let n = needs(&["-d".into(), "other".into()], &env);
        assert_eq!(n.database.as_deref(), Some("other"));
        assert_eq!(n.bundle, Some(PathBuf::from("/m")));
    }
}
