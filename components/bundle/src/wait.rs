//! "Is the database migrated?" as one probe, for the retry loops of `checkmigrations --wait` and
//! `wait4db --migrated` (`djinit_wait::{retry, wait_stable}`): pending migrations and
//! transient connection errors are retried, anything else is returned at once.
//!
//! ```no_run
//! # fn f(cfg: &djinit_pg::Config, bundle: &djinit_bundle::Bundle) -> Result<(), djinit_bundle::wait::NotMigrated> {
//! use djinit_bundle::wait::probe;
//! use djinit_wait::{retry, Deadline};
//! use std::time::Duration;
//! retry(Deadline::after(Duration::from_secs(60)), Duration::from_secs(1), |_| {}, |d| {
//!     let mut client = djinit_pg::Client::connect(cfg, d)?;
//!     probe(&mut client, bundle)
//! })?;
//! # Ok(()) }
//! ```

use crate::manifest::Bundle;
use crate::state;
use djinit_pg::Client;
use djinit_wait::{Classify, GaveUp, Kind, Transient};
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

impl Classify for NotMigrated {
    /// Pending is "not met" (transient: `--wait` retries it); a recorded state the bundle cannot
    /// be matched to is rejected input; database errors keep theirs.
    fn kind(&self) -> Kind {
        match self {
            NotMigrated::Pg(e) => Classify::kind(e),
            NotMigrated::Pending(_) => Kind::NotMet,
            NotMigrated::State(_) => Kind::Data,
            NotMigrated::GaveUp(g) => g.kind(),
        }
    }

    /// A deadline that passed inside the loop is final for the loop.
    fn is_transient(&self) -> bool {
        !matches!(self, NotMigrated::GaveUp(_)) && self.kind().is_transient()
    }
}

impl Transient for NotMigrated {
    fn gave_up(g: GaveUp) -> Self {
        NotMigrated::GaveUp(g)
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
