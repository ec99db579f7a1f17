//! What a component may use, and the WASI context that grants exactly that.
//!
//! Deny by default: a component gets stdin/stdout/stderr, clocks, random, its arguments, host name
//! lookup and nothing else. Environment variables, outbound TCP/UDP addresses and directories
//! are granted by name, by the command's policy (`crate::commands`) and by runner options.

use std::collections::BTreeMap;
use std::net::IpAddr;

use djinit_cli::{Failure, UsageError};
use djinit_wait::Kind;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

use crate::files::{self, FileMounts};
use crate::net::NetPolicy;
use crate::stdio;

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

impl Grants {
    /// Add what the runner options grant.
    pub fn extend_with(&mut self, options: &crate::cli::Options) {
        self.tcp.extend(options.allow_tcp.iter().cloned());
        self.udp.extend(options.allow_udp.iter().cloned());
        self.dirs.extend(options.dirs.iter().cloned());
    }
}

/// The environment the component will see, as a lookup over `--env` values then the host's
/// environment. Commands compute their policy (e.g. the database address) through it, so
/// `--env DATABASE_URL=...` is honoured exactly like an exported variable.
pub struct EnvView<'a> {
    pub overrides: &'a [EnvGrant],
}

impl EnvView<'_> {
    pub fn get(&self, name: &str) -> Option<String> {
        match self.overrides.iter().rev().find(|g| g.name == name) {
            Some(EnvGrant { value: Some(v), .. }) => Some(v.clone()),
            _ => std::env::var(name).ok(),
        }
    }

    /// The variables the component gets: the granted names set in the host, then every `--env`.
    /// A variable to pass on that is set but not UTF-8 is a configuration error (78): WASI
    /// environment values are strings, and dropping it would make the command report it unset.
    pub fn select(&self, granted: &[String]) -> Result<BTreeMap<String, String>, Failure> {
        let host = |name: &str| match std::env::var(name) {
            Ok(v) => Ok(Some(v)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(Failure::new(
                Kind::Config,
                format!(
                    "{name}: not valid UTF-8 (WASI passes environment variables as UTF-8 text)"
                ),
            )),
        };
        let overridden = |name: &str| {
            self.overrides
                .iter()
                .any(|g| g.name == name && g.value.is_some())
        };
        let mut out = BTreeMap::new();
        for name in granted.iter().filter(|n| !overridden(n)) {
            if let Some(v) = host(name)? {
                out.insert(name.clone(), v);
            }
        }
        for g in self.overrides {
            match &g.value {
                Some(v) => {
                    out.insert(g.name.clone(), v.clone());
                }
                None => {
                    if let Some(v) = host(&g.name)? {
                        out.insert(g.name.clone(), v);
                    }
                }
            }
        }
        Ok(out)
    }
}

/// The WASI context for one run: `argv`, the selected environment, the granted sockets,
/// directories and files, the runner's stdio (a closed stdout is not an error: [`crate::stdio`]).
/// The [`FileMounts`] must live as long as the context (they may hold private copies).
pub fn wasi_ctx(
    argv: &[String],
    env: &BTreeMap<String, String>,
    grants: &Grants,
) -> anyhow::Result<(WasiCtx, FileMounts)> {
    let mut b = WasiCtxBuilder::new();
    b.inherit_stdin()
        .stdout(stdio::Output::new(stdio::Which::Stdout))
        .stderr(stdio::Output::new(stdio::Which::Stderr))
        .args(argv);
    for (k, v) in env {
        b.env(k, v);
    }
    // Name lookup reveals nothing a connect could not; TCP/UDP only when something is granted,
    // and then only to the granted peers (checked per address in `NetPolicy`).
    b.allow_ip_name_lookup(true);
    b.allow_tcp(!grants.tcp.is_empty());
    b.allow_udp(!grants.udp.is_empty());
    let net = NetPolicy::new(grants.tcp.clone(), grants.udp.clone());
    b.socket_addr_check(move |addr, use_| {
        let net = net.clone();
        Box::pin(async move { net.allows(addr, use_).await })
    });
    let files = files::mount(&grants.files)?;
    for d in grants.dirs.iter().chain(&files.dirs) {
        let perms = if d.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        b.preopened_dir(&d.host, &d.guest, perms).map_err(|e| {
            anyhow::Error::new(djinit_cli::Failure::new(
                Kind::NoInput,
                format!(
                    "cannot mount directory {}: {}",
                    d.host,
                    crate::exec::describe(&e)
                ),
            ))
        })?;
    }
    Ok((b.build(), files))
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

    #[test]
    fn env_view_prefers_overrides_and_selects_only_granted() {
        let o = [EnvGrant::parse("DJINIT_TEST_X=1").unwrap()];
        let v = EnvView { overrides: &o };
        assert_eq!(v.get("DJINIT_TEST_X").as_deref(), Some("1"));
        let sel = v.select(&["PATH".to_string()]).unwrap();
        assert_eq!(sel.get("DJINIT_TEST_X").map(String::as_str), Some("1"));
        assert_eq!(sel.contains_key("PATH"), std::env::var("PATH").is_ok());
        assert_eq!(sel.len(), 1 + usize::from(std::env::var("PATH").is_ok()));
    }
}
