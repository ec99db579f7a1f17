//! The command line, and what the command needs from its host ([`Options::needs`]): the runner
//! derives its network policy from the same flags through the same parser.

use crate::discover::Target as Lookup;
use crate::format::{self, Format};
use crate::resolv::{self, parse_nameserver, ResolvConf};
use djinit_cli::args::{Arg, Args, Common};
use djinit_cli::{CommandLine, Env, Needs, Peer, UsageError};
use std::net::SocketAddr;
use std::path::Path;
use std::path::PathBuf;
use std::time::Duration;

/// The variables the command reads.
pub const PARSER_ENV: &[&str] = &["DJANGO_CACHE_HOST", resolv::ENV_VAR];

pub const HELP: &str = "\
Usage: dns-discover [OPTIONS] [HOST]

Find the memcached servers behind a name (a Kubernetes headless Service lists its ready pods
as A/AAAA records, and as SRV records _<port-name>._tcp.<service>) and print or write them as
ip:port, sorted and de-duplicated, IPv6 bracketed.

HOST defaults to $DJANGO_CACHE_HOST; HOST:PORT is accepted.

Resolution:
  -p, --port N              port of the endpoints (default 11211)
      --srv                 HOST is an SRV name: hosts and ports come from its SRV records
      --nameserver IP[:PORT]
                            ask this nameserver (repeatable, port 53 by default) with the
                            built-in DNS client instead of the host resolver; search domains
                            and ndots still come from resolv.conf
  Without --nameserver and --srv, names go through the host's resolver. With them, the
  built-in client uses UDP, TCP when a reply is truncated, and the nameservers, search list,
  ndots, timeout and attempts of the resolv.conf the runner passes in $DJINIT_RESOLV_CONF.

Waiting and probing:
      --min N               require at least N endpoints (default 1)
  -t, --timeout SEC         keep retrying until --min is met, at most SEC seconds (exit 75);
                            default 0: one attempt (with --watch: no limit for the first list)
  -i, --interval SEC        pause between attempts, and between --watch rounds (default 2)
      --probe               keep only endpoints that answer memcached's `version` command
      --probe-timeout SEC   per-endpoint probe deadline (default 1)

Output:
  -f, --format FMT          lines (default) | csv | json | env
      --var NAME            variable name for --format env (default MEMCACHED_SERVERS)
  -o, --output FILE         write FILE atomically (temporary file + rename in its directory)
                            instead of stdout
  -w, --watch               keep running: re-resolve every --interval, rewrite the output only
                            when the list changed, log added/removed endpoints on stderr, and
                            keep the last good list when a lookup fails or finds fewer than --min
  -v, --verbosity {0,1,2,3} progress on stderr (default 1)
      --log-format F        text (default) or json: one JSON object per line (env DJINIT_LOG_FORMAT)
  -h, --help                this help
  -V, --version             print the version
";

/// Parsed flags.
#[derive(Debug, Clone)]
pub struct Options {
    pub common: Common,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub srv: bool,
    pub nameservers: Vec<SocketAddr>,
    pub min: usize,
    /// Zero: one attempt (one-shot) / no limit (watch).
    pub timeout: Duration,
    pub interval: Duration,
    pub probe: bool,
    pub probe_timeout: Duration,
    pub format: Format,
    pub var: String,
    pub output: Option<PathBuf>,
    pub watch: bool,
}

