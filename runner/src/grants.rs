//! What a component may be granted: network peers, directories, variables, files. Plain data
//! at the bottom of the runner's modules (no imports from the rest of the crate): the runner's
//! command line ([`crate::cli`]) parses these, the command table ([`crate::commands`]) computes
//! them, [`crate::policy`], [`crate::net`] and [`crate::files`] enforce them.

use std::net::IpAddr;

use djinit_cli::UsageError;

/// The host of a [`Target`] that matches every address (never from the command line).
pub const ANY_HOST: &str = "*";

/// A network peer: an IP literal or a host name, and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// IP literal (IPv6 without brackets) or host name.
    pub host: String,
    pub port: u16,
}

impl Target {
    /// Parse `HOST:PORT` or `[IPV6]:PORT`; `flag` names the option in messages.
    pub fn parse(s: &str, flag: &str) -> Result<Target, UsageError> {
        let bad = || UsageError(format!("{flag} expects HOST:PORT, got {s:?}"));
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, p) = rest.split_once("]:").ok_or_else(bad)?;
            h.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
            (h, p)
        } else {
            s.rsplit_once(':').ok_or_else(bad)?
        };
        if host.is_empty()
            || host.contains(['/', ' '])
            || (host.contains(':') && !s.starts_with('['))
        {
            return Err(bad());
        }
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(bad)?;
        Ok(Target {
            host: host.to_string(),
            port,
        })
    }

    /// The address if `host` is an IP literal (no name resolution needed).
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }

    /// Host [`ANY_HOST`]: any address on `port` (`0`: any port). Only for policies that cannot know
    /// the addresses in advance (dns-discover probing endpoints its own DNS client found).
    pub fn any_host(port: u16) -> Target {
        Target {
            host: ANY_HOST.into(),
            port,
        }
    }

    pub fn is_any_host(&self) -> bool {
        self.host == ANY_HOST
    }
}

/// `--dir HOST[::GUEST]`: a host directory mounted in the component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirGrant {
    pub host: String,
    pub guest: String,
    pub writable: bool,
}

impl DirGrant {
    pub fn parse(s: &str, writable: bool) -> Result<DirGrant, UsageError> {
        let (host, guest) = s.split_once("::").unwrap_or((s, s));
        if host.is_empty() || guest.is_empty() {
            return Err(UsageError(format!(
                "--dir expects HOST[::GUEST], got {s:?}"
            )));
        }
        Ok(DirGrant {
            host: host.into(),
            guest: guest.into(),
            writable,
        })
    }

    pub fn read_only(host: impl Into<String>, guest: impl Into<String>) -> DirGrant {
        DirGrant {
            host: host.into(),
            guest: guest.into(),
            writable: false,
        }
    }
}

/// `--env NAME[=VALUE]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvGrant {
    pub name: String,
    /// `None`: pass the host's value (if set).
    pub value: Option<String>,
}

impl EnvGrant {
    pub fn parse(s: &str) -> Result<EnvGrant, UsageError> {
        let (name, value) = match s.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (s, None),
        };
        if name.is_empty() || name.contains('\0') {
            return Err(UsageError("--env expects NAME or NAME=VALUE".into()));
        }
        Ok(EnvGrant {
            name: name.into(),
            value,
        })
    }
}

/// Everything a component is granted beyond stdio, clocks, random, arguments and name lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grants {
    /// Environment variables passed through from the host when set there.
    pub env: Vec<String>,
    /// Outbound TCP connections allowed (implicit bind to an ephemeral port included).
    pub tcp: Vec<Target>,
    /// UDP datagrams allowed to and from these peers.
    pub udp: Vec<Target>,
    /// Directories mounted.
    pub dirs: Vec<DirGrant>,
    /// Files the component opens by path (TLS files, a password file), read-only; mounted by
    /// [`crate::files`] (their directory, or a private copy when they link out of it).
    pub files: Vec<String>,
    /// Variables the policy sets to a value it computed (dns-discover: the host's resolv.conf
    /// content). Host values of granted names and `--env` win over these.
    pub env_set: Vec<(String, String)>,
    /// SIGTERM is how this run normally ends (`dns-discover --watch`, a sidecar stopped with its
    /// Pod): exit 0 with one info line instead of 143, so a Pod's every stop is not a failure.
    /// Not a permission; it travels with the grants because the command's policy computes both.
    pub sigterm_is_shutdown: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let t = Target::parse("db.example:5432", "--allow-net").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("db.example", 5432));
        let t = Target::parse("[::1]:6543", "--allow-net").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 6543));
        assert_eq!(t.ip(), Some("::1".parse().unwrap()));
        for bad in [
            "db",
            "db:",
            "db:0",
            "db:70000",
            ":5432",
            "::1:5432",
            "[::1]5432",
            "[db]:1",
        ] {
            assert!(Target::parse(bad, "--allow-net").is_err(), "{bad}");
        }
    }

    #[test]
    fn dirs_and_env() {
        assert_eq!(
            DirGrant::parse("/a::/b", false).unwrap(),
            DirGrant::read_only("/a", "/b")
        );
        assert_eq!(DirGrant::parse("/a", true).unwrap().guest, "/a");
        assert!(DirGrant::parse("::/b", false).is_err());
        assert_eq!(
            EnvGrant::parse("A=b=c").unwrap().value.as_deref(),
            Some("b=c")
        );
        assert_eq!(EnvGrant::parse("A").unwrap().value, None);
        assert!(EnvGrant::parse("=x").is_err());
    }
}
