//! Connection settings.
//!
//! Where they come from, strongest first:
//! 1. The URL in `DATABASE_URL` (database alias `default`) or `DATABASE_URL_<ALIAS>` (any other
//!    alias, upper-cased; `-d replica` reads `DATABASE_URL_REPLICA`). Every part the URL sets wins.
//!    Forms: `postgres://` or `postgresql://`, `user:password@` percent-decoded, hosts as
//!    `name`, `name:port`, `[v6]`, `[v6]:port`, comma-separated for several, `/dbname`, and the query
//!    parameters `sslmode`, `connect_timeout`, `application_name`, `options`, `host`, `port`, `user`,
//!    `password`, `dbname`, `sslrootcert`, `sslcert`, `sslkey`, `channel_binding`, `sslnegotiation`.
//!    Any other parameter is an error, as in libpq.
//! 2. For the `default` alias only, the libpq variables fill in what the URL leaves out:
//!    `PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE PGCONNECT_TIMEOUT PGAPPNAME PGOPTIONS PGSSLMODE
//!    PGSSLROOTCERT PGSSLCERT PGSSLKEY PGCHANNELBINDING PGSSLNEGOTIATION`. Without `DATABASE_URL`
//!    they are the whole configuration.
//! 3. Defaults: host `localhost`, port `5432`, user `postgres`, database = user, `sslmode=prefer`,
//!    no connect timeout (the command's own deadline still bounds everything).
//!
//! Unix-domain sockets (a host starting with `/`) are refused: WASI has none.
//! A missing `DATABASE_URL_<ALIAS>`, or no setting at all for `default`, is a configuration error.

mod url;

use crate::error::{Error, Result};
use std::fmt;
use std::time::Duration;

pub(crate) use url::parse_url;

/// A password. Never printed: `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    Disable,
    Allow,
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(Error::Config(format!(
                    "invalid sslmode {other:?} (expected disable, allow, prefer, require, verify-ca or verify-full)"
                )))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// One server to try: a host name or IP literal (IPv6 without brackets) and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Resolved connection settings. `Debug` never shows the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Tried in order; the first that accepts the connection is used (libpq semantics).
    pub hosts: Vec<HostPort>,
    pub user: String,
    pub password: Option<Secret>,
    pub dbname: String,
    /// Per-host connect limit (libpq `connect_timeout`, seconds; values below 2 count as 2).
    pub connect_timeout: Option<Duration>,
    pub application_name: Option<String>,
    /// Sent as the `options` startup parameter (e.g. `-c search_path=app`).
    pub options: Option<String>,
    pub sslmode: SslMode,
    pub sslrootcert: Option<String>,
    pub sslcert: Option<String>,
    pub sslkey: Option<String>,
    pub channel_binding: Option<String>,
    pub sslnegotiation: Option<String>,
    /// Where the settings came from (`DATABASE_URL`, `DATABASE_URL_REPLICA`, `PG* variables`),
    /// for messages.
    pub source: String,
}

/// What a URL or the environment set; `None` = not set.
#[derive(Debug, Default, Clone)]
pub(crate) struct Partial {
    pub hosts: Option<Vec<String>>,
    pub ports: Option<Vec<String>>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub dbname: Option<String>,
    pub connect_timeout: Option<String>,
    pub application_name: Option<String>,
    pub options: Option<String>,
    pub sslmode: Option<String>,
    pub sslrootcert: Option<String>,
    pub sslcert: Option<String>,
    pub sslkey: Option<String>,
    pub channel_binding: Option<String>,
    pub sslnegotiation: Option<String>,
}

impl Partial {
    /// Fill what `self` leaves unset from `other`.
    fn or(self, other: Partial) -> Partial {
        Partial {
            hosts: self.hosts.or(other.hosts),
            ports: self.ports.or(other.ports),
            user: self.user.or(other.user),
            password: self.password.or(other.password),
            dbname: self.dbname.or(other.dbname),
            connect_timeout: self.connect_timeout.or(other.connect_timeout),
            application_name: self.application_name.or(other.application_name),
            options: self.options.or(other.options),
            sslmode: self.sslmode.or(other.sslmode),
            sslrootcert: self.sslrootcert.or(other.sslrootcert),
            sslcert: self.sslcert.or(other.sslcert),
            sslkey: self.sslkey.or(other.sslkey),
            channel_binding: self.channel_binding.or(other.channel_binding),
            sslnegotiation: self.sslnegotiation.or(other.sslnegotiation),
        }
    }

