//! `lockedmigrate`: applies a migration bundle under a PostgreSQL advisory lock.
//!
//! Grants: the database alias's environment variables and outbound TCP to its hosts (as
//! `wait4db`), `DJINIT_MIGRATIONS`, and the bundle directory (`--bundle DIR`, else
//! `$DJINIT_MIGRATIONS`) read-only at the same path. Nothing writable, no UDP.

use super::{database, Command};
use crate::policy::{DirGrant, EnvView, Grants};

pub const COMMAND: Command = Command {
    name: "lockedmigrate",
    summary:
        "apply a migration bundle under an advisory lock (--bundle DIR, -L ID, --lock-timeout SECS)",
    grants,
};

/// The bundle directory as the component resolves it: the last `--bundle`, else
/// `$DJINIT_MIGRATIONS`; mounted read-only at the same path.
pub fn bundle_dir(args: &[String], env: &EnvView) -> Option<DirGrant> {
    let mut found = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        } else if a == "--bundle" {
            found = it.next().cloned();
        } else if let Some(v) = a.strip_prefix("--bundle=") {
            found = Some(v.to_string());
        }
    }
    let dir = found.or_else(|| env.get("DJINIT_MIGRATIONS").filter(|v| !v.is_empty()))?;
    Some(DirGrant::read_only(dir.clone(), dir))
}

/// Database grants + the bundle: shared with `checkmigrations`.
pub fn bundle_grants(args: &[String], env: &EnvView) -> Grants {
    let mut g = database::grants(&database::alias(args), env);
    g.env.push("DJINIT_MIGRATIONS".into());
    g.dirs.extend(bundle_dir(args, env));
    g
}

fn grants(args: &[String], env: &EnvView) -> Grants {
    bundle_grants(args, env)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::EnvGrant;

    #[test]
    fn bundle_from_flag_or_env_read_only() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let o = [EnvGrant::parse("DJINIT_MIGRATIONS=/env/b").unwrap()];
        let env = EnvView { overrides: &o };
        assert_eq!(
            bundle_dir(&v(&[]), &env),
            Some(DirGrant::read_only("/env/b", "/env/b"))
        );
        assert_eq!(
            bundle_dir(&v(&["--bundle", "/f"]), &env),
            Some(DirGrant::read_only("/f", "/f"))
        );
        assert_eq!(
            bundle_dir(&v(&["--bundle=/g"]), &env),
            Some(DirGrant::read_only("/g", "/g"))
        );
        let g = grants(&v(&[]), &env);
        assert!(g.dirs.iter().all(|d| !d.writable));
        assert!(g.env.contains(&"DJINIT_MIGRATIONS".to_string()));
    }
}
