//! One discovery round: names → endpoints (sorted, de-duplicated), optionally probed.

use crate::client::DnsClient;
use crate::dns::wire::check_name;
use crate::dns::RType;
use crate::error::DiscoverError;
use crate::probe;
use djinit_cli::Log;
use djinit_wait::Deadline;
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// Endpoints, sorted (IPv4 before IPv6, then address, then port) and de-duplicated.
pub type Endpoints = BTreeSet<SocketAddr>;

/// `ip:port` of each endpoint, joined by `sep`.
pub fn join(eps: &Endpoints, sep: &str) -> String {
    eps.iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(sep)
}

/// How names are resolved.
pub enum Resolver {
    /// The host's resolver through wasi ip-name-lookup (`ToSocketAddrs`). A and AAAA only; its
    /// timeouts are the host's (the component cannot bound them).
    Host,
    /// The component's own DNS client.
    Dns(Box<DnsClient>),
}

/// What to look up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// An IP literal: no lookup at all.
    Ip(IpAddr, u16),
    /// A and AAAA of `name`, endpoints on `port`.
    Name {
        name: String,
        absolute: bool,
        port: u16,
    },
    /// SRV records of `name`: each target's addresses on the record's port.
    Srv { name: String, absolute: bool },
}

impl Target {
    /// `HOST` or `HOST:PORT` (IPv6 as `[addr]:port` or bare `addr`); `port` applies when none is
    /// given. With `srv`, HOST is the SRV owner name (e.g. `_memcache._tcp.memcached`).
    pub fn parse(host: &str, port: Option<u16>, srv: bool) -> Result<Target, DiscoverError> {
        let host = host.trim();
        let usage = |m: String| DiscoverError::Usage(m);
        if let Ok(ip) = host.parse::<IpAddr>() {
            if srv {
                return Err(usage("--srv needs a name, not an IP address".into()));
            }
            return Ok(Target::Ip(ip, port.unwrap_or(crate::DEFAULT_PORT)));
        }
        if let Ok(sa) = host.parse::<SocketAddr>() {
            if srv || port.is_some() {
                return Err(usage(format!(
                    "{host:?}: give the port once (in HOST or --port)"
                )));
            }
            return Ok(Target::Ip(sa.ip(), sa.port()));
        }
        let (name, inline_port) = match host.rsplit_once(':') {
            Some((n, p)) => {
                let p: u16 = p
                    .parse()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or_else(|| usage(format!("{host:?}: bad port {p:?}")))?;
                (n, Some(p))
            }
            None => (host, None),
        };
        if inline_port.is_some() && (srv || port.is_some()) {
            return Err(usage(format!(
                "{host:?}: give the port once (in HOST or --port; none with --srv)"
            )));
        }
        let (name, absolute) = check_name(name).map_err(|e| usage(e.to_string()))?;
        Ok(if srv {
            Target::Srv { name, absolute }
        } else {
            Target::Name {
                name,
                absolute,
                port: inline_port.or(port).unwrap_or(crate::DEFAULT_PORT),
            }
        })
    }
}

/// Resolve `target` once, bounded by `deadline` (DNS client) and probe the results if asked.
pub fn discover(
    resolver: &mut Resolver,
    target: &Target,
    probe_timeout: Option<Duration>,
    deadline: Deadline,
    log: &Log,
) -> Result<Endpoints, DiscoverError> {
    let mut found = resolve(resolver, target, deadline, log)?;
    log.debug(format!("resolved: {}", join(&found, ", ")));
    if let Some(t) = probe_timeout {
        let before = found.len();
        found.retain(
            |ep| match probe::memcached_version(*ep, Deadline::after(t).min(deadline)) {
                Ok(v) => {
                    log.debug(format!("probe {ep}: {v}"));
                    true
                }
                Err(e) => {
                    log.detail(format!("probe {ep}: {e}; left out"));
                    false
                }
            },
        );
        if found.len() != before {
            log.detail(format!(
                "{} of {before} endpoints answered the probe",
                found.len()
            ));
        }
    }
    Ok(found)
}