    fn is_empty(&self) -> bool {
        self.hosts.is_none()
            && self.ports.is_none()
            && self.user.is_none()
            && self.password.is_none()
            && self.dbname.is_none()
    }
}

/// The libpq variables this crate reads, in the order documented above.
pub const PG_ENV_VARS: &[&str] = &[
    "PGHOST",
    "PGPORT",
    "PGUSER",
    "PGPASSWORD",
    "PGDATABASE",
    "PGCONNECT_TIMEOUT",
    "PGAPPNAME",
    "PGOPTIONS",
    "PGSSLMODE",
    "PGSSLROOTCERT",
    "PGSSLCERT",
    "PGSSLKEY",
    "PGCHANNELBINDING",
    "PGSSLNEGOTIATION",
];

/// The environment variable holding the URL of database alias `alias`.
pub fn url_var(alias: &str) -> String {
    if alias == "default" {
        "DATABASE_URL".to_string()
    } else {
        format!("DATABASE_URL_{}", alias.to_ascii_uppercase())
    }
}

/// Every environment variable [`Config::from_env`] may read for `alias`.
pub fn env_vars(alias: &str) -> Vec<String> {
    let mut v = vec![url_var(alias)];
    if alias == "default" {
        v.extend(PG_ENV_VARS.iter().map(|s| s.to_string()));
    }
    v
}

/// Check a database alias given with `-d/--database`: letters, digits and `_`.
pub fn check_alias(alias: &str) -> Result<()> {
    if alias.is_empty() || !alias.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(Error::Config(format!(
            "invalid database alias {alias:?}: use letters, digits and '_'"
        )));
    }
    Ok(())
}

fn pg_env(env: &dyn Fn(&str) -> Option<String>) -> Partial {
    let get = |k: &str| env(k).filter(|v| !v.is_empty());
    let list = |k: &str| get(k).map(|v| v.split(',').map(|s| s.trim().to_string()).collect());
    Partial {
        hosts: list("PGHOST"),
        ports: list("PGPORT"),
        user: get("PGUSER"),
        password: get("PGPASSWORD"),
        dbname: get("PGDATABASE"),
        connect_timeout: get("PGCONNECT_TIMEOUT"),
        application_name: get("PGAPPNAME"),
        options: get("PGOPTIONS"),
        sslmode: get("PGSSLMODE"),
        sslrootcert: get("PGSSLROOTCERT"),
        sslcert: get("PGSSLCERT"),
        sslkey: get("PGSSLKEY"),
        channel_binding: get("PGCHANNELBINDING"),
        sslnegotiation: get("PGSSLNEGOTIATION"),
    }
}

