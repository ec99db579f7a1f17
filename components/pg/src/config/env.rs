//! Which environment variables hold the settings, and reading them.

use super::error::{problem, ConfigError, Origin, Part};
use super::values::{self, Parsed};
use super::{Partial, Secret};
use std::ffi::OsString;

/// The libpq variables this crate reads, in the order documented in [`super`].
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

/// A database alias (`-d/--database`): ASCII letters, digits and `_`, checked when made, so it
/// is safe to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias(String);

impl Alias {
    pub fn new(alias: &str) -> Result<Alias, ConfigError> {
        if alias.is_empty() || !alias.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ConfigError::new(
                None,
                Some(Part::Alias),
                "invalid (use letters, digits and '_')",
            ));
        }
        Ok(Alias(alias.to_string()))
    }

    /// The alias Django calls `default`.
    pub fn default_alias() -> Alias {
        Alias("default".to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_default(&self) -> bool {
        self.0 == "default"
    }

    /// `DATABASE_URL`, or `DATABASE_URL_<ALIAS>` (upper-cased).
    pub fn url_var(&self) -> String {
        if self.is_default() {
            "DATABASE_URL".to_string()
        } else {
            format!("DATABASE_URL_{}", self.0.to_ascii_uppercase())
        }
    }
}

/// The environment variable holding the URL of database alias `alias`.
pub fn url_var(alias: &str) -> String {
    match Alias::new(alias) {
        Ok(a) => a.url_var(),
        Err(_) => format!("DATABASE_URL_{}", alias.to_ascii_uppercase()),
    }
}

/// Every environment variable [`super::Config::from_env`] may read for `alias`.
pub fn env_vars(alias: &str) -> Vec<String> {
    let mut v = vec![url_var(alias)];
    if alias == "default" {
        v.extend(PG_ENV_VARS.iter().map(|s| s.to_string()));
    }
    v
}

/// Check a database alias given with `-d/--database`: letters, digits and `_`.
pub fn check_alias(alias: &str) -> Result<(), ConfigError> {
    Alias::new(alias).map(drop)
}

/// An environment lookup: the value of a variable, `None` when unset (e.g. `std::env::var_os`).
/// Values are OS strings so that a variable that is set but not UTF-8 is reported as such,
/// not taken for unset.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<OsString>;

/// The value of `name`, `None` when unset or empty; an error naming `origin` when it is not
/// UTF-8.
pub(crate) fn read(
    env: Lookup<'_>,
    name: &str,
    origin: &Origin,
) -> Result<Option<String>, ConfigError> {
    match env(name) {
        None => Ok(None),
        Some(v) => match v.into_string() {
            Ok(s) if s.trim().is_empty() => Ok(None),
            Ok(s) => Ok(Some(s)),
            Err(_) => Err(ConfigError::new(
                Some(origin.clone()),
                None,
                problem::NOT_UNICODE,
            )),
        },
    }
}

/// Fill what `p` leaves unset from the libpq variables. As in libpq, a variable is read (and
/// checked) only when the URL does not set its setting.
pub(crate) fn fill_from_pg(p: &mut Partial, env: Lookup<'_>) -> Result<(), ConfigError> {
    fn var<T>(
        env: Lookup<'_>,
        name: &'static str,
        parse: impl Fn(&str) -> Parsed<T>,
    ) -> Result<Option<T>, ConfigError> {
        let origin = Origin::PgVar(name);
        match read(env, name, &origin)? {
            None => Ok(None),
            Some(v) => parse(&v)
                .map(Some)
                .map_err(|e| ConfigError::new(Some(origin), None, e)),
        }
    }
    fn fill<T>(
        slot: &mut Option<T>,
        env: Lookup<'_>,
        name: &'static str,
        parse: impl Fn(&str) -> Parsed<T>,
    ) -> Result<(), ConfigError> {
        if slot.is_none() {
            *slot = var(env, name, parse)?;
        }
        Ok(())
    }
    fill(&mut p.hosts, env, "PGHOST", values::host_list)?;
    fill(&mut p.ports, env, "PGPORT", values::port_list)?;
    fill(&mut p.user, env, "PGUSER", values::text)?;
    fill(&mut p.password, env, "PGPASSWORD", |v| {
        values::text(v).map(Secret)
    })?;
    fill(&mut p.dbname, env, "PGDATABASE", values::text)?;
    fill(
        &mut p.connect_timeout,
        env,
        "PGCONNECT_TIMEOUT",
        values::connect_timeout,
    )?;
    fill(&mut p.application_name, env, "PGAPPNAME", values::text)?;
    fill(&mut p.options, env, "PGOPTIONS", values::text)?;
    fill(&mut p.sslmode, env, "PGSSLMODE", values::sslmode)?;
    fill(&mut p.sslrootcert, env, "PGSSLROOTCERT", values::text)?;
    fill(&mut p.sslcert, env, "PGSSLCERT", values::text)?;
    fill(&mut p.sslkey, env, "PGSSLKEY", values::text)?;
    fill(
        &mut p.channel_binding,
        env,
        "PGCHANNELBINDING",
        values::channel_binding,
    )?;
    fill(
        &mut p.sslnegotiation,
        env,
        "PGSSLNEGOTIATION",
        values::sslnegotiation,
    )?;
    Ok(())
}
