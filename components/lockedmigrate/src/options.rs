//! lockedmigrate's command line (compatible with django-kubernetes' `manage.py lockedmigrate`).

use djinit_bundle::graph::Target;
use djinit_cli::args::{Arg, Args, Common};
use djinit_cli::UsageError;
use std::path::PathBuf;
use std::time::Duration;

pub const HELP: &str = "\
usage: lockedmigrate [-L LOCK_ID] [--lock-timeout SEC] [-t SEC] [--bundle DIR] [--noinput]
                     [-d ALIAS] [--fake] [--fake-initial] [--plan] [--check] [--prune]
                     [-v {0,1,2,3}] [app_label] [migration_name]

Applies the migrations of a bundle exported with `manage.py djinit_export DIR` while holding a
PostgreSQL advisory lock, so concurrent runs (every replica's init container) apply each
migration exactly once. No Python needed.

positional arguments:
  app_label            migrate only this app (to its latest migration)
  migration_name       bring the app to the state after this migration (applying or unapplying);
                       `zero` unapplies all of the app's migrations

options:
  -L, --lock-id N      the advisory lock key, pg_advisory_lock(N) (default: 1000, the Python
                       command's, so both exclude each other)
      --lock-timeout SEC  give up (exit 75) when the lock is not ours within SEC (default: wait
                       forever); while waiting, a line every 5s names the holder
  -t, --timeout SEC    give up (exit 75) when the server leaves any other question unanswered
                       for SEC: connecting (also bounded by connect_timeout, default 30), each
                       poll of the lock and each statement of lockedmigrate's own bookkeeping
                       (default: 300). Not bounded by it: the lock wait (--lock-timeout) and
                       the migrations' own SQL, which may run for hours; while a statement runs,
                       a line every 5s says what it waits for (backend state, wait event, the
                       sessions blocking it), and a dead connection ends the run (exit 69)
      --bundle DIR     the exported bundle (default: $DJINIT_MIGRATIONS)
      --fake           record (or unrecord) migrations without running their SQL
      --fake-initial   record initial migrations whose tables/columns all exist already
      --plan           print the planned operations and exit
      --check          exit 1 if migrations are pending, without applying them
      --prune          delete django_migrations rows of app_label that are not in the bundle
      --noinput, --no-input  accepted (never prompts)
      --exec -- CMD ARGS...  (djinit runner) take the lock, run CMD natively while holding it
                       (e.g. python manage.py migrate --noinput), release it; CMD's exit code
  -d, --database ALIAS database alias: `default` reads DATABASE_URL, any other reads
                       DATABASE_URL_<ALIAS> (default: default)
  -v, --verbosity N    0 errors only, 1 progress (default), 2 details, 3 every statement
      --log-format F   text (default) or json: one JSON object per line (env DJINIT_LOG_FORMAT)
  -h, --help           show this help
  -V, --version        show the version
Each atomic migration and its django_migrations row commit in one transaction; a non-atomic
one (CREATE INDEX CONCURRENTLY) runs outside a transaction and is recorded after it succeeded.
The run stops at the first failure, naming the migration and the SQLSTATE. A migration that
needs Python (RunPython without a guard) is refused: run Django itself under the lock with
`djinit lockedmigrate --exec -- python manage.py migrate`.

environment:
  DJINIT_MIGRATIONS    default for --bundle
  DATABASE_URL, DATABASE_URL_<ALIAS>, PG* (see wait4db --help)
";

/// `-t/--timeout` by default: 300 s. Generous, because a bookkeeping statement may wait for
/// a lock another session holds on `django_migrations` or `django_content_type` (a deploy's
/// other jobs); bounded, because a server that authenticated and then went silent would
/// otherwise hold the init container forever (issue 9).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug)]
pub struct Options {
    pub common: Common,
    pub lock_id: i64,
    pub lock_timeout: Option<Duration>,
    /// `-t/--timeout`: the longest wait for any answer but the lock and the migrations' SQL.
    pub timeout: Duration,
    /// `None` only with `--exec` (which needs no bundle).
    pub bundle: Option<PathBuf>,
    /// `--exec -- CMD ARGS...`: the command the runner runs while the lock is held.
    pub exec: Option<Vec<String>>,
    pub fake: bool,
    pub fake_initial: bool,
    pub plan: bool,
    pub check: bool,
    pub prune: bool,
    pub app_label: Option<String>,
    pub migration_name: Option<String>,
}

impl Options {
    pub fn parse(
        mut args: Args,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Options, UsageError> {
        let mut o = Options {
            common: Common::default(),
            lock_id: 1000,
            lock_timeout: None,
            timeout: DEFAULT_TIMEOUT,
            bundle: None,
            exec: None,
            fake: false,
            fake_initial: false,
            plan: false,
            check: false,
            prune: false,
            app_label: None,
            migration_name: None,
        };
        let mut bundle = None;
        while let Some(arg) = args.next()? {
            if o.common.handle(&arg, &mut args, "lockedmigrate", HELP)? {
                continue;
            }
            match &arg {
                a if a.is('L', "lock-id") => o.lock_id = args.number()?,
                a if a.is_long("lock-timeout") => o.lock_timeout = Some(args.seconds()?),
                a if a.is('t', "timeout") => {
                    o.timeout = args.seconds()?;
                    if o.timeout.is_zero() {
                        return Err(UsageError("-t/--timeout must be more than 0 seconds".into()));
                    }
                }
                a if a.is_long("bundle") => bundle = Some(args.value()?),
                a if a.is_long("fake") => o.fake = true,
                a if a.is_long("fake-initial") => o.fake_initial = true,
                a if a.is_long("plan") => o.plan = true,
                a if a.is_long("check") => o.check = true,
                a if a.is_long("prune") => o.prune = true,
                a if a.is_long("exec") => {
                    let mut cmd = args.rest()?;
                    if cmd.first().map(String::as_str) == Some("--") {
                        cmd.remove(0);
                    }
                    if cmd.is_empty() {
                        return Err(UsageError("--exec needs a command: --exec -- CMD ARGS...".into()));
                    }
                    o.exec = Some(cmd);
                }
                a if a.is_long("noinput") || a.is_long("no-input") => {}
                a if a.is_long("run-syncdb") => {
                    return Err(UsageError(
                        "--run-syncdb is not supported: apps without migrations have no SQL in the bundle".into(),
                    ))
                }
                Arg::Value(v) if o.app_label.is_none() => o.app_label = Some(v.clone()),
                Arg::Value(v) if o.migration_name.is_none() => o.migration_name = Some(v.clone()),
                Arg::Short(_) | Arg::Long(_) | Arg::Value(_) => return Err(arg.unexpected()),
            }
        }
        o.bundle = bundle
            .or_else(|| env("DJINIT_MIGRATIONS").filter(|v| !v.is_empty()))
            .map(PathBuf::from);
        if o.bundle.is_none() && o.exec.is_none() {
            return Err(UsageError(
                "no migration bundle: pass --bundle DIR or set DJINIT_MIGRATIONS".into(),
            ));
        }
        if o.prune && o.app_label.is_none() {
            return Err(UsageError(
                "Migrations can be pruned only when an app is specified.".into(),
            ));
        }
        if o.fake && o.fake_initial {
            // Django allows both; --fake wins. Keep Django's behaviour.
        }
        Ok(o)
    }

    /// The target, as `migrate [app_label] [migration_name]` reads it.
    pub fn target(&self) -> Target {
        match (&self.app_label, &self.migration_name) {
            (None, _) => Target::All,
            (Some(a), None) => Target::App(a.clone()),
            (Some(a), Some(n)) if n == "zero" => Target::Zero(a.clone()),
            (Some(a), Some(n)) => Target::Migration(a.clone(), n.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(a: &[&str]) -> Result<Options, UsageError> {
        Options::parse(Args::from_iter(a.iter().copied()), &|k| {
            (k == "DJINIT_MIGRATIONS").then(|| "/env".to_string())
        })
    }

    #[test]
    fn defaults_match_the_python_command() {
        let o = parse(&[]).unwrap();
        assert_eq!(o.lock_id, 1000);
        assert_eq!(o.lock_timeout, None);
        assert_eq!(o.timeout, Duration::from_secs(300));
        assert_eq!(o.bundle, Some(PathBuf::from("/env")));
        assert_eq!(o.target(), Target::All);
    }

    #[test]
    fn flags_and_positionals() {
        let o = parse(&[
            "-L",
            "7",
            "--lock-timeout",
            "2",
            "--bundle",
            "/b",
            "--fake",
            "--noinput",
            "shop",
            "zero",
        ])
        .unwrap();
        assert_eq!(o.lock_id, 7);
        assert_eq!(o.lock_timeout, Some(Duration::from_secs(2)));
        assert_eq!(o.bundle, Some(PathBuf::from("/b")));
        assert!(o.fake);
        assert_eq!(o.target(), Target::Zero("shop".into()));
        assert!(parse(&["--prune"]).is_err());
        assert!(parse(&["a", "b", "c"]).is_err());
        assert!(parse(&["-L", "x"]).is_err());
        assert!(Options::parse(Args::from_iter(Vec::<String>::new()), &|_| None).is_err());
        let o = Options::parse(
            Args::from_iter(["-L", "5", "--exec", "--", "python", "-v"]),
            &|_| None,
        )
        .unwrap();
        assert_eq!(o.exec, Some(vec!["python".to_string(), "-v".to_string()]));
        assert_eq!(o.bundle, None);
        assert!(parse(&["--exec"]).is_err());
        assert_eq!(
            parse(&["-t", "2.5"]).unwrap().timeout,
            Duration::from_millis(2500)
        );
        assert!(parse(&["--timeout", "0"]).is_err());
    }
}