impl Config {
    /// Settings for database alias `alias` (`default` or another name given with `-d`), read
    /// through `env` (e.g. `&|k| std::env::var(k).ok()`).
    pub fn from_env(alias: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config> {
        check_alias(alias)?;
        let var = url_var(alias);
        let from_url = match env(&var).filter(|v| !v.trim().is_empty()) {
            Some(u) => Some(parse_url(u.trim(), &var)?),
            None => None,
        };
        if alias == "default" {
            let pg = pg_env(env);
            match from_url {
                Some(p) => Self::finish(p.or(pg), var),
                None if pg.is_empty() => Err(Error::Config(
                    "no database configured: set DATABASE_URL (or the libpq variables PGHOST, PGDATABASE, ...)"
                        .into(),
                )),
                None => Self::finish(pg, "PG* variables".into()),
            }
        } else {
            match from_url {
                Some(p) => Self::finish(p, var),
                None => Err(Error::Config(format!(
                    "database alias {alias:?} is not configured: set {var}"
                ))),
            }
        }
    }

    /// Settings from a URL alone (no environment), `source` naming it in messages.
    pub fn from_url(url: &str, source: &str) -> Result<Config> {
        Self::finish(parse_url(url, source)?, source.to_string())
    }

    fn finish(p: Partial, source: String) -> Result<Config> {
        let bad = |what: String| Error::Config(format!("{source}: {what}"));
        let hosts = p.hosts.unwrap_or_default();
        let hosts = if hosts.is_empty() {
            vec![String::new()]
        } else {
            hosts
        };
        let ports = p.ports.unwrap_or_default();
        if ports.len() > 1 && ports.len() != hosts.len() {
            return Err(bad(format!(
                "{} ports given for {} hosts",
                ports.len(),
                hosts.len()
            )));
        }
        let mut list = Vec::with_capacity(hosts.len());
        for (i, h) in hosts.iter().enumerate() {
            let port = match ports.get(if ports.len() == 1 { 0 } else { i }) {
                None => 5432,
                Some(p) if p.is_empty() => 5432,
                Some(p) => match p.parse::<u16>() {
                    Ok(n) if n > 0 => n,
                    _ => return Err(bad(format!("invalid port {p:?}"))),
                },
            };
            let host = if h.is_empty() {
                "localhost"
            } else {
                h.as_str()
            };
            if host.starts_with('/') || host.starts_with('@') {
                return Err(bad(format!(
                    "host {host:?} is a Unix-domain socket, which WASI cannot use: give a TCP host name or address"
                )));
            }
            list.push(HostPort {
                host: host.to_string(),
                port,
            });
        }
        let user = p.user.unwrap_or_else(|| "postgres".to_string());
        let dbname = p.dbname.unwrap_or_else(|| user.clone());
        let connect_timeout = match p.connect_timeout {
            None => None,
            Some(s) => match s.trim().parse::<i64>() {
                Ok(n) if n <= 0 => None,
                Ok(n) => Some(Duration::from_secs(n.max(2) as u64)),
                Err(_) => {
                    return Err(bad(format!(
                        "invalid connect_timeout {s:?} (whole seconds)"
                    )))
                }
            },
        };
        let sslmode = match &p.sslmode {
            Some(s) => SslMode::parse(s).map_err(|e| bad(e.to_string()))?,
            // libpq 16: sslrootcert=system makes verify-full the default.
            None if p.sslrootcert.as_deref() == Some("system") => SslMode::VerifyFull,
            None => SslMode::default(),
        };
        if let Some(cb) = &p.channel_binding {
            if crate::proto::startup::ChannelBindingMode::parse(cb).is_none() {
                return Err(bad(format!(
                    "invalid channel_binding {cb:?} (expected disable, prefer or require)"
                )));
            }
        }
        if let Some(n) = &p.sslnegotiation {
            if n != "postgres" && n != "direct" {
                return Err(bad(format!(
                    "invalid sslnegotiation {n:?} (expected postgres or direct)"
                )));
            }
        }
        Ok(Config {
            hosts: list,
            user,
            password: p.password.map(Secret),
            dbname,
            connect_timeout,
            application_name: p.application_name,
            options: p.options,
            sslmode,
            sslrootcert: p.sslrootcert,
            sslcert: p.sslcert,
            sslkey: p.sslkey,
            channel_binding: p.channel_binding,
            sslnegotiation: p.sslnegotiation,
            source,
        })
    }

    /// The parsed `channel_binding` (default `prefer`; invalid values were refused when the
    /// settings were read).
    pub fn channel_binding_mode(&self) -> crate::proto::startup::ChannelBindingMode {
        self.channel_binding
            .as_deref()
            .and_then(crate::proto::startup::ChannelBindingMode::parse)
            .unwrap_or_default()
    }

    /// `user@host:port/dbname` (first host), for messages. Never contains the password.
    pub fn describe(&self) -> String {
        let host = self
            .hosts
            .first()
            .map(|h| h.to_string())
            .unwrap_or_default();
        let more = if self.hosts.len() > 1 {
            format!(" (+{} more hosts)", self.hosts.len() - 1)
        } else {
            String::new()
        };
        format!("{}@{}/{}{}", self.user, host, self.dbname, more)
    }
}

#[cfg(test)]
mod tests;
