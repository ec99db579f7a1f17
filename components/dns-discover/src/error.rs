//! Everything that can go wrong while discovering endpoints, with whether retrying may help and
//! the exit code from djinit-cli's table.

use djinit_cli::ExitCode;
use djinit_pg::retry::{GaveUp, Transient};
use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    /// Bad name or flag value. Exit 64.
    #[error("{0}")]
    Usage(String),
    /// No nameserver to ask, unreadable resolv.conf, ... Exit 78.
    #[error("{0}")]
    Config(String),
    /// The name does not exist. Retry may help: a Kubernetes headless Service without ready pods
    /// (or one being created) answers NXDOMAIN until its first pod is ready. Exit 69.
    #[error("{name} does not exist (NXDOMAIN from {server})")]
    NxDomain { name: String, server: String },
    /// Every nameserver failed with SERVFAIL/REFUSED/another error code. Exit 69.
    #[error("no nameserver could answer for {name}: {detail}")]
    ServerFailure { name: String, detail: String },
    /// No reply from any nameserver within the per-try timeout. Exit 75.
    #[error("no reply for {name} from {servers} within {secs:.1}s")]
    Timeout {
        name: String,
        servers: String,
        secs: f64,
    },
    /// The host resolver (wasi ip-name-lookup) could not resolve the name. Exit 69.
    #[error("cannot resolve {name} through the host resolver: {detail}")]
    HostLookup { name: String, detail: String },
    /// The reply is not valid DNS. Exit 76, not retried.
    #[error("malformed reply from {server} for {name}: {detail}")]
    Malformed {
        server: SocketAddr,
        name: String,
        detail: String,
    },
    /// The runner's network policy (or the OS) denied a socket. Exit 77, not retried.
    #[error("{what}: permission denied (by the runner's network policy?)")]
    Denied { what: String },
    /// A socket error talking to a nameserver. Exit 69.
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    /// Fewer endpoints than `--min` (after probing). Exit 1 on a single attempt.
    #[error("{found} endpoint{} found, {min} required (--min){}", if *.found == 1 { "" } else { "s" }, .detail)]
    NotEnough {
        found: usize,
        min: usize,
        detail: String,
    },
    /// Writing `--output` failed. Exit 77 when denied, else 78.
    #[error("writing {path}: {source}")]
    Output {
        path: String,
        source: std::io::Error,
    },
    /// `--timeout` passed first. Exit 75.
    #[error(transparent)]
    GaveUp(GaveUp),
}

impl DiscoverError {
    pub fn exit_code(&self) -> ExitCode {
        use DiscoverError as E;
        match self {
            E::Usage(_) => ExitCode::Usage,
            E::Config(_) => ExitCode::Config,
            E::NxDomain { .. } | E::ServerFailure { .. } | E::HostLookup { .. } | E::Io { .. } => {
                ExitCode::Unavailable
            }
            E::Timeout { .. } | E::GaveUp(_) => ExitCode::Timeout,
            E::Malformed { .. } => ExitCode::Protocol,
            E::Denied { .. } => ExitCode::NoPerm,
            E::NotEnough { .. } => ExitCode::NotMet,
            E::Output { source, .. } => {
                if source.kind() == std::io::ErrorKind::PermissionDenied {
                    ExitCode::NoPerm
                } else {
                    ExitCode::Config
                }
            }
        }
    }

    /// A socket error, with "permission denied" told apart (permanent).
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        let what = what.into();
        if source.kind() == std::io::ErrorKind::PermissionDenied {
            DiscoverError::Denied { what }
        } else {
            DiscoverError::Io { what, source }
        }
    }
}

impl Transient for DiscoverError {
    fn is_transient(&self) -> bool {
        self.exit_code().retry_may_help()
    }
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
        assert_eq!(nx.exit_code(), ExitCode::Unavailable);
        assert!(nx.is_transient());
        let denied = DiscoverError::io("connect", std::io::ErrorKind::PermissionDenied.into());
        assert_eq!(denied.exit_code(), ExitCode::NoPerm);
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
