//! What database commands share: the alias they use, its environment variables, TCP to the
//! addresses it names, and read-only access to the TLS files it names.

use djinit_pg::config::{self, Config};

use crate::grants::{Grants, Target};
use crate::policy::EnvView;

/// The environment variables of database `alias` and outbound TCP to every host its
/// configuration lists (all of them: libpq semantics try each in turn). An invalid alias or an
/// unusable configuration grants the variables only, so the command can report the problem.
pub fn grants(alias: &str, env: &EnvView) -> Grants {
    let mut g = Grants::default();
    if config::check_alias(alias).is_err() {
        return g;
    }
    g.env = config::env_vars(alias);
    if let Ok(cfg) = Config::from_env(alias, &|k| env.get(k).map(Into::into)) {
        g.files = tls_files(&cfg);
        g.tcp = cfg
            .hosts
            .into_iter()
            .map(|h| Target {
                host: h.host,
                port: h.port,
            })
            .collect();
    }
    g
}

/// The TLS files the configuration names (`sslrootcert` unless `system`, `sslcert`, `sslkey`),
/// read-only, each opened by the component by the name it was given. [`crate::files`] mounts
/// their directory (WASI mounts directories, not files: keep certificates and keys in a
/// directory of their own, as Kubernetes mounts a Secret), or a private copy of just these files
/// when one is a symlink out of its directory (Debian's `/etc/ssl/certs/*.pem`). A file that does
/// not exist is not mounted; the component then reports it.
pub fn tls_files(cfg: &Config) -> Vec<String> {
    let root = cfg.sslrootcert.as_ref().filter(|r| *r != "system");
    [root, cfg.sslcert.as_ref(), cfg.sslkey.as_ref()]
        .into_iter()
        .flatten()
        .filter(|f| !f.is_empty())
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grants::EnvGrant;

    #[test]
    fn grants_follow_the_alias_configuration() {
        let o = [
            EnvGrant::parse("DATABASE_URL_REPLICA=postgres://u:sekrit@db1:6000,db2/app").unwrap(),
        ];
        let env = EnvView { overrides: &o };
        let g = grants("replica", &env);
        assert_eq!(g.env, vec!["DATABASE_URL_REPLICA".to_string()]);
        assert_eq!(
            g.tcp,
            vec![
                Target {
                    host: "db1".into(),
                    port: 6000
                },
                Target {
                    host: "db2".into(),
                    port: 5432
                }
            ]
        );
        // Unconfigured alias: the variable only (the command reports it).
        let g = grants("nothere", &env);
        assert_eq!(g.env, vec!["DATABASE_URL_NOTHERE".to_string()]);
        assert!(g.tcp.is_empty());
        assert_eq!(grants("bad-alias", &env), Grants::default());
    }

    #[test]
    fn tls_files_are_granted_read_only() {
        let url = "DATABASE_URL=postgres://u@db/app?sslmode=verify-full&sslrootcert=/d/ca.pem&sslcert=/d/c.pem&sslkey=/e/k.pem";
        let o = [EnvGrant::parse(url).unwrap()];
        let g = grants("default", &EnvView { overrides: &o });
        assert_eq!(g.files, ["/d/ca.pem", "/d/c.pem", "/e/k.pem"]);
        assert!(g.dirs.is_empty());
        let o = [EnvGrant::parse("DATABASE_URL=postgres://u@db/app?sslrootcert=system").unwrap()];
        assert!(grants("default", &EnvView { overrides: &o })
            .files
            .is_empty());
    }
}
