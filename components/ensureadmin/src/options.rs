//! ensureadmin's command line and environment (compatible with django-kubernetes'
//! `manage.py ensureadmin`, then more). Flags win over `DJANGO_ADMIN_*`, which win over Django's
//! own `DJANGO_SUPERUSER_*` (what `createsuperuser --noinput` reads), field by field.

use crate::hash::{DEFAULT_ITERATIONS, ITERATIONS_FACTOR, MAX_ITERATIONS};
use djinit_cli::args::{Arg, Args, Common};
use djinit_cli::{CommandLine, Env, Needs, UsageError};
use djinit_pg::config::Secret;
use std::time::Duration;

pub const HELP: &str = "\
usage: ensureadmin [-u USERNAME] [-p PASSWORD | --password-file PATH | --password-hash HASH]
                   [-e EMAIL] [--update] [--no-validate] [--iterations N] [--table NAME]
                   [--username-field NAME] [-t SEC] [-d ALIAS] [-v {0,1,2,3}]

Ensures that a Django superuser exists with credentials from the environment (a Kubernetes
Secret). A missing user is created as Django's create_superuser does; an existing one is left
untouched, or with --update checked and repaired. Safe to run many times at once.

options:
  -u, --username NAME     the superuser's username (stored NFKC-normalised, as Django does),
                          $DJANGO_ADMIN_USERNAME, else $DJANGO_SUPERUSER_USERNAME
  -p, --password PW       the password, $DJANGO_ADMIN_PASSWORD, else $DJANGO_SUPERUSER_PASSWORD
      --password-file PATH
                          read the password from this file (one trailing newline is dropped),
                          $DJANGO_ADMIN_PASSWORD_FILE
      --password-hash HASH
                          an already-hashed Django password (pbkdf2_sha256$..., argon2$...,
                          bcrypt_sha256$$..., scrypt$...), stored verbatim, $DJANGO_ADMIN_PASSWORD_HASH
  -e, --email EMAIL       the email (domain part lower-cased as Django does), $DJANGO_ADMIN_EMAIL,
                          else $DJANGO_SUPERUSER_EMAIL
      --update            when the user exists: rewrite the password if it does not match, and set
                          is_superuser/is_staff/is_active back to true, $DJANGO_ADMIN_UPDATE=1.
                          A stored hash of another algorithm or with more than 10000000 PBKDF2
                          iterations is not verified but rewritten
      --no-validate       skip Django's default password validators (length 8, not numeric, not
                          common, not similar to the username/email)
      --iterations N      PBKDF2 iterations for new hashes (default: 1000000, Django 5.2's;
                          at most 10000000)
      --table NAME        the user table, optionally schema.table (default: auth_user)
      --username-field NAME
                          the USERNAME_FIELD column (default: username)
  -t, --timeout SEC       deadline for connecting (retried while the database is unavailable),
                          for every statement and for each password hashing (default: 30)
  -d, --database ALIAS    database alias: `default` reads DATABASE_URL, any other reads
                          DATABASE_URL_<ALIAS> (default: default)
  -v, --verbosity N       0 errors only, 1 outcome (default), 2 settings, 3 every step
      --log-format F      text (default) or json: one JSON object per line (env DJINIT_LOG_FORMAT)
  -h, --help              show this help
  -V, --version           show the version
Exactly one password source may be given. The password never appears in any output.
Django's --settings, --pythonpath, --traceback, --no-color, --force-color and --skip-checks are
accepted and ignored.

environment:
  DJANGO_ADMIN_USERNAME DJANGO_ADMIN_PASSWORD DJANGO_ADMIN_PASSWORD_FILE DJANGO_ADMIN_PASSWORD_HASH
  DJANGO_ADMIN_EMAIL DJANGO_ADMIN_UPDATE  as the flags above (flags win)
  DJANGO_SUPERUSER_USERNAME DJANGO_SUPERUSER_PASSWORD DJANGO_SUPERUSER_EMAIL
                          Django's createsuperuser variables, each read only when neither its
                          flag nor its DJANGO_ADMIN_* variable is given (a DJANGO_ADMIN_PASSWORD*
                          variable counts for the password)
  DATABASE_URL, DATABASE_URL_<ALIAS>, PG*  the database, as for every djinit command
";

/// Where the password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// Plaintext (flag or environment). Hashed in the component.
    Plain(Secret),
    /// A file holding the plaintext (a mounted Secret).
    File(String),
    /// An already-hashed Django password, stored verbatim.
    Hash(Secret),
}

