//! `dns-discover`: memcached discovery by DNS (see the component's `--help`).
//!
//! The policy is derived from the component's own flag parser (`dns_discover::cli::Options`), so
//! it cannot drift from what the component does:
//!
//! * Environment: `DJANGO_CACHE_HOST` (HOST when no argument) and `DJINIT_RESOLV_CONF`.
//! * With the built-in DNS client (`--nameserver` or `--srv`): UDP and TCP (TCP for truncated
//!   replies) to the nameservers only — the `--nameserver` addresses, else the `nameserver` lines
//!   of the host's `/etc/resolv.conf`. The runner reads that file (the component cannot: no
//!   directory of the host is mounted for it) and hands its content over in
//!   `$DJINIT_RESOLV_CONF`; a `DJINIT_RESOLV_CONF` already in the environment (or `--env`) wins,
//!   and then its nameservers are the ones granted. With the host resolver (the default), no UDP
//!   at all: names are resolved by the host through wasi ip-name-lookup.
//! * `--probe`: TCP to the discovered endpoints' port. With the host resolver, only to the
//!   addresses HOST resolves to for the runner at connect time (the same resolver); with the
//!   built-in client the runner cannot see the answers, so any address on that port; with `--srv`
//!   the ports come from DNS too, so any address and port (the weakest grant; document it to
//!   users who care).
//! * `--output FILE`: FILE's directory mounted read-write at the same path (the component writes
//!   `.FILE.tmp` there and renames it over FILE). Nothing else.
//!
//! Bad flags grant the variables only; the component then reports them (exit 64).

use std::path::Path;

use djinit_cli::Args;
use dns_discover::cli::Options;
use dns_discover::discover::Target as Lookup;
use dns_discover::resolv::{self, ResolvConf};

use super::Command;
use crate::policy::{DirGrant, EnvView, Grants, Target};

pub const COMMAND: Command = Command {
    name: "dns-discover",
    summary: "find memcached servers by DNS, print or keep a file current (--watch)",
    grants,
};

/// Where the host's resolver configuration is read from.
const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";

fn grants(args: &[String], env: &EnvView) -> Grants {
    let mut g = Grants {
        env: vec!["DJANGO_CACHE_HOST".into(), resolv::ENV_VAR.into()],
        ..Grants::default()
    };
    // The component prints help/version itself; parsing them here would exit the runner.
    if args
        .iter()
        .any(|a| ["-h", "--help", "-V", "--version"].contains(&a.as_str()))
    {
        return g;
    }
    let Ok(opts) = Options::parse(Args::from_iter(args), &|k| env.get(k)) else {
        return g;
    };
    g.sigterm_is_shutdown = opts.watch;
    let dns_client = opts.uses_dns_client();
    if dns_client {
        let text = match env.get(resolv::ENV_VAR) {
            Some(t) => t,
            None => {
                let t = std::fs::read_to_string(HOST_RESOLV_CONF).unwrap_or_default();
                g.env_set.push((resolv::ENV_VAR.into(), t.clone()));
                t
            }
        };
        let nameservers = if opts.nameservers.is_empty() {
            ResolvConf::parse(&text).nameservers
        } else {
            opts.nameservers.clone()
        };
        for ns in nameservers {
            let t = Target {
                host: ns.ip().to_string(),
                port: ns.port(),
            };
            g.udp.push(t.clone());
            g.tcp.push(t);
        }
    }
    if opts.probe {
        let host = opts.host.as_deref().unwrap_or_default();
        match Lookup::parse(host, opts.port, opts.srv) {
            Ok(Lookup::Ip(ip, port)) => g.tcp.push(Target {
                host: ip.to_string(),
                port,
            }),
            Ok(Lookup::Name { name, port, .. }) if !dns_client => {
                g.tcp.push(Target { host: name, port })
            }
            Ok(Lookup::Name { port, .. }) => g.tcp.push(Target::any_host(port)),
            Ok(Lookup::Srv { .. }) => g.tcp.push(Target::any_host(0)),
            Err(_) => {}
        }
    }
    if let Some(out) = &opts.output {
        let dir = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let dir = dir.to_string_lossy().into_owned();
        g.dirs.push(DirGrant {
            host: dir.clone(),
            guest: dir,
            writable: true,
        });
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::EnvGrant;

    fn g(args: &[&str], env: &[&str]) -> Grants {
        let o: Vec<EnvGrant> = env.iter().map(|e| EnvGrant::parse(e).unwrap()).collect();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        grants(&args, &EnvView { overrides: &o })
    }

    fn t(host: &str, port: u16) -> Target {
        Target {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn host_resolver_needs_no_network_grant() {
        let x = g(&["memcached"], &[]);
        assert!(x.tcp.is_empty() && x.udp.is_empty() && x.dirs.is_empty() && x.env_set.is_empty());
        assert_eq!(
            x.env,
            vec![
                "DJANGO_CACHE_HOST".to_string(),
                "DJINIT_RESOLV_CONF".to_string()
            ]
        );
        // Probing: TCP to what the name resolves to, on the port.
        let x = g(&["memcached:11300", "--probe"], &[]);
        assert_eq!(x.tcp, vec![t("memcached", 11300)]);
        assert!(x.udp.is_empty());
    }

    #[test]
    fn dns_client_gets_its_nameservers_only() {
        let x = g(
            &["mc", "--nameserver", "127.0.0.1:5353", "--nameserver=[::1]"],
            &[],
        );
        assert_eq!(x.udp, vec![t("127.0.0.1", 5353), t("::1", 53)]);
        assert_eq!(x.tcp, x.udp);
        // Nameservers from the resolv.conf the component will see.
        let x = g(
            &["--srv", "_memcache._tcp.mc", "--probe"],
            &["DJINIT_RESOLV_CONF=nameserver 10.96.0.10\nsearch default.svc.cluster.local\n"],
        );
        assert_eq!(x.udp, vec![t("10.96.0.10", 53)]);
        assert_eq!(x.tcp, vec![t("10.96.0.10", 53), Target::any_host(0)]);
        assert!(x.env_set.is_empty(), "--env value wins");
        let x = g(
            &["mc", "--nameserver", "10.0.0.1", "--probe", "-p", "11300"],
            &[],
        );
        assert_eq!(x.tcp, vec![t("10.0.0.1", 53), Target::any_host(11300)]);
    }

    #[test]
    fn host_resolv_conf_is_handed_over() {
        let x = g(&["--srv", "_m._tcp.mc"], &[]);
        let (name, text) = &x.env_set[0];
        assert_eq!(name, "DJINIT_RESOLV_CONF");
        assert_eq!(
            *text,
            std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
        );
    }

    #[test]
    fn output_directory_only() {
        let x = g(&["mc", "-o", "/run/mc/servers"], &[]);
        assert_eq!(
            x.dirs,
            vec![DirGrant {
                host: "/run/mc".into(),
                guest: "/run/mc".into(),
                writable: true
            }]
        );
        let x = g(&["mc", "--output=servers"], &[]);
        assert_eq!(x.dirs[0].host, ".");
    }

    #[test]
    fn bad_flags_grant_nothing_but_variables() {
        for bad in [
            &["mc", "--bogus"][..],
            &["--nameserver", "x"],
            &["--help"],
            &[],
        ] {
            let x = g(bad, &[]);
            assert!(
                x.tcp.is_empty() && x.udp.is_empty() && x.dirs.is_empty(),
                "{bad:?}"
            );
        }
    }
}
