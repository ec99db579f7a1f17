//! checkmigrations' command line (compatible with django-k8s' `manage.py checkmigrations`).

use djinit_cli::args::{Arg, Args, Common};
use djinit_cli::UsageError;
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

impl Options {
    pub fn parse(
        mut args: Args,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Options, UsageError> {
        let mut o = Options {
            common: Common::default(),
            bundle: PathBuf::new(),
            wait: false,
            timeout: Duration::from_secs(180),
            interval: Duration::from_secs(1),
        };
        let mut bundle = None;
        while let Some(arg) = args.next()? {
            if o.common.handle(&arg, &mut args, "checkmigrations", HELP)? {
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
        o.bundle = match bundle.or_else(|| env("DJINIT_MIGRATIONS").filter(|v| !v.is_empty())) {
            Some(b) => PathBuf::from(b),
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

    #[test]
    fn defaults_and_flags() {
        let env = |k: &str| (k == "DJINIT_MIGRATIONS").then(|| "/m".to_string());
        let o = Options::parse(Args::from_iter(Vec::<String>::new()), &env).unwrap();
        assert_eq!(
            (o.wait, o.timeout, o.interval),
            (false, Duration::from_secs(180), Duration::from_secs(1))
        );
        assert_eq!(o.bundle, PathBuf::from("/m"));
        let o = Options::parse(
            Args::from_iter(["--wait", "-t", "5", "--interval=0.2", "--bundle", "/b"]),
            &env,
        )
        .unwrap();
        assert!(o.wait);
        assert_eq!(o.interval, Duration::from_millis(200));
        assert_eq!(o.bundle, PathBuf::from("/b"));
        assert!(Options::parse(Args::from_iter(["x"]), &env).is_err());
        assert!(Options::parse(Args::from_iter(Vec::<String>::new()), &|_| None).is_err());
    }
}
