//! lockedmigrate's command line (compatible with django-kubernetes' `manage.py lockedmigrate`).

use djinit_bundle::graph::Target;
use djinit_cli::args::{Arg, Args, Common};
use djinit_cli::{CommandLine, Env, HostCommand, HostRun, Needs, UsageError};
use std::path::PathBuf;
use std::time::Duration;

pub const HELP: &str = "\
usage: lockedmigrate [-L LOCK_ID] [--lock-timeout SEC] [-t SEC] [--bundle DIR] [--noinput]
                     [--python CMD | --exec -- CMD ARGS...]
                     [--ddl-lock-timeout SEC] [--ddl-retries N] [--cancel-blockers-after SEC]
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
      --ddl-lock-timeout SEC  the longest an atomic migration's statement waits for a table
                       lock (SET LOCAL lock_timeout; default: 3; 0 disables): while an ALTER
                       waits behind a long transaction, every query on that table queues behind
                       it. When it passes, the migration rolls back, the sessions blocking it are
                       named, and it is retried after a backoff with jitter
      --ddl-retries N  retries after such a lock timeout, within -t for the migration
                       (default: 5); then exit 75 naming the blockers
      --cancel-blockers-after SEC  once a migration has been blocked for SEC in total, cancel
                       the blocking queries of other sessions (pg_cancel_backend, never
                       terminate; each logged) before the next attempt (default: never)
      --bundle DIR     the exported bundle (default: $DJINIT_MIGRATIONS)
      --fake           record (or unrecord) migrations without running their SQL
      --fake-initial   record initial migrations whose tables/columns all exist already
      --plan           print the planned operations and exit
      --check          exit 1 if migrations are pending, without applying them
      --prune          delete django_migrations rows of app_label that are not in the bundle
      --noinput, --no-input  accepted (never prompts)
      --python CMD     (djinit runner) apply the SQL migrations natively and hand each one
                       that needs Python, in plan order and under the same lock, to Django:
                       `migrate APP NAME` in one `CMD shell` process started when first needed
                       (e.g. --python 'python manage.py', run in the current directory with
                       djinit's environment); then go on
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
needs Python (RunPython without a guard, or whose guard does not hold) is refused up front
unless --python hands it to Django; or run all of Django under the lock with
`djinit lockedmigrate --exec -- python manage.py migrate`.

Behind PgBouncer in transaction pooling mode (detected before anything is touched) each
migration takes the advisory lock in its own transaction; a non-atomic migration is refused
there (exit 78): use a direct or session-pooled URL, e.g. DATABASE_URL_MIGRATE with -d migrate.

environment:
  DJINIT_MIGRATIONS    default for --bundle
  DJINIT_DDL_LOCK_TIMEOUT, DJINIT_DDL_RETRIES, DJINIT_CANCEL_BLOCKERS_AFTER
                       defaults for the flags of the same name
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
    /// `--python CMD`, split into words: Django's `manage.py` command line, to which the runner
    /// appends `migrate ... APP NAME` for each migration that needs Python.
    pub python: Option<Vec<String>>,
    pub fake: bool,
    pub fake_initial: bool,
    pub plan: bool,
    pub check: bool,
    pub prune: bool,
    pub app_label: Option<String>,
    pub migration_name: Option<String>,
    /// The zero-downtime guards (ddl_guard.rs).
    pub guard: GuardOptions,
}

/// `--ddl-lock-timeout` by default: 3 s. An `ALTER TABLE` waiting for its lock makes every
/// later query on the table wait behind it, so this is the longest stall a blocked migration
/// adds to the application per attempt: below common request timeouts (30 s) and
/// load-balancer health checks (5-10 s), yet far above what a DDL lock takes behind ordinary
/// OLTP transactions (milliseconds).
pub const DEFAULT_DDL_LOCK_TIMEOUT: Duration = Duration::from_secs(3);

/// `--ddl-retries` by default: 5, so with the backoff (1, 2, 4, 8, 16 s, each ±50%) and 3 s
/// attempts a migration keeps trying for about a minute before exit 75.
pub const DEFAULT_DDL_RETRIES: u32 = 5;

#[derive(Debug, Clone, PartialEq)]
pub struct GuardOptions {
    /// `None` = 0: no lock_timeout (the migration waits as long as it takes).
    pub lock_timeout: Option<Duration>,
    pub retries: u32,
    pub cancel_after: Option<Duration>,
}

impl Default for GuardOptions {
    fn default() -> Self {
        GuardOptions {
            lock_timeout: Some(DEFAULT_DDL_LOCK_TIMEOUT),
            retries: DEFAULT_DDL_RETRIES,
            cancel_after: None,
        }
    }
}

fn env_seconds(
    env: &dyn Fn(&str) -> Option<String>,
    name: &str,
) -> Result<Option<Duration>, UsageError> {
    match env(name).filter(|v| !v.trim().is_empty()) {
        None => Ok(None),
        Some(v) => djinit_cli::args::parse_seconds(&v)
            .map(Some)
            .map_err(|m| UsageError(format!("{name}: {m}"))),
    }
}

