//! `ensureadmin`: makes sure a Django superuser exists.
//!
//! Grants: the database alias's environment variables and outbound TCP to its hosts (as
//! `wait4db`), the `DJANGO_ADMIN_*` variables the command reads and Django's own
//! `DJANGO_SUPERUSER_USERNAME/PASSWORD/EMAIL` (its fallbacks), and — only when a password file
//! is named (`--password-file PATH`, else `$DJANGO_ADMIN_PASSWORD_FILE`) — that file, read-only,
//! at the same path ([`crate::files`]: its directory, or a private copy when it is a symlink out
//! of it). WASI mounts directories, not single files, so files next to the password file are
//! readable too: mount the Secret with only that key (`items:` in the volume) to keep the
//! component's view to the one file. No UDP, nothing writable.

use super::{database, Command};
use crate::policy::{EnvView, Grants};

pub const COMMAND: Command = Command {
    name: "ensureadmin",
    summary: "make sure a Django superuser exists (-u USER, password from env/file/hash, --update)",
    grants,
};

/// The variables ensureadmin reads besides the database's.
pub const ENV: [&str; 9] = [
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

/// ensureadmin's options that take a value (so their values are never mistaken for options).
const TAKES_VALUE: [&str; 18] = [
    "-u",
    "--username",
    "-p",
    "--password",
    "-e",
    "--email",
    "--password-hash",
    "--iterations",
    "--table",
    "--username-field",
    "-t",
    "--timeout",
    "-d",
    "--database",
    "-v",
    "--verbosity",
    "--settings",
    "--pythonpath",
];

/// The `--password-file` argument (last one wins), as the component's parser reads it.
fn password_file_arg(args: &[String]) -> Option<String> {
    let mut found = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        } else if a == "--password-file" {
            found = it.next().cloned();
        } else if let Some(v) = a.strip_prefix("--password-file=") {
            found = Some(v.to_string());
        } else if TAKES_VALUE.contains(&a.as_str()) {
            it.next();
        }
    }
    found
}

fn grants(args: &[String], env: &EnvView) -> Grants {
    let mut g = database::grants(&database::alias(args), env);
    g.env.extend(ENV.iter().map(|s| s.to_string()));
    // Flags win over the environment in the component, so here too.
    let file = password_file_arg(args).or_else(|| {
        env.get("DJANGO_ADMIN_PASSWORD_FILE")
            .filter(|v| !v.is_empty())
    });
    g.files.extend(file);
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::EnvGrant;

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn password_file_forms() {
        assert_eq!(
            password_file_arg(&v(&["--password-file", "/run/s/pw"])),
            Some("/run/s/pw".into())
        );
        assert_eq!(
            password_file_arg(&v(&["--password-file=/a/b"])),
            Some("/a/b".into())
        );
        // A value that looks like the flag is the value of -p, not the flag.
        assert_eq!(
            password_file_arg(&v(&["-p", "--password-file", "-u", "x"])),
            None
        );
        assert_eq!(
            password_file_arg(&v(&["--", "--password-file", "/x"])),
            None
        );
    }

    #[test]
    fn grants_env_db_and_only_the_file_directory() {
        let o = [
            EnvGrant::parse("DATABASE_URL=postgres://u:sekrit@db:5433/app").unwrap(),
            EnvGrant::parse("DJANGO_ADMIN_PASSWORD_FILE=/env/dir/pw").unwrap(),
        ];
        let env = EnvView { overrides: &o };
        let g = grants(&v(&["-u", "admin"]), &env);
        assert!(g.env.contains(&"DATABASE_URL".to_string()));
        for name in ENV {
            assert!(g.env.contains(&name.to_string()));
        }
        assert_eq!(g.tcp.len(), 1);
        assert_eq!((g.tcp[0].host.as_str(), g.tcp[0].port), ("db", 5433));
        assert_eq!(g.files, ["/env/dir/pw"]);
        assert!(g.dirs.is_empty());
        assert!(g.udp.is_empty());
        // The flag wins over the variable.
        let g = grants(&v(&["--password-file", "/flag/pw"]), &env);
        assert_eq!(g.files, ["/flag/pw"]);
    }
}
