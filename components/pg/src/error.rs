use crate::config::{ConfigError, Part};
use djinit_wait::{kind_of, Classify, GaveUp, Kind, Transient};
use std::fmt;
use std::io;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure happened, and so whether trying again later may help.
///
/// Only [`ErrorKind::Unavailable`] and [`ErrorKind::Timeout`] are transient; `djinit_wait::retry`
/// retries nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Settings are wrong or incomplete: bad URL, missing variable, unknown database, an option
    /// this build does not support. Permanent.
    Config,
    /// The server refused our credentials or a privilege. Permanent.
    Auth,
    /// The host (e.g. the djinit runner's network policy) refused the connection. Permanent.
    Denied,
    /// The peer does not speak the PostgreSQL protocol as expected. Permanent.
    Protocol,
    /// The database rejected a statement (see [`DbError::code`]). Permanent.
    Sql,
    /// The database cannot be reached or is not ready now: refused, reset, host name not resolving
    /// yet, starting up, shutting down, too many clients, lock or serialization conflicts. Transient.
    Unavailable,
    /// A deadline passed. Transient.
    Timeout,
}

impl ErrorKind {
    pub fn is_transient(self) -> bool {
        matches!(self, ErrorKind::Unavailable | ErrorKind::Timeout)
    }
}

/// An error of the PostgreSQL client. Every variant says what was going on when it happened; none
/// carries a password or a connection URL.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad or missing settings; never contains a setting's value (see [`ConfigError`]).
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{what} is not supported yet")]
    Unsupported { what: String },
    // I/O causes are folded into the message (not exposed as `source`), so a printed error
    // chain names each cause once.
    #[error("cannot resolve host {host}: {io}")]
    Resolve { host: String, io: io::Error },
    #[error("cannot connect to {addr}: {}", io_reason(.io))]
    Connect { addr: String, io: io::Error },
    #[error("connection to {addr} failed while {during}: {}", io_reason(.io))]
    Io {
        addr: String,
        during: &'static str,
        io: io::Error,
    },
    #[error("no answer from {addr} while {during} (deadline reached)")]
    Timeout { addr: String, during: &'static str },
    #[error(transparent)]
    GaveUp(#[from] GaveUp),
    #[error("{addr} is not speaking the PostgreSQL protocol as expected while {during}: {detail}")]
    Protocol {
        addr: String,
        during: &'static str,
        detail: String,
    },
    #[error("authentication with {addr} failed: {detail}")]
    Auth { addr: String, detail: String },
    /// TLS failed at `step` (negotiating, the handshake, verifying the server certificate).
    /// `during` and `step` are gerund phrases that follow "while" ("connecting", "doing the TLS
    /// handshake"), never starting with a preposition of their own.
    /// `kind`: `Config` when the server refuses TLS that sslmode demands (or nothing in common),
    /// `Auth` when the server's certificate fails verification or ours is rejected, `Protocol`
    /// when the peer does not speak TLS. Never contains certificate contents.
    #[error("TLS with {addr} failed while {step}: {detail}")]
    Tls {
        addr: String,
        step: &'static str,
        detail: String,
        kind: ErrorKind,
    },
    #[error(transparent)]
    Db(#[from] DbError),
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config(_) | Error::Unsupported { .. } => ErrorKind::Config,
            Error::Resolve { .. } => ErrorKind::Unavailable,
            Error::Connect { io, .. } | Error::Io { io, .. } => io_kind(io),
            Error::Timeout { .. } | Error::GaveUp(_) => ErrorKind::Timeout,
            Error::Protocol { .. } => ErrorKind::Protocol,
            Error::Auth { .. } => ErrorKind::Auth,
            Error::Tls { kind, .. } => *kind,
            Error::Db(e) => e.kind(),
        }
    }

    pub fn is_transient(&self) -> bool {
        self.kind().is_transient()
    }

    /// The server's error, if this is one.
    pub fn db(&self) -> Option<&DbError> {
        match self {
            Error::Db(e) => Some(e),
            _ => None,
        }
    }

    /// The SQLSTATE of a server error.
    pub fn code(&self) -> Option<&str> {
        self.db().map(|e| e.code.as_str())
    }
}

