//! `resolv.conf` (the subset a stub resolver uses): `nameserver`, `search`/`domain`, and
//! `options ndots:N timeout:N attempts:N`. Parsing is lenient like glibc's: unknown lines and
//! unparsable values are ignored. Defaults: no nameservers, no search list, ndots 1, timeout 5 s,
//! attempts 2; at most 3 nameservers and 6 search domains are used (glibc's limits).
//!
//! The component never reads the host's files by itself: the runner hands it the host's
//! `/etc/resolv.conf` content in the environment variable [`ENV_VAR`] (see the crate docs).

use crate::dns::wire::check_name;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Environment variable holding the resolv.conf text the runner passes in.
pub const ENV_VAR: &str = "DJINIT_RESOLV_CONF";
/// Read when [`ENV_VAR`] is unset (only visible if the host maps it into the guest).
pub const DEFAULT_PATH: &str = "/etc/resolv.conf";

pub const MAX_NAMESERVERS: usize = 3;
pub const MAX_SEARCH: usize = 6;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    pub nameservers: Vec<SocketAddr>,
    pub search: Vec<String>,
    pub ndots: u8,
    /// Per-try timeout.
    pub timeout: Duration,
    /// Rounds over all nameservers.
    pub attempts: u32,
}

impl Default for ResolvConf {
    fn default() -> Self {
        ResolvConf {
            nameservers: Vec::new(),
            search: Vec::new(),
            ndots: 1,
            timeout: Duration::from_secs(5),
            attempts: 2,
        }
    }
}

impl ResolvConf {
    pub fn parse(text: &str) -> ResolvConf {
        let mut rc = ResolvConf::default();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    if let Some(addr) = words.next().and_then(|w| parse_nameserver(w).ok()) {
                        if rc.nameservers.len() < MAX_NAMESERVERS {
                            rc.nameservers.push(addr);
                        }
                    }
                }
                Some("search") => rc.search = search_list(words),
                Some("domain") => rc.search = search_list(words.take(1)),
                Some("options") => {
                    for opt in words {
                        let (k, v) = opt.split_once(':').unwrap_or((opt, ""));
                        let n: Option<u32> = v.parse().ok();
                        match (k, n) {
                            ("ndots", Some(n)) => rc.ndots = n.min(15) as u8,
                            ("timeout", Some(n)) => {
                                rc.timeout = Duration::from_secs(n.clamp(1, 30) as u64)
                            }
                            ("attempts", Some(n)) => rc.attempts = n.clamp(1, 5),
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        rc
    }

    /// The names to try for `name`, in order (the glibc/musl rule): an absolute name (trailing
    /// dot) only as is; a name with at least `ndots` dots as is first, then with each search
    /// domain; otherwise with each search domain first, then as is.
    pub fn candidates(&self, name: &str, absolute: bool) -> Vec<String> {
        if absolute {
            return vec![name.to_string()];
        }
        let with_search = self
            .search
            .iter()
            .map(|d| format!("{name}.{d}"))
            .filter(|n| n.len() <= 253);
        let dots = name.matches('.').count();
        let mut out = Vec::new();
        if dots >= self.ndots as usize {
            out.push(name.to_string());
            out.extend(with_search);
        } else {
            out.extend(with_search);
            out.push(name.to_string());
        }
        out
    }
}

fn search_list<'a>(words: impl Iterator<Item = &'a str>) -> Vec<String> {
    words
        .filter_map(|w| check_name(w).ok().map(|(n, _)| n))
        .take(MAX_SEARCH)
        .collect()
}

/// `IP`, `IP:PORT`, `[IPv6]:PORT` or bare `IPv6`; port 53 by default.
pub fn parse_nameserver(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    let bare = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    match s.parse::<SocketAddr>() {
        Ok(a) if a.port() != 0 => Ok(a),
        _ => Err(format!(
            "{s:?} is not a nameserver address (IP, IP:PORT or [IPv6]:PORT)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K8S: &str = "search default.svc.cluster.local svc.cluster.local cluster.local\n\
                       nameserver 10.96.0.10\n\
                       options ndots:5\n";

    #[test]
    fn kubernetes_pod_file() {
        let rc = ResolvConf::parse(K8S);
        assert_eq!(rc.nameservers, vec!["10.96.0.10:53".parse().unwrap()]);
        assert_eq!(rc.search.len(), 3);
        assert_eq!(rc.ndots, 5);
        assert_eq!(
            rc.candidates("memcached", false),
            vec![
                "memcached.default.svc.cluster.local",
                "memcached.svc.cluster.local",
                "memcached.cluster.local",
                "memcached"
            ]
        );
        assert_eq!(
            rc.candidates("memcached.default.svc.cluster.local", true)
                .len(),
            1
        );
    }

    #[test]
    fn ndots_and_options() {
        let rc = ResolvConf::parse(
            "domain example.org\nnameserver ::1\nnameserver bogus\n# nameserver 1.1.1.1\n\
             options timeout:1 attempts:9 rotate\nnameserver 127.0.0.1 ; comment\n",
        );
        assert_eq!(
            rc.nameservers,
            vec!["[::1]:53".parse().unwrap(), "127.0.0.1:53".parse().unwrap()]
        );
        assert_eq!(rc.timeout, Duration::from_secs(1));
        assert_eq!(rc.attempts, 5);
        assert_eq!(rc.ndots, 1);
        assert_eq!(rc.candidates("a.b", false), vec!["a.b", "a.b.example.org"]);
        assert_eq!(rc.candidates("a", false), vec!["a.example.org", "a"]);
        assert_eq!(ResolvConf::parse(""), ResolvConf::default());
    }

    #[test]
    fn nameserver_forms() {
        assert_eq!(
            parse_nameserver("10.0.0.1").unwrap(),
            "10.0.0.1:53".parse().unwrap()
        );
        assert_eq!(
            parse_nameserver("10.0.0.1:5353").unwrap(),
            "10.0.0.1:5353".parse().unwrap()
        );
        assert_eq!(
            parse_nameserver("[::1]:5353").unwrap(),
            "[::1]:5353".parse().unwrap()
        );
        assert_eq!(
            parse_nameserver("fd00::1").unwrap(),
            "[fd00::1]:53".parse().unwrap()
        );
        assert_eq!(
            parse_nameserver("[fd00::1]").unwrap(),
            "[fd00::1]:53".parse().unwrap()
        );
        assert!(parse_nameserver("dns.example").is_err());
        assert!(parse_nameserver("10.0.0.1:0").is_err());
    }
}