fn resolve(
    resolver: &mut Resolver,
    target: &Target,
    deadline: Deadline,
    log: &Log,
) -> Result<Endpoints, DiscoverError> {
    match (target, resolver) {
        (Target::Ip(ip, port), _) => Ok([SocketAddr::new(*ip, *port)].into()),
        (Target::Name { name, port, .. }, Resolver::Host) => {
            let addrs = (name.as_str(), *port).to_socket_addrs().map_err(|e| {
                if e.kind() == std::io::ErrorKind::PermissionDenied {
                    DiscoverError::Denied {
                        what: format!("resolving {name} through the host resolver"),
                    }
                } else {
                    DiscoverError::HostLookup {
                        name: name.clone(),
                        detail: e.to_string(),
                    }
                }
            })?;
            Ok(addrs.collect())
        }
        (Target::Srv { .. }, Resolver::Host) => Err(DiscoverError::Config(
            "--srv needs the component's own DNS client (a nameserver)".into(),
        )),
        (
            Target::Name {
                name,
                absolute,
                port,
            },
            Resolver::Dns(c),
        ) => {
            let (_, answers) = search(c, name, *absolute, &[RType::A, RType::Aaaa], deadline, log)?;
            Ok(answers
                .iter()
                .flat_map(|a| a.addrs.iter())
                .map(|ip| SocketAddr::new(*ip, *port))
                .collect())
        }
        (Target::Srv { name, absolute }, Resolver::Dns(c)) => {
            let (fqdn, answers) = search(c, name, *absolute, &[RType::Srv], deadline, log)?;
            let mut out = Endpoints::new();
            for a in &answers {
                for srv in &a.srv {
                    if srv.target.is_empty() {
                        continue; // "." : the service is decidedly not available here
                    }
                    let glue: Vec<IpAddr> = a
                        .glue
                        .iter()
                        .filter(|(n, _)| *n == srv.target)
                        .map(|(_, ip)| *ip)
                        .collect();
                    let ips = if !glue.is_empty() {
                        glue
                    } else {
                        match c.query(&srv.target, &[RType::A, RType::Aaaa], deadline)? {
                            Ok(ans) => ans.into_iter().flat_map(|a| a.addrs).collect(),
                            Err(_) => {
                                log.detail(format!(
                                    "SRV target {} of {fqdn} does not exist",
                                    srv.target
                                ));
                                Vec::new()
                            }
                        }
                    };
                    out.extend(ips.into_iter().map(|ip| SocketAddr::new(ip, srv.port)));
                }
            }
            Ok(out)
        }
    }
}

/// Try the search-list candidates of `name` in order; the first with records wins. A candidate
/// that exists without such records (NODATA) does not stop the search (glibc's rule), but if no
/// candidate has records the result is empty rather than NXDOMAIN.
fn search(
    c: &mut DnsClient,
    name: &str,
    absolute: bool,
    types: &[RType],
    deadline: Deadline,
    log: &Log,
) -> Result<(String, Vec<crate::dns::Answer>), DiscoverError> {
    let candidates = c.conf.candidates(name, absolute);
    let mut nx_from = String::new();
    let mut nodata: Option<(String, Vec<crate::dns::Answer>)> = None;
    for cand in &candidates {
        match c.query(cand, types, deadline)? {
            Ok(answers) => {
                if answers
                    .iter()
                    .any(|a| !a.addrs.is_empty() || !a.srv.is_empty())
                {
                    return Ok((cand.clone(), answers));
                }
                log.debug(format!("{cand}: exists, no records of the asked types"));
                nodata.get_or_insert((cand.clone(), answers));
            }
            Err(server) => {
                log.debug(format!("{cand}: NXDOMAIN from {server}"));
                nx_from = server;
            }
        }
    }
    if let Some(found) = nodata {
        return Ok(found);
    }
    Err(DiscoverError::NxDomain {
        name: if candidates.len() == 1 {
            name.to_string()
        } else {
            format!("{name} (tried {})", candidates.join(", "))
        },
        server: nx_from,
    })
}
