//! The per-address network check behind wasi-sockets (`socket_addr_check`).
//!
//! Wasmtime asks it before every bind, connect, listen, accept, send and receive, with the
//! numeric address (host names never reach it: the guest resolves them first through
//! `ip-name-lookup`). Allowed:
//!
//! * TCP connect to a granted target; the implicit bind of a connecting socket to the wildcard
//!   address and an ephemeral port.
//! * UDP send to and receive from a granted UDP target; the implicit wildcard bind.
//! * Nothing else: no listening, no accepting, no explicit binds.
//!
//! A granted target given by name is resolved when the guest first connects to an address not
//! yet known for it, and again whenever the guest uses an address not in the last answer (DNS may
//! change between start-up and connect; a database Service may not resolve at all yet when
//! `wait4db` starts). Nothing is resolved at start-up, so a slow or broken DNS never delays the
//! runner outside the component's own deadlines.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use wasmtime_wasi::sockets::SocketAddrUse;

use crate::grants::Target;

#[derive(Clone)]
pub struct NetPolicy(Arc<Inner>);

struct Inner {
    tcp: Vec<Target>,
    udp: Vec<Target>,
    /// Last answer for each granted host name.
    resolved: Mutex<HashMap<(String, u16), Vec<IpAddr>>>,
}

impl NetPolicy {
    pub fn new(tcp: Vec<Target>, udp: Vec<Target>) -> Self {
        NetPolicy(Arc::new(Inner {
            tcp,
            udp,
            resolved: Mutex::new(HashMap::new()),
        }))
    }

    /// Whether the guest may use `addr` for `use_`.
    pub async fn allows(&self, addr: SocketAddr, use_: SocketAddrUse) -> bool {
        let inner = &self.0;
        match use_ {
            SocketAddrUse::TcpBind => !inner.tcp.is_empty() && is_implicit_bind(addr),
            SocketAddrUse::TcpConnect => self.matches(&inner.tcp, addr).await,
            SocketAddrUse::UdpBind => !inner.udp.is_empty() && is_implicit_bind(addr),
            SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive => {
                self.matches(&inner.udp, addr).await
            }
            SocketAddrUse::TcpListen | SocketAddrUse::TcpAccept => false,
        }
    }

    async fn matches(&self, targets: &[Target], addr: SocketAddr) -> bool {
        let ip = addr.ip().to_canonical();
        let same_port = || {
            targets
                .iter()
                .filter(|t| t.port == addr.port() || (t.is_any_host() && t.port == 0))
        };
        // IP literals and `Target::any_host`: no lookup.
        if same_port().any(|t| t.is_any_host() || t.ip().map(|a| a.to_canonical()) == Some(ip)) {
            return true;
        }
        let names: Vec<&Target> = same_port()
            .filter(|t| t.ip().is_none() && !t.is_any_host())
            .collect();
        // The last answers first, then fresh ones.
        for t in &names {
            if self.cached(t).is_some_and(|ips| ips.contains(&ip)) {
                return true;
            }
        }
        for t in names {
            let ips = resolve(t).await;
            let hit = ips.contains(&ip);
            self.0
                .resolved
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert((t.host.clone(), t.port), ips);
            if hit {
                return true;
            }
        }
        false
    }

    fn cached(&self, t: &Target) -> Option<Vec<IpAddr>> {
        let map = self.0.resolved.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&(t.host.clone(), t.port)).cloned()
    }
}

/// The bind wasmtime checks before a connect or first send: wildcard address, port 0.
fn is_implicit_bind(addr: SocketAddr) -> bool {
    addr.ip().is_unspecified() && addr.port() == 0
}

/// The addresses `t` resolves to now (empty when it does not resolve).
async fn resolve(t: &Target) -> Vec<IpAddr> {
    match tokio::net::lookup_host((t.host.as_str(), t.port)).await {
        Ok(addrs) => addrs.map(|a| a.ip().to_canonical()).collect(),
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Target {
        Target::parse(s, "t").unwrap()
    }

    fn check(p: &NetPolicy, addr: &str, use_: SocketAddrUse) -> bool {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(p.allows(addr.parse().unwrap(), use_))
    }

    #[test]
    fn only_granted_tcp_peers() {
        let p = NetPolicy::new(vec![t("127.0.0.1:5432"), t("[::1]:6000")], vec![]);
        assert!(check(&p, "0.0.0.0:0", SocketAddrUse::TcpBind));
        assert!(check(&p, "[::]:0", SocketAddrUse::TcpBind));
        assert!(!check(&p, "0.0.0.0:8080", SocketAddrUse::TcpBind));
        assert!(check(&p, "127.0.0.1:5432", SocketAddrUse::TcpConnect));
        assert!(check(
            &p,
            "[::ffff:127.0.0.1]:5432",
            SocketAddrUse::TcpConnect
        ));
        assert!(check(&p, "[::1]:6000", SocketAddrUse::TcpConnect));
        assert!(!check(&p, "127.0.0.1:5433", SocketAddrUse::TcpConnect));
        assert!(!check(&p, "127.0.0.2:5432", SocketAddrUse::TcpConnect));
        assert!(!check(&p, "127.0.0.1:5432", SocketAddrUse::TcpListen));
        assert!(!check(&p, "127.0.0.1:5432", SocketAddrUse::UdpSend));
        assert!(!check(&p, "0.0.0.0:0", SocketAddrUse::UdpBind));
    }

    #[test]
    fn names_resolve_on_use() {
        let p = NetPolicy::new(vec![t("localhost:5432")], vec![t("127.0.0.1:53")]);
        assert!(check(&p, "127.0.0.1:5432", SocketAddrUse::TcpConnect));
        assert!(!check(&p, "127.0.0.1:5433", SocketAddrUse::TcpConnect));
        assert!(!check(&p, "192.0.2.1:5432", SocketAddrUse::TcpConnect));
        assert!(check(&p, "0.0.0.0:0", SocketAddrUse::UdpBind));
        assert!(check(&p, "127.0.0.1:53", SocketAddrUse::UdpSend));
        assert!(!check(&p, "127.0.0.1:53", SocketAddrUse::TcpConnect));
        let any = NetPolicy::new(vec![Target::any_host(11211), Target::any_host(0)], vec![]);
        assert!(check(&any, "192.0.2.7:11211", SocketAddrUse::TcpConnect));
        assert!(check(&any, "192.0.2.7:80", SocketAddrUse::TcpConnect));
        let port_only = NetPolicy::new(vec![Target::any_host(11211)], vec![]);
        assert!(check(
            &port_only,
            "[fd00::5]:11211",
            SocketAddrUse::TcpConnect
        ));
        assert!(!check(
            &port_only,
            "192.0.2.7:11212",
            SocketAddrUse::TcpConnect
        ));
        let none = NetPolicy::new(vec![t("name.invalid:5432")], vec![]);
        assert!(!check(&none, "127.0.0.1:5432", SocketAddrUse::TcpConnect));
    }
}
