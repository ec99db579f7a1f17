//! Configuration errors that cannot echo a setting.
//!
//! Why a type and not a formatted message: a malformed `DATABASE_URL` is split in the wrong place,
//! and then any piece of it (a host, a parameter name, a parameter value, a file name) may be a
//! piece of the password. Quoting "the offending part" printed secrets (issue 9:
//! `invalid sslmode "SECRET@127.0.0.1:5432/app"`). A [`ConfigError`] is made of names and fixed
//! text only (enums, `&'static str`): it has no field that could hold text read from the
//! settings, so no message made from it can contain a password, whatever the parser got wrong.

use super::Alias;
use std::fmt;

/// Where a setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `DATABASE_URL` (alias `default`) or `DATABASE_URL_<ALIAS>`.
    Url(Alias),
    /// One libpq variable, e.g. `PGPORT` (one of [`super::PG_ENV_VARS`]).
    PgVar(&'static str),
    /// The libpq variables taken together (e.g. `PGHOST` with `PGPORT`).
    PgVars,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Url(alias) => f.write_str(&alias.url_var()),
            Origin::PgVar(name) => f.write_str(name),
            Origin::PgVars => f.write_str("PG* variables"),
        }
    }
}

/// Which part of the settings is at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// `postgres://` / `postgresql://`.
    Scheme,
    /// The user name (before the `:` of the userinfo).
    User,
    Password,
    /// The host list between `@` and the database name.
    Hosts,
    /// A port in the host list.
    Port,
    /// The database name after the host list.
    DbName,
    /// The query parameters as a whole (`?a=1&b=2`).
    Query,
    /// The n-th query parameter (from 1), named by position: its name may be a piece of a
    /// password that contained `&` or `?`.
    QueryParam(usize),
    /// A known setting, by its libpq name (`sslmode`, `port`, ...). Always one of the names in
    /// this crate's tables, never text from the settings.
    Setting(&'static str),
    /// The database alias of `-d/--database`.
    Alias,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Part::Scheme => f.write_str("the scheme"),
            Part::User => f.write_str("the user name"),
            Part::Password => f.write_str("the password"),
            Part::Hosts => f.write_str("the host list"),
            Part::Port => f.write_str("a port"),
            Part::DbName => f.write_str("the database name"),
            Part::Query => f.write_str("the query parameters"),
            Part::QueryParam(n) => write!(f, "query parameter {n}"),
            Part::Setting(name) => f.write_str(name),
            Part::Alias => f.write_str("the database alias"),
        }
    }
}

/// A problem with the connection settings: where, which part, and what was expected.
/// Printed as `ORIGIN: PART: PROBLEM`, e.g.
/// `DATABASE_URL: sslmode: invalid value (expected disable, allow, prefer, require, verify-ca or verify-full)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub origin: Option<Origin>,
    pub part: Option<Part>,
    /// Fixed text: what is wrong and what was expected.
    pub problem: &'static str,
}

impl ConfigError {
    pub fn new(origin: Option<Origin>, part: Option<Part>, problem: &'static str) -> Self {
        ConfigError {
            origin,
            part,
            problem,
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(o) = &self.origin {
            write!(f, "{o}: ")?;
        }
        if let Some(p) = &self.part {
            write!(f, "{p}: ")?;
        }
        f.write_str(self.problem)
    }
}

impl std::error::Error for ConfigError {}

/// Fixed texts shared by the URL and the libpq variables.
pub(crate) mod problem {
    pub const NOT_UNICODE: &str = "not valid UTF-8 (a connection setting must be UTF-8 text)";
    pub const NUL: &str = "contains a NUL character (%00), which no PostgreSQL setting may contain";
    pub const BAD_PERCENT: &str =
        "'%' must start a %XX escape (two hex digits; write a literal '%' as %25)";
    pub const NOT_UTF8_DECODED: &str = "not valid UTF-8 after percent-decoding";
    pub const PORT: &str = "invalid port (expected a number from 1 to 65535)";
    pub const HOST: &str = "invalid host (expected a host name of letters, digits, '-', '.' and '_', an IPv4 address, or an IPv6 address in brackets)";
    pub const SSLMODE: &str =
        "invalid value (expected disable, allow, prefer, require, verify-ca or verify-full)";
    pub const CONNECT_TIMEOUT: &str = "invalid value (expected whole seconds)";
    pub const CHANNEL_BINDING: &str = "invalid value (expected disable, prefer or require)";
    pub const SSLNEGOTIATION: &str = "invalid value (expected postgres or direct)";
    pub const UNIX_SOCKET: &str =
        "a Unix-domain socket, which WASI cannot use: give a TCP host name or address";
    pub const PORT_COUNT: &str =
        "the number of ports differs from the number of hosts (give one port for all, or one per host)";
}
