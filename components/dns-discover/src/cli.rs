//! The command line. Also used by the runner to derive the network policy from the same flags.

use crate::format::{self, Format};
use crate::resolv::parse_nameserver;
use djinit_cli::args::{Arg, Args, Common};
use djinit_cli::UsageError;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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

impl Options {
    /// Parse `args`; `env` supplies `DJANGO_CACHE_HOST` when HOST is not given.
    pub fn parse(
        mut args: Args,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Options, UsageError> {
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
            if o.common.handle(&arg, &mut args, "dns-discover", HELP)? {
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

    /// Whether the built-in DNS client (UDP/TCP to nameservers) is used rather than the host
    /// resolver.
    pub fn uses_dns_client(&self) -> bool {
        self.srv || !self.nameservers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(a: &[&str], env: Option<&str>) -> Result<Options, UsageError> {
        let env = env.map(str::to_string);
        Options::parse(Args::from_iter(a), &move |k| {
            assert_eq!(k, "DJANGO_CACHE_HOST");
            env.clone()
        })
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
