//! Parsing one setting's value, the same for the URL and the libpq variables: each decision
//! lives here once. Errors are fixed texts ([`super::error::problem`]); the caller says where.

use super::error::problem;
use super::{SslMode, SslNegotiation};
use crate::proto::startup::ChannelBindingMode;
use std::net::IpAddr;
use std::time::Duration;

pub(crate) type Parsed<T> = Result<T, &'static str>;

/// Free text (user, database, application name, options, file names): anything but NUL, which
/// the startup packet and the file system cannot carry.
pub(crate) fn text(v: &str) -> Parsed<String> {
    if v.contains('\0') {
        return Err(problem::NUL);
    }
    Ok(v.to_string())
}

/// One host: a DNS name (ASCII letters, digits, `-`, `.`, `_`), or an IP address (IPv6 without
/// brackets). Empty means the default (`localhost`). A host starting with `/` or `@` is a
/// Unix-domain socket (directory or abstract name) to libpq, which WASI cannot use.
pub(crate) fn host(h: &str) -> Parsed<String> {
    if h.starts_with('/') || h.starts_with('@') {
        return Err(problem::UNIX_SOCKET);
    }
    let name_chars = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    if h.is_empty() || h.parse::<IpAddr>().is_ok() || h.chars().all(name_chars) {
        Ok(h.to_string())
    } else {
        Err(problem::HOST)
    }
}

/// A comma-separated host list (`PGHOST`, `?host=`), each entry as [`host`].
pub(crate) fn host_list(v: &str) -> Parsed<Vec<String>> {
    v.split(',').map(|h| host(h.trim())).collect()
}

/// A port; empty means the default (5432).
pub(crate) fn port(p: &str) -> Parsed<Option<u16>> {
    if p.is_empty() {
        return Ok(None);
    }
    if !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(problem::PORT);
    }
    match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => Err(problem::PORT),
    }
}

/// A comma-separated port list (`PGPORT`, `?port=`), one per host or one for all.
pub(crate) fn port_list(v: &str) -> Parsed<Vec<Option<u16>>> {
    v.split(',').map(|p| port(p.trim())).collect()
}

pub(crate) fn sslmode(v: &str) -> Parsed<SslMode> {
    SslMode::parse(v).ok_or(problem::SSLMODE)
}

/// libpq's `connect_timeout`: whole seconds; zero or negative = none; 1 counts as 2 (libpq's
/// minimum, so one slow packet does not fail a connection).
pub(crate) fn connect_timeout(v: &str) -> Parsed<Option<Duration>> {
    match v.trim().parse::<i64>() {
        Ok(n) if n <= 0 => Ok(None),
        Ok(n) => Ok(Some(Duration::from_secs(n.max(2) as u64))),
        Err(_) => Err(problem::CONNECT_TIMEOUT),
    }
}

pub(crate) fn channel_binding(v: &str) -> Parsed<ChannelBindingMode> {
    ChannelBindingMode::parse(v).ok_or(problem::CHANNEL_BINDING)
}

pub(crate) fn sslnegotiation(v: &str) -> Parsed<SslNegotiation> {
    match v {
        "postgres" => Ok(SslNegotiation::Postgres),
        "direct" => Ok(SslNegotiation::Direct),
        _ => Err(problem::SSLNEGOTIATION),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        for ok in [
            "",
            "db",
            "db.example.com",
            "my_db-1",
            "127.0.0.1",
            "::1",
            "fe80::2",
        ] {
            assert_eq!(host(ok), Ok(ok.to_string()));
        }
        for bad in ["app:SECRET127.0.0.1", "a b", "h?x", "h&y=z", "hé", "h%41"] {
            assert_eq!(host(bad), Err(problem::HOST), "{bad}");
        }
        assert_eq!(host("/var/run/postgresql"), Err(problem::UNIX_SOCKET));
        assert_eq!(host("@abstract"), Err(problem::UNIX_SOCKET));
    }

    #[test]
    fn ports() {
        assert_eq!(port(""), Ok(None));
        assert_eq!(port("6543"), Ok(Some(6543)));
        for bad in ["0", "65536", "99999", "+5", "-1", "5432x", "abc"] {
            assert_eq!(port(bad), Err(problem::PORT), "{bad}");
        }
        assert_eq!(port_list("1, 2,"), Ok(vec![Some(1), Some(2), None]));
    }

    #[test]
    fn timeouts() {
        assert_eq!(connect_timeout("0"), Ok(None));
        assert_eq!(connect_timeout("-3"), Ok(None));
        assert_eq!(connect_timeout("1"), Ok(Some(Duration::from_secs(2))));
        assert_eq!(connect_timeout(" 10 "), Ok(Some(Duration::from_secs(10))));
        assert_eq!(connect_timeout("1.5"), Err(problem::CONNECT_TIMEOUT));
    }

    #[test]
    fn nul_is_refused() {
        assert_eq!(text("a\0b"), Err(problem::NUL));
        assert_eq!(text("ab"), Ok("ab".into()));
    }
}