#[derive(Debug)]
pub struct Options {
    pub common: Common,
    pub username: String,
    pub email: Option<String>,
    pub password: PasswordSource,
    pub update: bool,
    pub validate: bool,
    pub iterations: u32,
    pub table: String,
    pub username_field: String,
    pub timeout: Duration,
}

/// `[A-Za-z_][A-Za-z0-9_$]*`, at most 63 bytes (PostgreSQL's NAMEDATALEN - 1).
fn check_identifier(what: &str, s: &str) -> Result<(), UsageError> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    if ok {
        Ok(())
    } else {
        Err(UsageError(format!(
            "{what} {s:?} is not a plain identifier (letters, digits, _ and $, at most 63 bytes)"
        )))
    }
}

fn truthy(v: &str) -> Result<bool, UsageError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "" | "0" | "false" | "no" | "off" => Ok(false),
        other => Err(UsageError(format!(
            "DJANGO_ADMIN_UPDATE expects 1/true/yes or 0/false/no, got {other:?}"
        ))),
    }
}

/// The variables the parser reads besides the database's: `DJANGO_ADMIN_*` and Django's own
/// `DJANGO_SUPERUSER_USERNAME/PASSWORD/EMAIL` (its fallbacks).
pub const PARSER_ENV: &[&str] = &[
    "DJANGO_ADMIN_USERNAME",
    "DJANGO_ADMIN_PASSWORD",
    "DJANGO_ADMIN_PASSWORD_FILE",
    "DJANGO_ADMIN_PASSWORD_HASH",
    "DJANGO_ADMIN_EMAIL",
    "DJANGO_ADMIN_UPDATE",
    "DJANGO_SUPERUSER_USERNAME",
    "DJANGO_SUPERUSER_PASSWORD",
    "DJANGO_SUPERUSER_EMAIL",
];

