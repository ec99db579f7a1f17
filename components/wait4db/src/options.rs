//! wait4db's command line (compatible with django-kubernetes' `manage.py wait4db`).

use djinit_cli::args::{Arg, Args, Common};
use djinit_cli::{CommandLine, Env, Needs, UsageError};
use std::path::PathBuf;
use std::time::Duration;

pub const HELP: &str = "\
usage: wait4db [-t SEC] [-s SEC] [-i SEC] [-d ALIAS] [-v {0,1,2,3}]

Waits until the database accepts connections, authenticates and answers SELECT 1,
and keeps doing so for the stability window. Any failure inside the window resets it.

options:
  -t, --timeout SEC    hard deadline for the whole command, hung connections included (default: 180)
  -s, --stable SEC     the database must stay ready this long; 0 = return at the first success (default: 5)
  -i, --interval SEC   pause between probes (default: 1)
      --migrated       also wait until every migration of the bundle is recorded in
                       django_migrations (djinit_export bundle; see checkmigrations)
      --bundle DIR     the bundle for --migrated (default: $DJINIT_MIGRATIONS)
  -d, --database ALIAS database alias: `default` reads DATABASE_URL, any other reads
                       DATABASE_URL_<ALIAS> (default: default)
  -v, --verbosity N    0 errors only, 1 progress (default), 2 settings, 3 every probe
      --log-format F   text (default) or json: one JSON object per line (env DJINIT_LOG_FORMAT)
  -h, --help           show this help
  -V, --version        show the version
Seconds may be fractional (-i 0.1). Django's --settings, --pythonpath, --traceback, --no-color,
--force-color and --skip-checks are accepted and ignored.

environment:
  DATABASE_URL, DATABASE_URL_<ALIAS>  postgres://user:password@host:port/dbname?sslmode=...
  PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE PGCONNECT_TIMEOUT PGAPPNAME PGSSLMODE
                       libpq variables, filling in what DATABASE_URL leaves out (default alias only)
";

#[derive(Debug)]
pub struct Options {
    pub common: Common,
    pub timeout: Duration,
    pub stable: Duration,
    pub interval: Duration,
    /// `--migrated`: also require every migration of the bundle to be recorded.
    pub migrated: bool,
    /// `--bundle DIR`, else `$DJINIT_MIGRATIONS` ([`djinit_bundle::dir`]); used with
    /// `--migrated` only.
    pub bundle: Option<PathBuf>,
}

/// The variables the parser reads.
pub const PARSER_ENV: &[&str] = &[djinit_bundle::DIR_VAR];

impl CommandLine for Options {
    const PARSER_ENV: &'static [&'static str] = PARSER_ENV;

    /// The database; with `--migrated` also the bundle directory (read-only) and the variable
    /// naming it. Nothing else: no other files, no UDP.
    fn needs(&self, _env: Env<'_>) -> Needs {
        let mut n = Needs {
            database: Some(self.common.database.clone()),
            ..Needs::default()
        };
        if self.migrated {
            n.env.push(djinit_bundle::DIR_VAR.into());
            n.bundle = self.bundle.clone();
        }
        n
    }

    fn parse_args(args: &mut Args, env: Env<'_>) -> Result<Options, UsageError> {
        let mut bundle = None;
        let mut o = Options {
            common: Common::default(),
            timeout: Duration::from_secs(180),
            stable: Duration::from_secs(5),
            interval: Duration::from_secs(1),
            migrated: false,
            bundle: None,
        };
        while let Some(arg) = args.next()? {
            if o.common.handle(&arg, args, "wait4db", HELP)? {
                continue;
            }
            match &arg {
                a if a.is('t', "timeout") => o.timeout = args.seconds()?,
                a if a.is('s', "stable") => o.stable = args.seconds()?,
                a if a.is('i', "interval") => o.interval = args.seconds()?,
                a if a.is_long("migrated") => o.migrated = true,
                a if a.is_long("bundle") => bundle = Some(args.value()?),
                Arg::Short(_) | Arg::Long(_) | Arg::Value(_) => return Err(arg.unexpected()),
            }
        }
        o.bundle = djinit_bundle::dir(bundle, env);
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

    fn parse(a: &[&str]) -> Result<Options, UsageError> {
        let env = |k: &str| (k == "DJINIT_MIGRATIONS").then(|| "/env/b".to_string());
        Options::parse(Args::from_iter(a), &env).map(|p| p.run().expect("options"))
    }

    #[test]
    fn defaults_match_the_python_command() {
        let o = parse(&[]).unwrap();
        assert_eq!(o.timeout, Duration::from_secs(180));
        assert_eq!(o.stable, Duration::from_secs(5));
        assert_eq!(o.interval, Duration::from_secs(1));
        assert_eq!(o.common.database, "default");
    }

    #[test]
    fn flags() {
        let o = parse(&["-t", "30", "--stable=0", "-i0.1", "-d", "replica"]).unwrap();
        assert_eq!(o.timeout, Duration::from_secs(30));
        assert_eq!(o.stable, Duration::ZERO);
        assert_eq!(o.interval, Duration::from_millis(100));
        assert_eq!(o.common.database, "replica");
        assert!(parse(&["--bogus"]).is_err());
        assert!(parse(&["extra"]).is_err());
        assert!(parse(&["-t", "-5"]).is_err());
    }

    #[test]
    fn needs_the_bundle_only_with_migrated() {
        let env = |k: &str| (k == "DJINIT_MIGRATIONS").then(|| "/env/b".to_string());
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let n = needs(&v(&["-dreplica"]), &env);
        assert_eq!(n.database.as_deref(), Some("replica"));
        assert_eq!((n.bundle, n.env), (None, vec![]));
        let n = needs(&v(&["--migrated"]), &env);
        assert_eq!(n.bundle, Some(PathBuf::from("/env/b")));
        assert_eq!(n.env, ["DJINIT_MIGRATIONS"]);
        let n = needs(&v(&["--migrated", "--bundle=/f"]), &env);
        assert_eq!(n.bundle, Some(PathBuf::from("/f")));
        // Help: nothing; a bad command line: what the parser reads, no database.
        assert_eq!(needs(&v(&["--help"]), &env), Needs::default());
        let n = needs(&v(&["--bogus", "-d", "x"]), &env);
        assert_eq!(
            (n.database, n.env),
            (None, vec!["DJINIT_MIGRATIONS".into()])
        );
    }
}
