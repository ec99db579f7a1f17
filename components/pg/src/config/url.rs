//! `postgres://` URL parsing. Errors name the variable and the offending part, never the URL
//! itself (it may hold a password).

use super::Partial;
use crate::error::{Error, Result};
use percent_encoding::percent_decode_str;

fn decode(s: &str, what: &str, source: &str) -> Result<String> {
    percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| {
            Error::Config(format!(
                "{source}: {what} is not valid UTF-8 after percent-decoding"
            ))
        })
}

/// Parse a `postgres://` / `postgresql://` URL into the settings it sets.
pub(crate) fn parse_url(url: &str, source: &str) -> Result<Partial> {
    let bad = |what: &str| Error::Config(format!("{source}: {what}"));
    let lower = url.get(..13).unwrap_or(url).to_ascii_lowercase();
    let rest = if lower.starts_with("postgresql://") {
        &url[13..]
    } else if lower.starts_with("postgres://") {
        &url[11..]
    } else {
        return Err(bad(
            "not a PostgreSQL URL (expected postgres:// or postgresql://)",
        ));
    };
    let (main, query) = match rest.find('?') {
        Some(i) => (&rest[..i], Some(&rest[i + 1..])),
        None => (rest, None),
    };
    let mut p = Partial::default();

    // userinfo ends at the last '@', so a password containing '/' or '@' unencoded still parses.
    let netloc_path = match main.rfind('@') {
        Some(i) => {
            let userinfo = &main[..i];
            let (user, pass) = match userinfo.find(':') {
                Some(j) => (&userinfo[..j], Some(&userinfo[j + 1..])),
                None => (userinfo, None),
            };
            if !user.is_empty() {
                p.user = Some(decode(user, "the user name", source)?);
            }
            if let Some(pw) = pass {
                p.password = Some(decode(pw, "the password", source)?);
            }
            &main[i + 1..]
        }
        None => main,
    };
    let (netloc, path) = match netloc_path.find('/') {
        Some(i) => (&netloc_path[..i], &netloc_path[i + 1..]),
        None => (netloc_path, ""),
    };
    if !path.is_empty() {
        p.dbname = Some(decode(path, "the database name", source)?);
    }
    if !netloc.is_empty() {
        let mut hosts = Vec::new();
        let mut ports = Vec::new();
        for entry in netloc.split(',') {
            let (host, port) = if let Some(v6) = entry.strip_prefix('[') {
                let end = v6
                    .find(']')
                    .ok_or_else(|| bad("unterminated '[' in an IPv6 host"))?;
                let after = &v6[end + 1..];
                let port = match after {
                    "" => "",
                    _ => after
                        .strip_prefix(':')
                        .ok_or_else(|| bad("unexpected text after an IPv6 host"))?,
                };
                (v6[..end].to_string(), port)
            } else {
                match entry.rfind(':') {
                    Some(i) => (decode(&entry[..i], "a host", source)?, &entry[i + 1..]),
                    None => (decode(entry, "a host", source)?, ""),
                }
            };
            if !port.is_empty() && !port.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(&format!("invalid port {port:?}")));
            }
            hosts.push(host);
            ports.push(port.to_string());
        }
        p.hosts = Some(hosts);
        if ports.iter().any(|s| !s.is_empty()) {
            p.ports = Some(ports);
        }
    }
    if let Some(q) = query {
        for pair in q.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = pair.split_once('=').ok_or_else(|| {
                bad(&format!(
                    "query parameter {:?} has no value",
                    key_only(pair)
                ))
            })?;
            let v = decode(v, &format!("parameter {k}"), source)?;
            let list = |v: &str| v.split(',').map(|s| s.trim().to_string()).collect();
            match k {
                "sslmode" => p.sslmode = Some(v),
                "connect_timeout" => p.connect_timeout = Some(v),
                "application_name" => p.application_name = Some(v),
                "options" => p.options = Some(v),
                "host" => p.hosts = Some(list(&v)),
                "port" => p.ports = Some(list(&v)),
                "user" => p.user = Some(v),
                "password" => p.password = Some(v),
                "dbname" => p.dbname = Some(v),
                "sslrootcert" => p.sslrootcert = Some(v),
                "sslcert" => p.sslcert = Some(v),
                "sslkey" => p.sslkey = Some(v),
                "channel_binding" => p.channel_binding = Some(v),
                "sslnegotiation" => p.sslnegotiation = Some(v),
                other => return Err(bad(&format!("unknown query parameter {other:?}"))),
            }
        }
    }
    Ok(p)
}

fn key_only(pair: &str) -> &str {
    pair.split('=').next().unwrap_or(pair)
}
