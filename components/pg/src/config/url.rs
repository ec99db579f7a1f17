//! `postgres://` URL parsing.
//!
//! `postgres[ql]://[user[:password]@][host[:port][,...]][/dbname][?name=value[&...]]`
//!
//! The user name and password end at the **last** `@` of the URL. libpq ends them at the first
//! `@` before the first `/` (`conninfo_uri_parse_options` in `fe-connect.c`), and
//! rust-postgres at the first `@` anywhere; this parser reads every URL those read the same way
//! as long as `@` appears once, and also the ones people write with a generated password pasted
//! in unencoded: a password may contain `:`, `/`, `?`, `#`, `&`, `=` and `@` without
//! percent-encoding (`postgres://app:4711?sslmode=x@db/app` is user `app`, password
//! `4711?sslmode=x`, host `db`). Splitting anywhere earlier turns the rest of the password into a
//! host, a database name or a query parameter, which then travel to servers and into messages.
//! The price: a `@` after the host (in the database name or a query value) must be written `%40`.
//!
//! Percent-decoding is strict, as in libpq: `%` must start a two-hex-digit escape, and `%00` is
//! refused (no setting may contain NUL). A `#` has no special meaning (there is no fragment).
//!
//! Errors are [`ConfigError`]s: they name the variable and the part (`the password`, `a port`,
//! `query parameter 2`), never any text of the URL.

use super::error::{problem, ConfigError, Origin, Part};
use super::values::{self, Parsed};
use super::{Partial, Secret};

/// The query parameters this crate supports, by libpq name.
pub(crate) const PARAMS: &[&str] = &[
    "host",
    "port",
    "user",
    "password",
    "dbname",
    "connect_timeout",
    "application_name",
    "options",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "channel_binding",
    "sslnegotiation",
];

const PORT: &str =
    "invalid port (expected a number from 1 to 65535; a user name and password end with '@')";

const HOST: &str = "invalid host (expected a host name of letters, digits, '-', '.' and '_', an IPv4 address, or an IPv6 address in brackets; write '@' in the database name or a query value as %40)";

/// Parse a `postgres://` / `postgresql://` URL into the settings it sets.
pub(crate) fn parse_url(url: &str, origin: &Origin) -> Result<Partial, ConfigError> {
    let err = |part: Part, problem: &'static str| {
        ConfigError::new(Some(origin.clone()), Some(part), problem)
    };
    let rest = strip_scheme(url).ok_or_else(|| {
        err(
            Part::Scheme,
            "not a PostgreSQL URL (expected postgres:// or postgresql://)",
        )
    })?;
    let mut p = Partial::default();

    let after_userinfo = match rest.rfind('@') {
        Some(at) => {
            let (user, password) = match rest[..at].split_once(':') {
                Some((u, pw)) => (u, Some(pw)),
                None => (&rest[..at], None),
            };
            // A user name cannot hold '/' or '?' unencoded: such a "user name" is the host and
            // path of a URL whose database name or query has an unencoded '@'.
            if user.contains(['/', '?']) {
                return Err(err(
                    Part::User,
                    "contains '/' or '?': everything before the last '@' is the user name and password, so write '@' in the database name or a query value as %40",
                ));
            }
            if !user.is_empty() {
                p.user = Some(decode(user).map_err(|e| err(Part::User, e))?);
            }
            if let Some(pw) = password.filter(|pw| !pw.is_empty()) {
                p.password = Some(Secret(decode(pw).map_err(|e| err(Part::Password, e))?));
            }
            &rest[at + 1..]
        }
        None => rest,
    };

    let (before_query, query) = match after_userinfo.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (after_userinfo, None),
    };
    let (netloc, path) = match before_query.split_once('/') {
        Some((n, d)) => (n, d),
        None => (before_query, ""),
    };
    if !netloc.is_empty() {
        let mut hosts = Vec::new();
        let mut ports = Vec::new();
        for entry in netloc.split(',') {
            let (host, port) = split_host_port(entry).map_err(|e| err(Part::Hosts, e))?;
            hosts.push(host);
            // Without '@', `user:password` reads as `host:port`: say what may be missing.
            ports.push(values::port(port).map_err(|_| err(Part::Port, PORT))?);
        }
        p.hosts = Some(hosts);
        if ports.iter().any(Option::is_some) {
            p.ports = Some(ports);
        }
    }
    if !path.is_empty() {
        p.dbname = Some(decode(path).map_err(|e| err(Part::DbName, e))?);
    }
    if let Some(q) = query {
        for (i, pair) in q.split('&').filter(|s| !s.is_empty()).enumerate() {
            let at = Part::QueryParam(i + 1);
            let (key, value) = pair.split_once('=').ok_or_else(|| {
                err(
                    at,
                    "has no '=' (expected name=value; write '&' in a value as %26)",
                )
            })?;
            let key = decode(key).map_err(|e| err(at, e))?;
            let name = *PARAMS.iter().find(|n| **n == key).ok_or_else(|| {
                err(
                    at,
                    "not a supported parameter (supported: host, port, user, password, dbname, connect_timeout, application_name, options, sslmode, sslrootcert, sslcert, sslkey, channel_binding, sslnegotiation)",
                )
            })?;
            let value = decode(value).map_err(|e| err(Part::Setting(name), e))?;
            set_param(&mut p, name, &value).map_err(|e| err(Part::Setting(name), e))?;
        }
    }
    Ok(p)
}

