//! Waiting, and what kind of failure ended it: the bottom crate of djinit (no dependencies), used
//! by the PostgreSQL client (`djinit-pg`), by DNS discovery (which has no PostgreSQL in it and so
//! must not link the client and its TLS stack: `cargo tree -p dns-discover` shows no `djinit-pg`,
//! no `rustls`) and by the command-line layer (`djinit-cli`).
//!
//! - [`Deadline`]: a point in time after which an operation gives up.
//! - [`retry()`] and [`wait_stable`]: retrying transient failures, and only those, under a
//!   deadline; [`GaveUp`] when it passes; [`Event`]s for progress lines.
//! - [`Kind`] and [`Classify`]: what kind of failure an error is, and so whether retrying may
//!   help. Libraries classify their own errors here and never name an exit code; the one table
//!   from kinds to exit codes is `djinit_cli::exit`.

mod deadline;
mod kind;
pub mod retry;

pub use deadline::Deadline;
pub use kind::{kind_of, Classifier, Classify, Kind};
pub use retry::{retry, wait_stable, Event, GaveUp, Transient};
