//! The command table: the embedded commands, and what each is granted.
//!
//! What a command may touch is computed by the command's own code: each command library exports
//! a pure `needs(args, env) -> djinit_cli::Needs` that parses the command line with the very
//! parser the component runs (`djinit_cli::args`, which never prints or exits) and says which
//! database alias, bundle directory, files, output directory, nameservers and peers it will use.
//! [`grants`] is the one place that turns needs into [`Grants`]; nothing in this module scans
//! arguments, so the runner and the component cannot disagree on what a command line means
//! (issue 9: `ensureadmin -u -dx` is the username `-dx`, not the alias `x`).
//!
//! Why library `needs()` and not needs exported through WIT (the runner would instantiate the
//! component with nothing granted and call an export `needs(args, env)` before the real run):
//! the WIT way would let any third-party component declare its needs, but (1) it costs a second
//! instantiation per run (measured start-up of an embedded command is ~40 ms of which
//! instantiation is most; a second one would nearly double it), (2) the runner would be granting
//! what untrusted code asks for — for djinit's own commands the policy is part of the runner,
//! reviewed with it, and a component cannot widen it — and (3) a `djinit run FILE` component is
//! granted only what the runner's options say anyway, so third-party components gain nothing
//! they need. The cost of the library way: the runner links the command libraries (their
//! parsers, natively; the PostgreSQL client it already linked for the alias's settings).
//!
//! Adding a command: a crate in `components/<name>` with a library exporting `needs` and a
//! binary, its name in `components/commands.txt` (the list `just build` compiles and lints), and
//! an entry in [`ALL`] (a test keeps the two equal).
//! A command embedded without an entry here runs with nothing granted but the runner options.
//!
//! A policy never fails: a bad command line grants only the variables the command's parser reads
//! (the component then reports the problem with its usual message and exit code), and a bad or
//! missing database setting grants its variables only.

pub mod database;

use std::path::Path;

use djinit_cli::{CommandLine, HostCommand, Needs, Peer};

use crate::exec::Run;
use crate::grants::{DirGrant, Grants, Target};
use crate::policy::EnvView;

/// What a command needs for `args` in environment `env` (the command library's `needs`).
pub type NeedsFn = fn(args: &[String], env: &dyn Fn(&str) -> Option<String>) -> Needs;

/// Runs a command whose needs name a [`Needs::host_command`]: the component holds something for
/// the host's native command (lockedmigrate `--exec` and `--python`: [`crate::lock_exec::run`]).
pub type NativeFn = fn(run: Run, host_command: HostCommand) -> anyhow::Result<u8>;

/// One embedded command.
pub struct Command {
    pub name: &'static str,
    /// One line for `djinit --help`.
    pub summary: &'static str,
    pub needs: NeedsFn,
    /// What is special about running it, if anything.
    pub native: Option<NativeFn>,
}

/// How to run a command: its grants, and the native command a [`Command::native`] hook runs.
#[derive(Debug, Default)]
pub struct Plan {
    pub grants: Grants,
    pub host_command: Option<HostCommand>,
}

/// Every command with a policy.
pub const ALL: &[Command] = &[
    Command {
        name: "wait4db",
        summary: "wait until the database accepts connections (-t SECS, -d ALIAS)",
        needs: <wait4db::Options as CommandLine>::needs_of,
        native: None,
    },
    Command {
        name: "dns-discover",
        summary: "find memcached servers by DNS, print or keep a file current (--watch)",
        needs: <dns_discover::cli::Options as CommandLine>::needs_of,
        native: None,
    },
    Command {
        name: "ensureadmin",
        summary:
            "make sure a Django superuser exists (-u USER, password from env/file/hash, --update)",
        needs: <ensureadmin::options::Options as CommandLine>::needs_of,
        native: None,
    },
    Command {
        name: "lockedmigrate",
        summary: "apply a migration bundle under an advisory lock (--bundle DIR, -L ID, --lock-timeout SECS)",
        needs: <lockedmigrate::Options as CommandLine>::needs_of,
        native: Some(crate::lock_exec::run),
    },
    Command {
        name: "checkmigrations",
        summary:
            "exit 0 when every migration of the bundle is applied, 1 when some are pending (--wait)",
        needs: <checkmigrations::Options as CommandLine>::needs_of,
        native: None,
    },
];