/// Set the query parameter `name` (one of [`PARAMS`]) to `value`. The libpq variables use
/// the same parsers.
fn set_param(p: &mut Partial, name: &str, value: &str) -> Parsed<()> {
    match name {
        "host" => p.hosts = Some(values::host_list(value)?),
        "port" => p.ports = Some(values::port_list(value)?),
        "user" => p.user = Some(values::text(value)?),
        "password" => p.password = Some(Secret(values::text(value)?)),
        "dbname" => p.dbname = Some(values::text(value)?),
        "connect_timeout" => p.connect_timeout = Some(values::connect_timeout(value)?),
        "application_name" => p.application_name = Some(values::text(value)?),
        "options" => p.options = Some(values::text(value)?),
        "sslmode" => p.sslmode = Some(values::sslmode(value)?),
        "sslrootcert" => p.sslrootcert = Some(values::text(value)?),
        "sslcert" => p.sslcert = Some(values::text(value)?),
        "sslkey" => p.sslkey = Some(values::text(value)?),
        "channel_binding" => p.channel_binding = Some(values::channel_binding(value)?),
        "sslnegotiation" => p.sslnegotiation = Some(values::sslnegotiation(value)?),
        _ => unreachable!("parameter names come from PARAMS"),
    }
    Ok(())
}

/// The text after `postgres://` or `postgresql://` (scheme case-insensitive).
fn strip_scheme(url: &str) -> Option<&str> {
    ["postgresql://", "postgres://"].iter().find_map(|s| {
        url.get(..s.len())
            .filter(|head| head.eq_ignore_ascii_case(s))
            .map(|_| &url[s.len()..])
    })
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`, the host percent-decoded and checked.
fn split_host_port(entry: &str) -> Parsed<(String, &str)> {
    if let Some(v6) = entry.strip_prefix('[') {
        let (addr, after) = v6
            .split_once(']')
            .ok_or("an IPv6 address has '[' without ']'")?;
        let port = match after {
            "" => "",
            _ => after
                .strip_prefix(':')
                .ok_or("unexpected text after an IPv6 address in brackets")?,
        };
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("invalid IPv6 address in brackets");
        }
        return Ok((addr.to_string(), port));
    }
    let (host, port) = match entry.split_once(':') {
        Some((_, port)) if port.contains(':') => {
            return Err("a host has more than one ':' (write an IPv6 address in brackets; a user name and password end with '@')")
        }
        Some((h, port)) => (h, port),
        None => (entry, ""),
    };
    let host = values::host(&decode(host)?).map_err(|e| match e {
        problem::HOST => HOST,
        other => other,
    })?;
    Ok((host, port))
}

/// Percent-decode `s` strictly: `%` must start `%XX`; the result must be UTF-8 without NUL.
fn decode(s: &str) -> Parsed<String> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).ok_or(problem::BAD_PERCENT)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return Err(problem::BAD_PERCENT);
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    let decoded = percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map_err(|_| problem::NOT_UTF8_DECODED)?;
    values::text(&decoded)
}