impl Classify for Error {
    /// [`Error::kind`] in the terms every djinit library shares.
    fn kind(&self) -> Kind {
        match self {
            Error::Config(c) => Classify::kind(c),
            _ => self.kind().into(),
        }
    }
}

impl Classify for ConfigError {
    /// A configuration error, except that an invalid database alias can only come from
    /// `-d/--database`: a usage error.
    fn kind(&self) -> Kind {
        if self.part == Some(Part::Alias) {
            Kind::Usage
        } else {
            Kind::Config
        }
    }
}

impl Classify for DbError {
    fn kind(&self) -> Kind {
        self.kind().into()
    }
}

impl From<ErrorKind> for Kind {
    fn from(k: ErrorKind) -> Kind {
        match k {
            ErrorKind::Config => Kind::Config,
            ErrorKind::Auth | ErrorKind::Denied => Kind::Denied,
            ErrorKind::Protocol => Kind::Protocol,
            ErrorKind::Sql => Kind::Data,
            ErrorKind::Unavailable => Kind::Unavailable,
            ErrorKind::Timeout => Kind::Timeout,
        }
    }
}

impl Transient for Error {
    fn gave_up(g: GaveUp) -> Self {
        Error::GaveUp(g)
    }
}

/// The kind of an error of this crate found in a chain (a `djinit_wait::Classifier`).
pub fn classify(e: &(dyn std::error::Error + 'static)) -> Option<Kind> {
    kind_of::<Error>(e)
        .or_else(|| kind_of::<DbError>(e))
        .or_else(|| kind_of::<ConfigError>(e))
}

fn io_kind(e: &io::Error) -> ErrorKind {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => ErrorKind::Timeout,
        io::ErrorKind::PermissionDenied => ErrorKind::Denied,
        // The address can never be connected to (e.g. `0.0.0.0`, a multicast address; wasi-sockets
        // says invalid-argument): retrying will not change the setting.
        io::ErrorKind::InvalidInput | io::ErrorKind::Unsupported => ErrorKind::Config,
        _ => ErrorKind::Unavailable,
    }
}

fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
            "server closed the connection (reset)".into()
        }
        io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe => {
            "server closed the connection".into()
        }
        io::ErrorKind::NotConnected => "not connected".into(),
        io::ErrorKind::InvalidInput => "invalid address (not one a client can connect to)".into(),
        io::ErrorKind::PermissionDenied => {
            "permission denied (not allowed by the host's network policy)".into()
        }
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "timed out".into(),
        _ => e.to_string(),
    }
}

/// An `ErrorResponse` from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DbError {
    pub severity: String,
    /// SQLSTATE, e.g. `28P01`.
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl DbError {
    /// Classification by SQLSTATE class (PostgreSQL Appendix A).
    pub fn kind(&self) -> ErrorKind {
        let c = self.code.as_str();
        match c {
            "3D000" => ErrorKind::Config,  // invalid_catalog_name: no such database
            "42501" => ErrorKind::Auth,    // insufficient_privilege
            "57014" => ErrorKind::Timeout, // query_canceled (statement/lock timeout)
            "55P03" | "40001" | "40P01" => ErrorKind::Unavailable, // lock, serialization, deadlock
            _ if c.starts_with("28") => ErrorKind::Auth, // invalid authorization
            _ if c.starts_with("08") => ErrorKind::Unavailable, // connection exception
            _ if c.starts_with("53") => ErrorKind::Unavailable, // insufficient resources
            _ if c.starts_with("57P") => ErrorKind::Unavailable, // shutdown / starting up
            _ => ErrorKind::Sql,
        }
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "server said {} {}: {}",
            self.severity, self.code, self.message
        )?;
        if let Some(d) = &self.detail {
            write!(f, " (detail: {d})")?;
        }
        if let Some(h) = &self.hint {
            write!(f, " (hint: {h})")?;
        }
        Ok(())
    }
}

