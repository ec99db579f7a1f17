//! "Is the database migrated?" as one probe, for the retry loops of `checkmigrations --wait` and
//! `wait4db --migrated` (`djinit_pg::retry::{retry, wait_stable}`): pending migrations and
//! transient connection errors are retried, anything else is returned at once.
//!
//! ```no_run
//! # fn f(cfg: &djinit_pg::Config, bundle: &djinit_bundle::Bundle) -> anyhow::Result<()> {
//! use djinit_bundle::wait::{probe, NotMigrated};
//! use djinit_pg::{retry::retry, Deadline};
//! use std::time::Duration;
//! retry(Deadline::after(Duration::from_secs(60)), Duration::from_secs(1), |_| {}, |d| {
//!     let mut client = djinit_pg::Client::connect(cfg, d)?;
//!     probe(&mut client, bundle)
//! })
//! .map_err(NotMigrated::into_anyhow)?;
//! # Ok(()) }
//! ```

use crate::manifest::Bundle;
use crate::state;
use djinit_cli::{ExitCode, Failure};
use djinit_pg::retry::{GaveUp, Transient};
use djinit_pg::Client;
use std::fmt;

/// Why the database is not (known to be) migrated.
#[derive(Debug)]
pub enum NotMigrated {
    /// Talking to the database failed.
    Pg(djinit_pg::Error),
    /// These migrations (`app.name`, in apply order) are not recorded. Transient.
    Pending(Vec<String>),
    /// The recorded state cannot be matched to the bundle (partially applied squash). Permanent.
    State(String),
    /// The deadline passed; `last_pending` when the last probe found pending migrations.
    GaveUp(GaveUp),
}

impl fmt::Display for NotMigrated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotMigrated::Pg(e) => write!(f, "{e}"),
            NotMigrated::Pending(p) => write!(
                f,
                "{} migration{} pending (first: {})",
                p.len(),
                if p.len() == 1 { "" } else { "s" },
                p.first().map(String::as_str).unwrap_or("?")
            ),
            NotMigrated::State(s) => f.write_str(s),
            NotMigrated::GaveUp(g) => write!(f, "{g}"),
        }
    }
}

impl std::error::Error for NotMigrated {}

impl From<djinit_pg::Error> for NotMigrated {
    fn from(e: djinit_pg::Error) -> Self {
        NotMigrated::Pg(e)
    }
}

impl Transient for NotMigrated {
    fn is_transient(&self) -> bool {
        match self {
            NotMigrated::Pg(e) => e.is_transient(),
            NotMigrated::Pending(_) => true,
            NotMigrated::State(_) | NotMigrated::GaveUp(_) => false,
        }
    }
    fn gave_up(g: GaveUp) -> Self {
        NotMigrated::GaveUp(g)
    }
}

impl NotMigrated {
    /// As a command error with the right exit code: pending 1, state 65, deadline 75, database
    /// errors by djinit-cli's table.
    pub fn into_anyhow(self) -> anyhow::Error {
        match self {
            NotMigrated::Pg(e) => anyhow::Error::new(e),
            NotMigrated::Pending(_) => {
                anyhow::Error::new(Failure::new(ExitCode::NotMet, self.to_string()))
            }
            NotMigrated::State(s) => anyhow::Error::new(Failure::new(ExitCode::Data, s)),
            NotMigrated::GaveUp(g) => anyhow::Error::new(g),
        }
    }
}

/// One probe on a connected client: Ok when every migration of `bundle` is recorded.
pub fn probe(client: &mut Client, bundle: &Bundle) -> Result<(), NotMigrated> {
    let pending = state::pending(client, bundle).map_err(|e| match e {
        state::StateError::Pg(p) => NotMigrated::Pg(p),
        other => NotMigrated::State(other.to_string()),
    })?;
    if pending.is_empty() {
        Ok(())
    } else {
        Err(NotMigrated::Pending(
            pending.iter().map(|m| m.label()).collect(),
        ))
    }
}

/// Load a bundle as a command error with the right exit code (66 missing, 65 invalid).
pub fn load(dir: &std::path::Path) -> anyhow::Result<Bundle> {
    Bundle::load(dir).map_err(|e| {
        let code = match e {
            crate::BundleError::Read { .. } => ExitCode::NoInput,
            crate::BundleError::Invalid { .. } => ExitCode::Data,
        };
        anyhow::Error::new(Failure::new(code, e.to_string()))
    })
}
