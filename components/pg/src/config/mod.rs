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
//!
//! Every value is checked when the settings are read ([`Config::from_env`]): a port, a host, an
//! sslmode, a variable that is not UTF-8, a NUL character anywhere (`%00`) are configuration
//! errors before any connection is tried. Security posture: a configuration error
//! ([`ConfigError`]) names the variable, the part and what was expected, and by construction
//! never contains text from the settings (see [`error`] for why). The password is a [`Secret`].

mod env;
pub mod error;
mod url;
mod values;

pub use crate::proto::startup::ChannelBindingMode;
pub use env::{check_alias, env_vars, url_var, Alias, Lookup, PG_ENV_VARS};
pub use error::{ConfigError, Origin, Part};

/// Reading settings fails only with a [`ConfigError`]: this module sits below `crate::error`, which
/// wraps it, and never imports it (no cycle between settings and errors).
type Result<T> = std::result::Result<T, ConfigError>;
use std::fmt;
use std::time::Duration;

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
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
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

/// libpq's `sslnegotiation` (PostgreSQL 17): SSLRequest first, or TLS at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslNegotiation {
    #[default]
    Postgres,
    Direct,
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

/// Resolved connection settings, every value checked. `Debug` never shows the password.
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
    /// Default `prefer`.
    pub channel_binding: ChannelBindingMode,
    pub sslnegotiation: SslNegotiation,
    /// Where the settings came from (`DATABASE_URL`, `DATABASE_URL_REPLICA`, `PG* variables`),
    /// for messages.
    pub source: Origin,
}

/// What a URL or the environment set, each value checked; `None` = not set.
#[derive(Debug, Default, Clone)]
pub(crate) struct Partial {
    pub hosts: Option<Vec<String>>,
    /// `None` entries: the default port.
    pub ports: Option<Vec<Option<u16>>>,
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub dbname: Option<String>,
    /// `Some(None)`: set to "no limit".
    pub connect_timeout: Option<Option<Duration>>,
    pub application_name: Option<String>,
    pub options: Option<String>,
    pub sslmode: Option<SslMode>,
    pub sslrootcert: Option<String>,
    pub sslcert: Option<String>,
    pub sslkey: Option<String>,
    pub channel_binding: Option<ChannelBindingMode>,
    pub sslnegotiation: Option<SslNegotiation>,
}

impl Partial {
    /// Whether it names a server or an identity (not only, say, an sslmode).
    fn is_empty(&self) -> bool {
        self.hosts.is_none()
            && self.ports.is_none()
            && self.user.is_none()
            && self.password.is_none()
            && self.dbname.is_none()
    }
}

impl Config {
    /// Settings for database alias `alias` (`default` or another name given with `-d`), read
    /// through `env` (e.g. `&std::env::var_os`; commands use [`Config::from_process_env`]).
    pub fn from_env(alias: &str, env: Lookup<'_>) -> Result<Config> {
        let alias = Alias::new(alias)?;
        let origin = Origin::Url(alias.clone());
        let text = env::read(env, &alias.url_var(), &origin)?;
        let mut p = match &text {
            Some(u) => url::parse_url(u.trim(), &origin)?,
            None => Partial::default(),
        };
        if !alias.is_default() {
            return match text {
                Some(_) => Self::finish(p, origin),
                None => Err(ConfigError::new(
                    Some(origin),
                    None,
                    "not set (a database alias other than default needs its own URL)",
                )),
            };
        }
        env::fill_from_pg(&mut p, env)?;
        match text {
            Some(_) => Self::finish(p, origin),
            None if p.is_empty() => Err(ConfigError::new(
                None,
                None,
                "no database configured: set DATABASE_URL (or the libpq variables PGHOST, PGDATABASE, ...)",
            )),
            None => Self::finish(p, Origin::PgVars),
        }
    }

    /// Settings for `alias` from this process's environment.
    pub fn from_process_env(alias: &str) -> Result<Config> {
        Self::from_env(alias, &|k| std::env::var_os(k))
    }

    /// Settings for a djinit command: [`Config::from_process_env`], with `application_name`
    /// (what `pg_stat_activity` shows) defaulting to `application` (e.g. `djinit wait4db`) when
    /// neither the URL nor `PGAPPNAME` sets it. Every command sets its connection up this way.
    pub fn for_command(alias: &str, application: &str) -> Result<Config> {
        let mut cfg = Self::from_process_env(alias)?;
        cfg.application_name
            .get_or_insert_with(|| application.to_string());
        Ok(cfg)
    }

    /// Settings from a URL alone (no environment), named `DATABASE_URL` in messages.
    pub fn from_url(url: &str) -> Result<Config> {
        let origin = Origin::Url(Alias::default_alias());
        Self::finish(url::parse_url(url, &origin)?, origin)
    }

    fn finish(p: Partial, source: Origin) -> Result<Config> {
        let hosts = p
            .hosts
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| vec![String::new()]);
        let ports = p.ports.unwrap_or_default();
        if ports.len() > 1 && ports.len() != hosts.len() {
            return Err(ConfigError::new(
                Some(source),
                None,
                error::problem::PORT_COUNT,
            ));
        }
        let hosts = hosts
            .into_iter()
            .enumerate()
            .map(|(i, h)| HostPort {
                host: if h.is_empty() { "localhost".into() } else { h },
                port: ports
                    .get(if ports.len() == 1 { 0 } else { i })
                    .copied()
                    .flatten()
                    .unwrap_or(5432),
            })
            .collect();
        let user = p.user.unwrap_or_else(|| "postgres".to_string());
        let dbname = p.dbname.unwrap_or_else(|| user.clone());
        let sslmode = match p.sslmode {
            Some(m) => m,
            // libpq 16: sslrootcert=system makes verify-full the default.
            None if p.sslrootcert.as_deref() == Some("system") => SslMode::VerifyFull,
            None => SslMode::default(),
        };
        Ok(Config {
            hosts,
            user,
            password: p.password,
            dbname,
            connect_timeout: p.connect_timeout.flatten(),
            application_name: p.application_name,
            options: p.options,
            sslmode,
            sslrootcert: p.sslrootcert,
            sslcert: p.sslcert,
            sslkey: p.sslkey,
            channel_binding: p.channel_binding.unwrap_or_default(),
            sslnegotiation: p.sslnegotiation.unwrap_or_default(),
            source,
        })
    }

    /// The `channel_binding` setting (default `prefer`).
    pub fn channel_binding_mode(&self) -> ChannelBindingMode {
        self.channel_binding
    }

    /// A configuration error about this configuration's `setting` (a libpq name such as
    /// `sslrootcert`), for checks made after reading (TLS files).
    pub fn error(&self, setting: &'static str, problem: &'static str) -> crate::Error {
        ConfigError::new(
            Some(self.source.clone()),
            Some(Part::Setting(setting)),
            problem,
        )
        .into()
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