pub fn find(name: &str) -> Option<&'static Command> {
    ALL.iter().find(|c| c.name == name)
}

/// Where the host's resolver configuration is read from, for a command that wants it handed
/// over ([`Needs::resolv_conf_var`]).
const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";

impl Command {
    /// How to run this command with `args` in the environment `env` will show it.
    pub fn plan(&self, args: &[String], env: &EnvView) -> Plan {
        let lookup = |k: &str| env.get(k);
        let needs = (self.needs)(args, &lookup);
        let Some(var) = needs.resolv_conf_var.filter(|v| env.get(v).is_none()) else {
            return Plan {
                grants: grants(&needs, env, Vec::new()),
                host_command: needs.host_command,
            };
        };
        // The component reads no host file: hand /etc/resolv.conf over in the variable, and
        // compute the needs again with it (its nameservers are the ones granted).
        let text = std::fs::read_to_string(HOST_RESOLV_CONF).unwrap_or_default();
        let with_conf = |k: &str| {
            if k == var {
                Some(text.clone())
            } else {
                env.get(k)
            }
        };
        let needs = (self.needs)(args, &with_conf);
        Plan {
            grants: grants(&needs, env, vec![(var.to_string(), text.clone())]),
            host_command: needs.host_command,
        }
    }
}

/// The one translation from needs to grants: the database alias's variables, TCP to its hosts
/// and its TLS files ([`database::grants`]); the variables the command reads; the bundle
/// directory read-only at the same path; files read-only; the output directory read-write at the
/// same path; UDP and TCP to the nameservers; TCP to the peers; `env_set` values computed here.
pub fn grants(needs: &Needs, env: &EnvView, env_set: Vec<(String, String)>) -> Grants {
    let mut g = match &needs.database {
        Some(alias) => database::grants(alias, env),
        None => Grants::default(),
    };
    g.env.extend(needs.env.iter().cloned());
    let path = |p: &Path| p.to_string_lossy().into_owned();
    g.dirs.extend(
        needs
            .bundle
            .as_deref()
            .map(|b| DirGrant::read_only(path(b), path(b))),
    );
    g.files.extend(needs.files.iter().cloned());
    g.dirs.extend(needs.output_dir.as_deref().map(|d| DirGrant {
        host: path(d),
        guest: path(d),
        writable: true,
    }));
    for ns in &needs.nameservers {
        let t = Target {
            host: ns.ip().to_string(),
            port: ns.port(),
        };
        g.udp.push(t.clone());
        g.tcp.push(t);
    }
    g.tcp.extend(needs.connect.iter().map(|p| match p {
        Peer::Host(host, port) => Target {
            host: host.clone(),
            port: *port,
        },
        Peer::AnyHost(port) => Target::any_host(*port),
    }));
    g.env_set = env_set;
    g.sigterm_is_shutdown = needs.sigterm_is_shutdown;
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grants::EnvGrant;

    fn plan(name: &str, args: &[&str], env: &[&str]) -> Plan {
        let o: Vec<EnvGrant> = env.iter().map(|e| EnvGrant::parse(e).unwrap()).collect();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        find(name)
            .expect("command")
            .plan(&args, &EnvView { overrides: &o })
    }

    fn g(name: &str, args: &[&str], env: &[&str]) -> Grants {
        plan(name, args, env).grants
    }

    /// The table lists the commands `just build` compiles (components/commands.txt), in order,
    /// each a workspace member.
    #[test]
    fn table_matches_the_component_list() {
        let list = include_str!("../../../components/commands.txt");
        let names: Vec<&str> = list.lines().filter(|l| !l.trim().is_empty()).collect();
        let table: Vec<&str> = ALL.iter().map(|c| c.name).collect();
        assert_eq!(
            names, table,
            "components/commands.txt and commands::ALL differ"
        );
        let workspace = include_str!("../../../Cargo.toml");
        for name in names {
            assert!(
                workspace.contains(&format!("\"components/{name}\"")),
                "{name} is not a workspace member"
            );
        }
    }

    /// Only lockedmigrate has a native hook, and it runs only for `--exec -- CMD` (once) and
    /// `--python CMD` (per Django step; not for the read-only `--plan`).
    #[test]
    fn lockedmigrate_exec_and_python_are_the_native_hook() {
        let natives: Vec<&str> = ALL
            .iter()
            .filter(|c| c.native.is_some())
            .map(|c| c.name)
            .collect();
        assert_eq!(natives, ["lockedmigrate"]);
        let p = plan(
            "lockedmigrate",
            &["-L", "5", "--exec", "--", "sh", "-c", "true"],
            &[],
        );
        let host = |argv: &[&str], when| HostCommand {
            argv: argv.iter().map(|s| s.to_string()).collect(),
            when,
        };
        assert_eq!(
            p.host_command,
            Some(host(&["sh", "-c", "true"], djinit_cli::HostRun::Once))
        );
        let p = plan("lockedmigrate", &["--bundle", "/b"], &[]);
        assert_eq!(p.host_command, None);
        let p = plan(
            "lockedmigrate",
            &[
                "--bundle",
                "/b",
                "--python",
                "/venv/bin/python 'manage dir/manage.py'",
            ],
            &[],
        );
        assert_eq!(
            p.host_command,
            Some(host(
                &["/venv/bin/python", "manage dir/manage.py"],
                djinit_cli::HostRun::PerStep
            ))
        );
        let p = plan(
            "lockedmigrate",
            &["--bundle", "/b", "--python", "python manage.py", "--plan"],
            &[],
        );
        assert_eq!(p.host_command, None);
    }

    fn t(host: &str, port: u16) -> Target {
        Target {
            host: host.into(),
            port,
        }
    }

    /// Issue 9: `ensureadmin -u -dx` connects to the default database (the username is `-dx`):
    /// the runner grants that database, not alias `x`, because it asks the component's parser.
    #[test]
    fn ensureadmin_u_dx_grants_the_default_database_issue_9() {
        let env = [
            "DATABASE_URL=postgres://u@db-default:5433/app",
            "DATABASE_URL_X=postgres://u@db-x:5434/app",
            "DJANGO_ADMIN_PASSWORD=Zebra-Quartz-91!",
        ];
        let x = g("ensureadmin", &["-u", "-dx"], &env);
        assert_eq!(x.tcp, [t("db-default", 5433)]);
        assert!(x.env.contains(&"DATABASE_URL".to_string()));
        assert!(!x.env.contains(&"DATABASE_URL_X".to_string()));
        // `-d x` as an option does name alias x.
        let x = g("ensureadmin", &["-u", "admin", "-dx"], &env);
        assert_eq!(x.tcp, [t("db-x", 5434)]);
    }

    #[test]
    fn database_commands_get_the_database_and_their_variables() {
        let env = [
            "DATABASE_URL_REPLICA=postgres://u:sekrit@db1:6000,db2/app",
            "DJINIT_MIGRATIONS=/env/b",
        ];
        let x = g("wait4db", &["-t", "5", "-d", "replica"], &env);
        assert_eq!(x.env, ["DATABASE_URL_REPLICA"]);
        assert_eq!(x.tcp, [t("db1", 6000), t("db2", 5432)]);
        assert!(x.dirs.is_empty() && x.udp.is_empty() && x.files.is_empty());
        for name in ["lockedmigrate", "checkmigrations"] {
            let x = g(name, &["--database=replica"], &env);
            assert_eq!(
                x.env[..2],
                ["DATABASE_URL_REPLICA", "DJINIT_MIGRATIONS"],
                "{name}"
            );
            assert_eq!(x.dirs, [DirGrant::read_only("/env/b", "/env/b")], "{name}");
        }
        // lockedmigrate's zero-downtime guards read their defaults from the environment too.
        let x = g("lockedmigrate", &["-d", "replica"], &env);
        assert_eq!(x.env[2..], lockedmigrate::options::GUARD_ENV);
        let x = g(
            "wait4db",
            &["--migrated", "--bundle", "/f", "-dreplica"],
            &env,
        );
        assert_eq!(x.dirs, [DirGrant::read_only("/f", "/f")]);
        // After `--`, nothing is an option (lockedmigrate --exec's CMD has its own -d).
        let x = g(
            "lockedmigrate",
            &["--exec", "--", "manage.py", "-d", "replica"],
            &env,
        );
        assert!(x.tcp.is_empty(), "{:?}", x.tcp);
    }

    #[test]
    fn ensureadmin_gets_the_password_file_only() {
        let env = [
            "DATABASE_URL=postgres://u:sekrit@db:5433/app",
            "DJANGO_ADMIN_PASSWORD_FILE=/env/dir/pw",
        ];
        let x = g("ensureadmin", &["-u", "admin"], &env);
        assert_eq!(x.files, ["/env/dir/pw"]);
        assert!(x.dirs.is_empty() && x.udp.is_empty());
        assert!(x.env.contains(&"DJANGO_SUPERUSER_PASSWORD".to_string()));
        let x = g(
            "ensureadmin",
            &["-u", "a", "--password-file", "/flag/pw"],
            &env,
        );
        assert_eq!(x.files, ["/flag/pw"]);
    }

    #[test]
    fn dns_discover_nameservers_probe_and_output() {
        let x = g("dns-discover", &["memcached"], &[]);
        assert!(x.tcp.is_empty() && x.udp.is_empty() && x.dirs.is_empty() && x.env_set.is_empty());
        assert_eq!(x.env, ["DJANGO_CACHE_HOST", "DJINIT_RESOLV_CONF"]);
        let x = g(
            "dns-discover",
            &["--srv", "_memcache._tcp.mc", "--probe"],
            &["DJINIT_RESOLV_CONF=nameserver 10.96.0.10\n"],
        );
        assert_eq!(x.udp, [t("10.96.0.10", 53)]);
        assert_eq!(x.tcp, [t("10.96.0.10", 53), Target::any_host(0)]);
        assert!(x.env_set.is_empty(), "--env value wins");
        let x = g("dns-discover", &["mc", "-o", "/run/mc/servers"], &[]);
        assert_eq!(
            x.dirs,
            [DirGrant {
                host: "/run/mc".into(),
                guest: "/run/mc".into(),
                writable: true
            }]
        );
    }

    #[test]
    fn host_resolv_conf_is_handed_over() {
        let x = g("dns-discover", &["--srv", "_m._tcp.mc"], &[]);
        let (name, text) = &x.env_set[0];
        assert_eq!(name, "DJINIT_RESOLV_CONF");
        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        assert_eq!(*text, host);
        let expected: Vec<Target> = dns_discover::resolv::ResolvConf::parse(&host)
            .nameservers
            .iter()
            .map(|ns| t(&ns.ip().to_string(), ns.port()))
            .collect();
        assert_eq!(x.udp, expected);
    }

    #[test]
    fn help_and_bad_flags_grant_no_network() {
        for (name, args) in [
            ("wait4db", &["--help"][..]),
            ("dns-discover", &["--version"]),
            ("dns-discover", &["mc", "--bogus"]),
            ("lockedmigrate", &["--bogus", "-d", "x"]),
        ] {
            let x = g(name, args, &["DATABASE_URL_X=postgres://u@h/db"]);
            assert!(
                x.tcp.is_empty() && x.udp.is_empty() && x.dirs.is_empty(),
                "{name} {args:?}"
            );
        }
    }
}