impl CommandLine for Options {
    const PARSER_ENV: &'static [&'static str] = PARSER_ENV;

    fn parse_args(args: &mut Args, env: Env<'_>) -> Result<Options, UsageError> {
        let mut o = Options {
            common: Common::default(),
            host: None,
            port: None,
            srv: false,
            nameservers: Vec::new(),
            min: 1,
            timeout: Duration::ZERO,
            interval: Duration::from_secs(2),
            probe: false,
            probe_timeout: Duration::from_secs(1),
            format: Format::Lines,
            var: format::DEFAULT_VAR.into(),
            output: None,
            watch: false,
        };
        while let Some(arg) = args.next()? {
            if o.common.handle(&arg, args, "dns-discover", HELP)? {
                continue;
            }
            match &arg {
                Arg::Value(v) if o.host.is_none() => o.host = Some(v.clone()),
                _ if arg.is('p', "port") => {
                    let p: u16 = args.number()?;
                    if p == 0 {
                        return Err(UsageError("--port must be 1..65535".into()));
                    }
                    o.port = Some(p);
                }
                _ if arg.is_long("srv") => o.srv = true,
                _ if arg.is_long("nameserver") => {
                    let v = args.value()?;
                    o.nameservers
                        .push(parse_nameserver(&v).map_err(UsageError)?);
                }
                _ if arg.is_long("min") => o.min = args.number()?,
                _ if arg.is('t', "timeout") => o.timeout = args.seconds()?,
                _ if arg.is('i', "interval") => o.interval = args.seconds()?,
                _ if arg.is_long("probe") => o.probe = true,
                _ if arg.is_long("probe-timeout") => o.probe_timeout = args.seconds()?,
                _ if arg.is('f', "format") => {
                    let v = args.value()?;
                    o.format = Format::parse(&v).ok_or_else(|| {
                        UsageError(format!(
                            "--format expects lines, csv, json or env, got {v:?}"
                        ))
                    })?;
                }
                _ if arg.is_long("var") => {
                    let v = args.value()?;
                    if !format::valid_var(&v) {
                        return Err(UsageError(format!("--var {v:?} is not a variable name")));
                    }
                    o.var = v;
                }
                _ if arg.is('o', "output") => {
                    let v = args.value()?;
                    if v.is_empty() || v.ends_with('/') {
                        return Err(UsageError(format!("--output {v:?} is not a file name")));
                    }
                    o.output = Some(PathBuf::from(v));
                }
                _ if arg.is('w', "watch") => o.watch = true,
                _ => return Err(arg.unexpected()),
            }
        }
        if o.host.is_none() {
            o.host = env("DJANGO_CACHE_HOST").filter(|h| !h.trim().is_empty());
        }
        if o.host.is_none() {
            return Err(UsageError(
                "no HOST given (argument or DJANGO_CACHE_HOST)".into(),
            ));
        }
        if o.srv && o.port.is_some() {
            return Err(UsageError(
                "--port and --srv exclude each other (SRV records carry the ports)".into(),
            ));
        }
        if o.interval.is_zero() {
            return Err(UsageError("--interval must be more than 0".into()));
        }
        if o.probe && o.probe_timeout.is_zero() {
            return Err(UsageError("--probe-timeout must be more than 0".into()));
        }
        Ok(o)
    }

    /// What the command touches, given the environment it will see (`env`):
    ///
    /// * Environment: `DJANGO_CACHE_HOST` (HOST when no argument) and `DJINIT_RESOLV_CONF`.
    /// * With the built-in DNS client (`--nameserver` or `--srv`): UDP and TCP (TCP for truncated
    ///   replies) to the nameservers only — the `--nameserver` addresses, else the `nameserver`
    ///   lines of `$DJINIT_RESOLV_CONF`, which the host fills with its `/etc/resolv.conf` when
    ///   unset ([`Needs::resolv_conf_var`]: this component reads no host file). With the host
    ///   resolver (the default), no UDP at all: names are resolved by the host.
    /// * `--probe`: TCP to the discovered endpoints' port. With the host resolver, to HOST on
    ///   that port (the host resolves it the same way); with the built-in client the host cannot
    ///   see the answers, so any address on that port; with `--srv` the ports come from DNS
    ///   too, so any address and port (the weakest grant).
    /// * `--output FILE`: FILE's directory, writable (`.FILE.tmp` is written there and renamed
    ///   over FILE). Nothing else.
    fn needs(&self, env: Env<'_>) -> Needs {
        let mut n = Needs {
            env: PARSER_ENV.iter().map(|v| v.to_string()).collect(),
            sigterm_is_shutdown: self.watch,
            ..Needs::default()
        };
        let dns_client = self.uses_dns_client();
        if dns_client {
            n.resolv_conf_var = Some(resolv::ENV_VAR);
            n.nameservers = if self.nameservers.is_empty() {
                ResolvConf::parse(&env(resolv::ENV_VAR).unwrap_or_default()).nameservers
            } else {
                self.nameservers.clone()
            };
        }
        if self.probe {
            let host = self.host.as_deref().unwrap_or_default();
            match Lookup::parse(host, self.port, self.srv) {
                Ok(Lookup::Ip(ip, port)) => n.connect.push(Peer::Host(ip.to_string(), port)),
                Ok(Lookup::Name { name, port, .. }) if !dns_client => {
                    n.connect.push(Peer::Host(name, port))
                }
                Ok(Lookup::Name { port, .. }) => n.connect.push(Peer::AnyHost(port)),
                Ok(Lookup::Srv { .. }) => n.connect.push(Peer::AnyHost(0)),
                Err(_) => {}
            }
        }
        if let Some(out) = &self.output {
            n.output_dir = Some(match out.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => Path::new(".").to_path_buf(),
            });
        }
        n
    }
}