impl std::error::Error for DbError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(code: &str) -> Error {
        Error::Db(DbError {
            severity: "FATAL".into(),
            code: code.into(),
            message: "m".into(),
            detail: None,
            hint: None,
        })
    }

    #[test]
    fn sqlstate_classes() {
        assert_eq!(db("28P01").kind(), ErrorKind::Auth);
        assert_eq!(db("3D000").kind(), ErrorKind::Config);
        assert_eq!(db("57P03").kind(), ErrorKind::Unavailable);
        assert_eq!(db("53300").kind(), ErrorKind::Unavailable);
        assert_eq!(db("42P01").kind(), ErrorKind::Sql);
        assert!(db("40001").is_transient());
        assert!(!db("23505").is_transient());
    }

    /// The kinds every djinit library shares: an invalid alias (only `-d` names one) is a usage
    /// error, SQL the server refused is rejected data, a refused connection is transient.
    #[test]
    fn shared_kinds() {
        let alias = Error::Config(crate::config::Alias::new("bad-alias").unwrap_err());
        assert_eq!(Classify::kind(&alias), Kind::Usage);
        assert_eq!(Classify::kind(&db("23505")), Kind::Data);
        assert_eq!(Classify::kind(&db("28P01")), Kind::Denied);
        let refused = Error::Connect {
            addr: "a:1".into(),
            io: io::ErrorKind::ConnectionRefused.into(),
        };
        assert!(Classify::is_transient(&refused));
        let chained: Box<dyn std::error::Error> = Box::new(db("42P01"));
        assert_eq!(classify(chained.as_ref()), Some(Kind::Data));
    }

    #[test]
    fn io_classes() {
        let e = |k| Error::Connect {
            addr: "a:1".into(),
            io: io::Error::from(k),
        };
        assert_eq!(
            e(io::ErrorKind::ConnectionRefused).kind(),
            ErrorKind::Unavailable
        );
        assert_eq!(e(io::ErrorKind::PermissionDenied).kind(), ErrorKind::Denied);
        assert_eq!(e(io::ErrorKind::TimedOut).kind(), ErrorKind::Timeout);
        assert!(e(io::ErrorKind::ConnectionRefused)
            .to_string()
            .contains("connection refused"));
        // wasi-sockets' invalid-argument (e.g. connecting to 0.0.0.0): retrying cannot help.
        assert_eq!(e(io::ErrorKind::InvalidInput).kind(), ErrorKind::Config);
        for k in [
            io::ErrorKind::BrokenPipe,
            io::ErrorKind::UnexpectedEof,
            io::ErrorKind::ConnectionReset,
        ] {
            assert!(e(k).to_string().contains("server closed the connection"));
            assert!(e(k).is_transient());
        }
    }

    /// Every step name follows "while" once: no "while while", "while during".
    #[test]
    fn steps_read_once_while() {
        use crate::conn::tls::errors::{HANDSHAKE, NEGOTIATING, VERIFYING};
        for step in [
            HANDSHAKE,
            NEGOTIATING,
            VERIFYING,
            "connecting",
            "authenticating",
        ] {
            let addr = || "h:1".to_string();
            for text in [
                Error::Io {
                    addr: addr(),
                    during: step,
                    io: io::ErrorKind::UnexpectedEof.into(),
                }
                .to_string(),
                Error::Timeout {
                    addr: addr(),
                    during: step,
                }
                .to_string(),
                Error::Tls {
                    addr: addr(),
                    step,
                    detail: "d".into(),
                    kind: ErrorKind::Protocol,
                }
                .to_string(),
            ] {
                assert_eq!(text.matches("while").count(), 1, "{text}");
                for word in ["during", "while in", "while while"] {
                    assert!(!text.contains(word), "{text}");
                }
            }
        }
    }
}