/// The zero-downtime guards' variables (defaults for the flags of the same name).
pub const GUARD_ENV: [&str; 3] = [
    "DJINIT_DDL_LOCK_TIMEOUT",
    "DJINIT_DDL_RETRIES",
    "DJINIT_CANCEL_BLOCKERS_AFTER",
];

/// The variables the parser reads.
pub const PARSER_ENV: &[&str] = &[
    djinit_bundle::DIR_VAR,
    GUARD_ENV[0],
    GUARD_ENV[1],
    GUARD_ENV[2],
];

impl CommandLine for Options {
    const PARSER_ENV: &'static [&'static str] = PARSER_ENV;

    /// The database, the bundle directory (read-only; none with `--exec` and no bundle) and
    /// the variable naming it. Nothing writable, no UDP. (`--exec`'s and `--python`'s CMD runs
    /// natively on the host, outside the sandbox; the runner starts it.)
    fn needs(&self, _env: Env<'_>) -> Needs {
        let once = |argv: &Vec<String>| HostCommand {
            argv: argv.clone(),
            when: HostRun::Once,
        };
        let per_step = |argv: &Vec<String>| HostCommand {
            argv: argv.clone(),
            when: HostRun::PerStep,
        };
        Needs {
            database: Some(self.common.database.clone()),
            env: PARSER_ENV.iter().map(|v| v.to_string()).collect(),
            bundle: self.bundle.clone(),
            // `--plan`/`--check` only read: the component runs them alone.
            host_command: self.exec.as_ref().map(once).or(self
                .python
                .as_ref()
                .filter(|_| !(self.plan || self.check))
                .map(per_step)),
            ..Needs::default()
        }
    }

    fn parse_args(args: &mut Args, env: Env<'_>) -> Result<Options, UsageError> {
        let mut o = Options {
            common: Common::default(),
            lock_id: 1000,
            lock_timeout: None,
            timeout: DEFAULT_TIMEOUT,
            bundle: None,
            exec: None,
            python: None,
            fake: false,
            fake_initial: false,
            plan: false,
            check: false,
            prune: false,
            app_label: None,
            migration_name: None,
            guard: GuardOptions::default(),
        };
        if let Some(t) = env_seconds(env, GUARD_ENV[0])? {
            o.guard.lock_timeout = Some(t).filter(|t| !t.is_zero());
        }
        if let Some(n) = env(GUARD_ENV[1]).filter(|v| !v.trim().is_empty()) {
            o.guard.retries = n
                .trim()
                .parse()
                .map_err(|_| UsageError(format!("DJINIT_DDL_RETRIES: not a count: {n:?}")))?;
        }
        if let Some(t) = env_seconds(env, GUARD_ENV[2])? {
            o.guard.cancel_after = Some(t);
        }
        let mut bundle = None;
        while let Some(arg) = args.next()? {
            if o.common.handle(&arg, args, "lockedmigrate", HELP)? {
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
                a if a.is_long("ddl-lock-timeout") => {
                    o.guard.lock_timeout = Some(args.seconds()?).filter(|t| !t.is_zero())
                }
                a if a.is_long("ddl-retries") => o.guard.retries = args.number()?,
                a if a.is_long("cancel-blockers-after") => {
                    o.guard.cancel_after = Some(args.seconds()?)
                }
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
                a if a.is_long("python") => o.python = Some(python_command(&args.value()?)?),
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
        o.bundle = djinit_bundle::dir(bundle, env);
        if o.bundle.is_none() && o.exec.is_none() {
            return Err(UsageError(
                "no migration bundle: pass --bundle DIR or set DJINIT_MIGRATIONS".into(),
            ));
        }
        if o.exec.is_some() && o.python.is_some() {
            return Err(UsageError(
                "--python and --exec exclude each other: --python hands single migrations to Django, --exec runs CMD as the whole job".into(),
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
}

/// `--python CMD` split into words as a POSIX shell would (no shell runs it).
fn python_command(cmd: &str) -> Result<Vec<String>, UsageError> {
    match shlex::split(cmd) {
        Some(words) if !words.is_empty() => Ok(words),
        _ => Err(UsageError(format!(
            "--python expects Django's command, e.g. --python \"python manage.py\", got {cmd:?}"
        ))),
    }
}

impl Options {
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

    /// The runner's entry for this command.
    fn needs(args: &[String], env: Env<'_>) -> Needs {
        Options::needs_of(args, env)
    }

    fn parse(a: &[&str]) -> Result<Options, UsageError> {
        parse_env(a, &|k| {
            (k == "DJINIT_MIGRATIONS").then(|| "/env".to_string())
        })
    }

    fn parse_env(a: &[&str], env: &dyn Fn(&str) -> Option<String>) -> Result<Options, UsageError> {
        Options::parse(Args::from_iter(a.iter().copied()), env).map(|p| p.run().expect("options"))
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
        assert!(parse_env(&[], &|_| None).is_err());
        let o = parse_env(&["-L", "5", "--exec", "--", "python", "-v"], &|_| None).unwrap();
        assert_eq!(o.exec, Some(vec!["python".to_string(), "-v".to_string()]));
        assert_eq!(o.bundle, None);
        assert!(parse(&["--exec"]).is_err());
        assert_eq!(
            parse(&["-t", "2.5"]).unwrap().timeout,
            Duration::from_millis(2500)
        );
        assert!(parse(&["--timeout", "0"]).is_err());
    }

    #[test]
    fn needs_bundle_from_flag_or_env_read_only() {
        let env = |k: &str| (k == "DJINIT_MIGRATIONS").then(|| "/env/b".to_string());
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(needs(&v(&[]), &env).bundle, Some(PathBuf::from("/env/b")));
        assert_eq!(
            needs(&v(&["--bundle", "/f"]), &env).bundle,
            Some(PathBuf::from("/f"))
        );
        let n = needs(&v(&["--bundle=/g", "-d", "x"]), &env);
        assert_eq!(n.bundle, Some(PathBuf::from("/g")));
        assert_eq!(n.database.as_deref(), Some("x"));
        assert_eq!(n.env, PARSER_ENV);
        // `--exec` without a bundle: the database only; `-d` after `--exec` is CMD's.
        let n = needs(
            &v(&["-L", "5", "--exec", "--", "manage.py", "-d", "y"]),
            &|_| None,
        );
        assert_eq!((n.bundle, n.database.as_deref()), (None, Some("default")));
        let once = |argv: &[&str]| {
            Some(HostCommand {
                argv: v(argv),
                when: HostRun::Once,
            })
        };
        assert_eq!(n.host_command, once(&["manage.py", "-d", "y"]));
        assert_eq!(
            needs(&v(&["--exec", "true"]), &|_| None).host_command,
            once(&["true"])
        );
        assert_eq!(needs(&v(&["-L", "5"]), &env).host_command, None);
        // `--exec` without CMD: a usage error the component reports; nothing for the host to run.
        assert_eq!(needs(&v(&["--exec", "--"]), &env).host_command, None);
    }

    #[test]
    fn python_is_split_like_a_shell_and_excludes_exec() {
        let o = parse(&["--python", "python -X utf8 'my app/manage.py'"]).unwrap();
        assert_eq!(
            o.python.unwrap(),
            ["python", "-X", "utf8", "my app/manage.py"]
        );
        let o = parse(&["--python=python3 manage.py", "shop", "0002"]).unwrap();
        assert_eq!(o.python.as_deref().unwrap(), ["python3", "manage.py"]);
        assert_eq!(o.target(), Target::Migration("shop".into(), "0002".into()));
        for bad in ["", "  ", "python 'manage.py"] {
            let e = parse(&["--python", bad]).unwrap_err();
            assert!(e.0.contains("--python expects"), "{bad:?}: {e:?}");
        }
        let e = parse(&["--python", "python manage.py", "--exec", "--", "true"]).unwrap_err();
        assert!(e.0.contains("exclude each other"), "{e:?}");
        // The bundle stays required: the SQL migrations come from it.
        assert!(parse_env(&["--python", "python manage.py"], &|_| None).is_err());
    }

    #[test]
    fn guard_flags_env_and_defaults() {
        let o = parse(&[]).unwrap();
        assert_eq!(o.guard, GuardOptions::default());
        assert_eq!(o.guard.lock_timeout, Some(Duration::from_secs(3)));
        assert_eq!(o.guard.retries, 5);
        assert_eq!(o.guard.cancel_after, None);
        let o = parse(&[
            "--ddl-lock-timeout",
            "0",
            "--ddl-retries",
            "2",
            "--cancel-blockers-after",
            "1.5",
        ])
        .unwrap();
        assert_eq!(o.guard.lock_timeout, None);
        assert_eq!(o.guard.retries, 2);
        assert_eq!(o.guard.cancel_after, Some(Duration::from_millis(1500)));
        let env = |k: &str| match k {
            "DJINIT_MIGRATIONS" => Some("/env".to_string()),
            "DJINIT_DDL_LOCK_TIMEOUT" => Some("0.5".to_string()),
            "DJINIT_DDL_RETRIES" => Some("1".to_string()),
            "DJINIT_CANCEL_BLOCKERS_AFTER" => Some("4".to_string()),
            _ => None,
        };
        let o = parse_env(&[], &env).unwrap();
        assert_eq!(o.guard.lock_timeout, Some(Duration::from_millis(500)));
        assert_eq!(o.guard.retries, 1);
        assert_eq!(o.guard.cancel_after, Some(Duration::from_secs(4)));
        // Flags win over the environment.
        let o = parse_env(&["--ddl-retries", "9"], &env).unwrap();
        assert_eq!(o.guard.retries, 9);
        assert!(parse(&["--ddl-retries", "x"]).is_err());
        assert!(parse(&["--ddl-lock-timeout", "-1"]).is_err());
        let bad = |k: &str| (k == "DJINIT_DDL_LOCK_TIMEOUT").then(|| "soon".to_string());
        assert!(parse_env(&["--bundle", "/b"], &bad).is_err());
    }
}