impl CommandLine for Options {
    const PARSER_ENV: &'static [&'static str] = PARSER_ENV;

    /// The database, the variables of [`PARSER_ENV`], and the password file when the password
    /// comes from one (`--password-file PATH`, else `$DJANGO_ADMIN_PASSWORD_FILE`), read-only.
    /// No UDP, nothing writable.
    fn needs(&self, _env: Env<'_>) -> Needs {
        Needs {
            database: Some(self.common.database.clone()),
            env: PARSER_ENV.iter().map(|v| v.to_string()).collect(),
            files: match &self.password {
                PasswordSource::File(path) => vec![path.clone()],
                _ => vec![],
            },
            ..Needs::default()
        }
    }

    fn parse_args(args: &mut Args, env: Env<'_>) -> Result<Options, UsageError> {
        let env = |k: &str| env(k).filter(|v| !v.is_empty());
        let mut common = Common::default();
        let (mut username, mut email) = (None, None);
        let mut sources: Vec<(&'static str, PasswordSource)> = Vec::new();
        let (mut update, mut validate) = (false, true);
        let mut iterations = DEFAULT_ITERATIONS;
        let mut table = "auth_user".to_string();
        let mut username_field = "username".to_string();
        let mut timeout = Duration::from_secs(30);
        while let Some(arg) = args.next()? {
            if common.handle(&arg, args, "ensureadmin", HELP)? {
                continue;
            }
            match &arg {
                a if a.is('u', "username") => username = Some(args.value()?),
                a if a.is('e', "email") => email = Some(args.value()?),
                a if a.is('p', "password") => sources.push((
                    "--password",
                    PasswordSource::Plain(Secret::new(args.value()?)),
                )),
                a if a.is_long("password-file") => {
                    sources.push(("--password-file", PasswordSource::File(args.value()?)))
                }
                a if a.is_long("password-hash") => sources.push((
                    "--password-hash",
                    PasswordSource::Hash(Secret::new(args.value()?)),
                )),
                a if a.is_long("update") => update = true,
                a if a.is_long("no-validate") => validate = false,
                a if a.is_long("iterations") => {
                    iterations = args.number()?;
                    if iterations == 0 {
                        return Err(UsageError("--iterations must be at least 1".into()));
                    }
                    if iterations > MAX_ITERATIONS {
                        return Err(UsageError(format!(
                            "--iterations must be at most {MAX_ITERATIONS} \
                             ({ITERATIONS_FACTOR}x Django 5.2's default {DEFAULT_ITERATIONS})"
                        )));
                    }
                }
                a if a.is_long("table") => table = args.value()?,
                a if a.is_long("username-field") => username_field = args.value()?,
                a if a.is('t', "timeout") => timeout = args.seconds()?,
                Arg::Short(_) | Arg::Long(_) | Arg::Value(_) => return Err(arg.unexpected()),
            }
        }
        if sources.is_empty() {
            for (var, make) in [
                (
                    "DJANGO_ADMIN_PASSWORD",
                    (|v| PasswordSource::Plain(Secret::new(v))) as fn(String) -> PasswordSource,
                ),
                ("DJANGO_ADMIN_PASSWORD_FILE", PasswordSource::File),
                ("DJANGO_ADMIN_PASSWORD_HASH", |v| {
                    PasswordSource::Hash(Secret::new(v))
                }),
            ] {
                if let Some(v) = env(var) {
                    sources.push((var, make(v)));
                }
            }
        }
        if sources.is_empty() {
            if let Some(v) = env("DJANGO_SUPERUSER_PASSWORD") {
                sources.push((
                    "DJANGO_SUPERUSER_PASSWORD",
                    PasswordSource::Plain(Secret::new(v)),
                ));
            }
        }
        let password = match sources.len() {
            0 => return Err(UsageError(
                "Password is required. Set DJANGO_ADMIN_PASSWORD (or DJANGO_ADMIN_PASSWORD_FILE, \
                     DJANGO_ADMIN_PASSWORD_HASH, DJANGO_SUPERUSER_PASSWORD) or use --password, \
                     --password-file or --password-hash."
                    .into(),
            )),
            1 => sources.pop().expect("one").1,
            _ => {
                let names: Vec<&str> = sources.iter().map(|(n, _)| *n).collect();
                return Err(UsageError(format!(
                    "give exactly one password source, got {}",
                    names.join(" and ")
                )));
            }
        };
        if matches!(&password, PasswordSource::Plain(s) | PasswordSource::Hash(s) if s.expose().is_empty())
            || matches!(&password, PasswordSource::File(p) if p.is_empty())
        {
            return Err(UsageError("the password is empty".into()));
        }
        let email = email
            .or_else(|| env("DJANGO_ADMIN_EMAIL"))
            .or_else(|| env("DJANGO_SUPERUSER_EMAIL"));
        let username = username
            .or_else(|| env("DJANGO_ADMIN_USERNAME"))
            .or_else(|| env("DJANGO_SUPERUSER_USERNAME"));
        let update = update
            || env("DJANGO_ADMIN_UPDATE")
                .map(|v| truthy(&v))
                .transpose()?
                .unwrap_or(false);
        match table.split_once('.') {
            Some((schema, name)) => {
                check_identifier("--table schema", schema)?;
                check_identifier("--table", name)?;
            }
            None => check_identifier("--table", &table)?,
        }
        check_identifier("--username-field", &username_field)?;
        // With email as the username field, the email is the username.
        let username = match username {
            Some(u) if !u.is_empty() => u,
            _ if username_field == "email" && email.as_deref().is_some_and(|e| !e.is_empty()) => {
                email.clone().expect("checked")
            }
            _ => return Err(UsageError(
                "Username is required. Set DJANGO_ADMIN_USERNAME (or DJANGO_SUPERUSER_USERNAME) \
                     or use --username."
                    .into(),
            )),
        };
        Ok(Options {
            common,
            username,
            email,
            password,
            update,
            validate,
            iterations,
            table,
            username_field,
            timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The runner's entry for this command.
    fn needs(args: &[String], env: Env<'_>) -> Needs {
        Options::needs_of(args, env)
    }
    use std::collections::HashMap;

    fn parse(args: &[&str], env: &[(&str, &str)]) -> Result<Options, UsageError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Options::parse(Args::from_iter(args.iter().copied()), &|k| {
            env.get(k).cloned()
        })
        .map(|p| p.run().expect("options"))
    }

    /// Issue 9: `-u -dx` is the username `-dx` (an option's value is the next argument,
    /// whatever it looks like), not `-u` without a value and the alias `x`. The runner computes
    /// the needs with this parser, so it grants the `default` database the component connects
    /// to. (Django's argparse would refuse the line: `-dx` looks like its `-d` option.)
    #[test]
    fn option_values_are_never_options_issue_9() {
        let o = parse(&["-u", "-dx"], &[("DJANGO_ADMIN_PASSWORD", PW)]).unwrap();
        assert_eq!(
            (o.username.as_str(), o.common.database.as_str()),
            ("-dx", "default")
        );
        let args = ["-u", "-dx"].map(String::from);
        let env = |k: &str| (k == "DJANGO_ADMIN_PASSWORD").then(|| PW.to_string());
        assert_eq!(needs(&args, &env).database.as_deref(), Some("default"));
        // A value that looks like --password-file is -p's value: no file needed.
        let args = ["-p", "--password-file", "-u", "x"].map(String::from);
        assert!(needs(&args, &|_| None).files.is_empty());
    }

    #[test]
    fn needs_the_password_file_from_flag_or_env() {
        let env = |k: &str| (k == "DJANGO_ADMIN_PASSWORD_FILE").then(|| "/env/dir/pw".to_string());
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let n = needs(&v(&["-u", "admin"]), &env);
        assert_eq!(n.files, ["/env/dir/pw"]);
        assert_eq!(n.database.as_deref(), Some("default"));
        for name in PARSER_ENV {
            assert!(n.env.contains(&name.to_string()));
        }
        assert!(n.output_dir.is_none() && n.nameservers.is_empty() && n.connect.is_empty());
        // The flag wins over the variable.
        assert_eq!(
            needs(&v(&["-u", "a", "--password-file", "/flag/pw"]), &|_| None).files,
            ["/flag/pw"]
        );
        // A bad command line: the variables only, so the component reports the same error.
        let n = needs(&v(&["--bogus"]), &env);
        assert_eq!(
            (n.database, n.files.len(), n.env.len()),
            (None, 0, PARSER_ENV.len())
        );
    }

    const PW: &str = "Zebra-Quartz-91!";

    #[test]
    fn env_like_the_python_command() {
        let o = parse(
            &[],
            &[
                ("DJANGO_ADMIN_USERNAME", "admin"),
                ("DJANGO_ADMIN_PASSWORD", PW),
                ("DJANGO_ADMIN_EMAIL", "a@example.com"),
            ],
        )
        .unwrap();
        assert_eq!(o.username, "admin");
        assert_eq!(o.email.as_deref(), Some("a@example.com"));
        assert_eq!(o.password, PasswordSource::Plain(Secret::new(PW)));
        assert!(!o.update && o.validate);
        assert_eq!(o.iterations, 1_000_000);
        assert_eq!(
            (o.table.as_str(), o.username_field.as_str()),
            ("auth_user", "username")
        );
        assert!(
            !format!("{o:?}").contains(PW),
            "Debug must not show the password"
        );
    }

    #[test]
    fn flags_win_over_env() {
        let o = parse(
            &[
                "-u",
                "root",
                "--password-file",
                "/run/secrets/pw",
                "-e",
                "r@x.io",
                "--update",
                "--no-validate",
                "--iterations",
                "600000",
                "--table",
                "accounts.users",
                "--username-field",
                "email",
                "-t",
                "5",
            ],
            &[
                ("DJANGO_ADMIN_USERNAME", "admin"),
                ("DJANGO_ADMIN_PASSWORD", PW),
                ("DJANGO_ADMIN_EMAIL", "a@b.c"),
            ],
        )
        .unwrap();
        assert_eq!(o.username, "root");
        assert_eq!(o.email.as_deref(), Some("r@x.io"));
        assert_eq!(o.password, PasswordSource::File("/run/secrets/pw".into()));
        assert!(o.update && !o.validate);
        assert_eq!(o.iterations, 600_000);
        assert_eq!(o.table, "accounts.users");
        assert_eq!(o.timeout, Duration::from_secs(5));
    }

    #[test]
    fn update_and_hash_from_env() {
        let h = "pbkdf2_sha256$1$ab$9SIyf39Ef0M07uthWU5/H75rodHHMhyyIpE5ddjEUm0=";
        let o = parse(
            &["-u", "a"],
            &[
                ("DJANGO_ADMIN_PASSWORD_HASH", h),
                ("DJANGO_ADMIN_UPDATE", "1"),
            ],
        )
        .unwrap();
        assert_eq!(o.password, PasswordSource::Hash(Secret::new(h)));
        assert!(o.update);
        assert!(parse(&["-u", "a", "-p", PW], &[("DJANGO_ADMIN_UPDATE", "maybe")]).is_err());
    }

    #[test]
    fn django_superuser_variables_come_last() {
        // Alone, as createsuperuser --noinput reads them.
        let o = parse(
            &[],
            &[
                ("DJANGO_SUPERUSER_USERNAME", "su"),
                ("DJANGO_SUPERUSER_PASSWORD", PW),
                ("DJANGO_SUPERUSER_EMAIL", "su@example.com"),
            ],
        )
        .unwrap();
        assert_eq!(o.username, "su");
        assert_eq!(o.email.as_deref(), Some("su@example.com"));
        assert_eq!(o.password, PasswordSource::Plain(Secret::new(PW)));
        // DJANGO_ADMIN_* win, field by field; any DJANGO_ADMIN_PASSWORD* counts for the password.
        let all = [
            ("DJANGO_SUPERUSER_USERNAME", "su"),
            ("DJANGO_SUPERUSER_PASSWORD", "superuser-pw"),
            ("DJANGO_SUPERUSER_EMAIL", "su@example.com"),
            ("DJANGO_ADMIN_USERNAME", "admin"),
            ("DJANGO_ADMIN_PASSWORD_FILE", "/run/secrets/pw"),
        ];
        let o = parse(&[], &all).unwrap();
        assert_eq!(o.username, "admin");
        assert_eq!(o.email.as_deref(), Some("su@example.com"));
        assert_eq!(o.password, PasswordSource::File("/run/secrets/pw".into()));
        // Flags win over both.
        let o = parse(&["-u", "flag", "-e", "f@x.io", "-p", PW], &all).unwrap();
        assert_eq!(o.username, "flag");
        assert_eq!(o.email.as_deref(), Some("f@x.io"));
        assert_eq!(o.password, PasswordSource::Plain(Secret::new(PW)));
        // With email as the username field, DJANGO_SUPERUSER_EMAIL is the username, as in Django.
        let o = parse(
            &["--username-field", "email"],
            &[
                ("DJANGO_SUPERUSER_EMAIL", "Boss@Corp.IO"),
                ("DJANGO_SUPERUSER_PASSWORD", PW),
            ],
        )
        .unwrap();
        assert_eq!(o.username, "Boss@Corp.IO");
        // Empty counts as unset.
        let e = parse(&["-u", "a"], &[("DJANGO_SUPERUSER_PASSWORD", "")]).unwrap_err();
        assert!(e.0.contains("DJANGO_SUPERUSER_PASSWORD"), "{}", e.0);
    }

    #[test]
    fn iterations_are_capped_and_the_help_says_where() {
        let max = MAX_ITERATIONS.to_string();
        assert!(parse(&["-u", "a", "-p", PW, "--iterations", &max], &[]).is_ok());
        let over = (MAX_ITERATIONS + 1).to_string();
        let e = parse(&["-u", "a", "-p", PW, "--iterations", &over], &[]).unwrap_err();
        assert!(e.0.contains(&format!("at most {max}")), "{}", e.0);
        assert_eq!(
            HELP.matches(&max).count(),
            2,
            "--help names the cap for --update and --iterations"
        );
    }

    #[test]
    fn email_as_username_field() {
        let o = parse(
            &["--username-field", "email", "-e", "Boss@Corp.IO", "-p", PW],
            &[],
        )
        .unwrap();
        assert_eq!(o.username, "Boss@Corp.IO");
    }

    #[test]
    fn usage_errors_never_echo_the_password() {
        type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
        let cases: Vec<Case> = vec![
            (vec!["-p", PW], vec![], "Username is required"),
            (vec!["-u", "a"], vec![], "Password is required"),
            (
                vec!["-u", "a", "-p", PW, "--password-hash", "x"],
                vec![],
                "exactly one password source",
            ),
            (
                vec!["-u", "a"],
                vec![
                    ("DJANGO_ADMIN_PASSWORD", PW),
                    ("DJANGO_ADMIN_PASSWORD_FILE", "/f"),
                ],
                "exactly one",
            ),
            (
                vec!["-u", "a", "-p", PW, "--table", "auth_user; DROP TABLE x"],
                vec![],
                "not a plain identifier",
            ),
            (
                vec!["-u", "a", "-p", PW, "--username-field", "user name"],
                vec![],
                "not a plain identifier",
            ),
            (
                vec!["-u", "a", "-p", PW, "--iterations", "0"],
                vec![],
                "at least 1",
            ),
            (
                vec!["-u", "a", "-p", PW, "--bogus"],
                vec![],
                "unknown option --bogus",
            ),
        ];
        for (args, env, want) in cases {
            let e = parse(&args, &env).expect_err(want);
            assert!(e.0.contains(want), "{} !~ {want}", e.0);
            assert!(!e.0.contains(PW));
        }
        // Flags suppress the environment's password sources entirely.
        assert!(parse(
            &["-u", "a", "-p", PW],
            &[("DJANGO_ADMIN_PASSWORD_FILE", "/f")]
        )
        .is_ok());
    }
}
