//! Everything that can go wrong while discovering endpoints, with its kind (and so whether
//! retrying may help); djinit-cli's table turns the kind into the exit code.

use djinit_wait::{kind_of, Classify, GaveUp, Kind, Transient};
use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    /// Bad name or flag value. Kind `Usage`.
    #[error("{0}")]
    Usage(String),
    /// No nameserver to ask, unreadable resolv.conf, ... Kind `Config`.
    #[error("{0}")]
    Config(String),
    /// The name does not exist. Retry may help: a Kubernetes headless Service without ready pods
    /// (or one being created) answers NXDOMAIN until its first pod is ready. Kind `Unavailable`.
    #[error("{name} does not exist (NXDOMAIN from {server})")]
    NxDomain { name: String, server: String },
    /// Every nameserver failed with SERVFAIL/REFUSED/another error code. Kind `Unavailable`.
    #[error("no nameserver could answer for {name}: {detail}")]
    ServerFailure { name: String, detail: String },
    /// No reply from any nameserver within the per-try timeout. Kind `Timeout`.
    #[error("no reply for {name} from {servers} within {secs:.1}s")]
    Timeout {
        name: String,
        servers: String,
        secs: f64,
    },
    /// The host resolver (wasi ip-name-lookup) could not resolve the name. Kind `Unavailable`.
    #[error("cannot resolve {name} through the host resolver: {detail}")]
    HostLookup { name: String, detail: String },
    /// The reply is not valid DNS. Kind `Protocol`, not retried.
    #[error("malformed reply from {server} for {name}: {detail}")]
    Malformed {
        server: SocketAddr,
        name: String,
        detail: String,
    },
    /// The runner's network policy (or the OS) denied a socket. Kind `Denied`, not retried.
    #[error("{what}: permission denied (by the runner's network policy?)")]
    Denied { what: String },
    /// A socket error talking to a nameserver. Kind `Unavailable`.
    // The I/O cause is folded into the message (not a `source`), so the printed chain names it
    // once.
    #[error("{what}: {io}")]
    Io { what: String, io: std::io::Error },
    /// Fewer endpoints than `--min` (after probing). Kind `NotMet`.
    #[error("{found} endpoint{} found, {min} required (--min){}", if *.found == 1 { "" } else { "s" }, .detail)]
    NotEnough {
        found: usize,
        min: usize,
        detail: String,
    },
    /// Writing `--output` failed. Kind `Denied` when denied, else `Config`.
    #[error("writing {path}: {io}")]
    Output { path: String, io: std::io::Error },
    /// `--timeout` passed first. Kind `Timeout`.
    #[error(transparent)]
    GaveUp(GaveUp),
}

impl Classify for DiscoverError {
    fn kind(&self) -> Kind {
        use DiscoverError as E;
        match self {
            E::Usage(_) => Kind::Usage,
            E::Config(_) => Kind::Config,
            E::NxDomain { .. } | E::ServerFailure { .. } | E::HostLookup { .. } | E::Io { .. } => {
                Kind::Unavailable
            }
            E::Timeout { .. } | E::GaveUp(_) => Kind::Timeout,
            E::Malformed { .. } => Kind::Protocol,
            E::Denied { .. } => Kind::Denied,
            E::NotEnough { .. } => Kind::NotMet,
            E::Output { io, .. } => {
                if io.kind() == std::io::ErrorKind::PermissionDenied {
                    Kind::Denied
                } else {
                    Kind::Config
                }
            }
        }
    }
}

/// The kind of an error of this crate found in a chain (a `djinit_wait::Classifier`).
pub fn classify(e: &(dyn std::error::Error + 'static)) -> Option<Kind> {
    kind_of::<DiscoverError>(e)
}

impl DiscoverError {
    /// A socket error, with "permission denied" told apart (permanent).
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        let what = what.into();
        if source.kind() == std::io::ErrorKind::PermissionDenied {
            DiscoverError::Denied { what }
        } else {
            DiscoverError::Io { what, io: source }
        }
    }
}

impl Transient for DiscoverError {
    fn gave_up(g: GaveUp) -> Self {
        DiscoverError::GaveUp(g)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_retry() {
        let nx = DiscoverError::NxDomain {
            name: "mc.svc".into(),
            server: "10.0.0.10:53".into(),
        };
        assert_eq!(nx.kind(), Kind::Unavailable);
        assert!(nx.is_transient());
        let denied = DiscoverError::io("connect", std::io::ErrorKind::PermissionDenied.into());
        assert_eq!(denied.kind(), Kind::Denied);
        assert!(!denied.is_transient());
        assert!(!DiscoverError::Usage("x".into()).is_transient());
        let few = DiscoverError::NotEnough {
            found: 1,
            min: 3,
            detail: String::new(),
        };
        assert_eq!(few.to_string(), "1 endpoint found, 3 required (--min)");
        assert!(few.is_transient());
    }
}