impl Options {
    /// Whether the built-in DNS client (UDP/TCP to nameservers) is used rather than the host
    /// resolver.
    pub fn uses_dns_client(&self) -> bool {
        self.srv || !self.nameservers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The runner's entry for this command.
    fn needs(args: &[String], env: Env<'_>) -> Needs {
        Options::needs_of(args, env)
    }

    fn parse(a: &[&str], env: Option<&str>) -> Result<Options, UsageError> {
        let env = env.map(str::to_string);
        Options::parse(Args::from_iter(a), &move |k| {
            assert_eq!(k, "DJANGO_CACHE_HOST");
            env.clone()
        })
        .map(|p| p.run().expect("options"))
    }

    fn n(args: &[&str], env: &[(&str, &str)]) -> Needs {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let env = |k: &str| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        needs(&args, &env)
    }

    fn host(h: &str, port: u16) -> Peer {
        Peer::Host(h.into(), port)
    }

    #[test]
    fn host_resolver_needs_no_network() {
        let x = n(&["memcached"], &[]);
        assert!(x.connect.is_empty() && x.nameservers.is_empty() && x.output_dir.is_none());
        assert_eq!(x.resolv_conf_var, None);
        assert_eq!(x.env, ["DJANGO_CACHE_HOST", "DJINIT_RESOLV_CONF"]);
        // Probing: TCP to what the name resolves to, on the port.
        let x = n(&["memcached:11300", "--probe"], &[]);
        assert_eq!(x.connect, [host("memcached", 11300)]);
        assert!(x.nameservers.is_empty());
    }

    #[test]
    fn dns_client_needs_its_nameservers_only() {
        let x = n(
            &["mc", "--nameserver", "127.0.0.1:5353", "--nameserver=[::1]"],
            &[],
        );
        assert_eq!(
            x.nameservers,
            [
                "127.0.0.1:5353".parse().unwrap(),
                "[::1]:53".parse().unwrap()
            ]
        );
        assert_eq!(x.resolv_conf_var, Some("DJINIT_RESOLV_CONF"));
        // Nameservers from the resolv.conf the component will see.
        let x = n(
            &["--srv", "_memcache._tcp.mc", "--probe"],
            &[(
                "DJINIT_RESOLV_CONF",
                "nameserver 10.96.0.10\nsearch default.svc.cluster.local\n",
            )],
        );
        assert_eq!(x.nameservers, ["10.96.0.10:53".parse().unwrap()]);
        assert_eq!(x.connect, [Peer::AnyHost(0)]);
        let x = n(
            &["mc", "--nameserver", "10.0.0.1", "--probe", "-p", "11300"],
            &[],
        );
        assert_eq!(x.connect, [Peer::AnyHost(11300)]);
    }

    #[test]
    fn output_directory_only() {
        let x = n(&["mc", "-o", "/run/mc/servers"], &[]);
        assert_eq!(x.output_dir, Some(PathBuf::from("/run/mc")));
        let x = n(&["mc", "--output=servers"], &[]);
        assert_eq!(x.output_dir, Some(PathBuf::from(".")));
    }

    #[test]
    fn bad_flags_and_help_need_no_network() {
        for bad in [
            &["mc", "--bogus"][..],
            &["--nameserver", "x"],
            &["--help"],
            &[],
        ] {
            let x = n(bad, &[]);
            assert!(
                x.connect.is_empty() && x.nameservers.is_empty() && x.output_dir.is_none(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn defaults_and_env_host() {
        let o = parse(&[], Some("memcached")).unwrap();
        assert_eq!(o.host.as_deref(), Some("memcached"));
        assert_eq!(
            (o.min, o.timeout, o.format),
            (1, Duration::ZERO, Format::Lines)
        );
        assert!(!o.uses_dns_client());
        assert!(parse(&[], None)
            .unwrap_err()
            .0
            .contains("DJANGO_CACHE_HOST"));
        assert!(parse(&[], Some(" ")).is_err());
    }

    #[test]
    fn flags() {
        let o = parse(
            &[
                "mc",
                "--nameserver",
                "127.0.0.1:5353",
                "--min=3",
                "-t",
                "5",
                "--probe",
                "-f",
                "env",
                "--var",
                "MC",
                "-o",
                "/run/mc/servers",
                "-w",
                "-i",
                "0.5",
            ],
            None,
        )
        .unwrap();
        assert_eq!(o.nameservers, vec!["127.0.0.1:5353".parse().unwrap()]);
        assert!(o.uses_dns_client() && o.probe && o.watch);
        assert_eq!(o.min, 3);
        assert_eq!(o.interval, Duration::from_millis(500));
        assert_eq!(o.format, Format::Env);
        assert_eq!(o.output, Some(PathBuf::from("/run/mc/servers")));
    }

    #[test]
    fn bad_flags() {
        for bad in [
            &["mc", "--format", "xml"][..],
            &["mc", "--port", "0"],
            &["mc", "--port", "x"],
            &["mc", "--srv", "--port", "1"],
            &["mc", "--nameserver", "dns.example"],
            &["mc", "--var", "1A"],
            &["mc", "--interval", "0"],
            &["mc", "--bogus"],
            &["mc", "extra"],
            &["mc", "-o", ""],
        ] {
            assert!(parse(bad, None).is_err(), "{bad:?}");
        }
    }
}
