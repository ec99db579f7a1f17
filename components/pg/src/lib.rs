//! The PostgreSQL client shared by every djinit component.
//!
//! Layers, bottom up:
//! - [`proto`]: sans-IO protocol code (bytes in, bytes out): framing of backend messages with size
//!   limits, the startup/authentication state machine (trust, cleartext, MD5, SCRAM-SHA-256) and the
//!   collection of query results. Unit-tested without sockets.
//! - [`config`]: connection settings from `DATABASE_URL` / `DATABASE_URL_<ALIAS>` and the libpq `PG*`
//!   variables.
//! - [`conn`]: the blocking [`Client`] over `std::net::TcpStream`, with TLS (rustls, ring) as libpq's
//!   `sslmode` asks, SCRAM channel binding when possible. Every connect, read and write is bounded by
//!   a [`Deadline`] and, per exchange, by a timeout; a server that accepts TCP and never answers
//!   cannot hang a command. Reads of statements allowed to run for hours ([`Client::unbounded`])
//!   are watched instead ([`conn::Watch`]).
//!
//! Deadlines and retrying come from `djinit-wait` (the bottom crate, shared with DNS discovery);
//! [`Error`] implements its `Classify` and `Transient`, and [`classify`] finds this crate's errors
//! in a chain for `djinit_cli::main`.
//!
//! Security posture: passwords live in [`config::Secret`], whose `Debug`/`Display` print `***`; no
//! error message of this crate contains a password or a full connection URL. Every value a command
//! sends is a bound parameter ([`Client::query`]), never spliced into SQL text. Server errors and
//! notices are cut to a few KiB and have password hashes and the statement's parameter values
//! redacted ([`proto::redact`]); messages are capped at 8 MiB and results at 16 MiB
//! ([`proto::framing::MAX_MESSAGE_LEN`], [`proto::query::MAX_RESULT_LEN`]).
//!
//! ```no_run
//! use djinit_pg::{config::Config, Client};
//! use djinit_wait::Deadline;
//! use std::time::Duration;
//! let cfg = Config::from_process_env("default")?;
//! let mut client = Client::connect(&cfg, Deadline::after(Duration::from_secs(10)))?;
//! let rows = client.query("SELECT $1::int + 1", &[Some("41")])?;
//! assert_eq!(rows[0].get(0), Some("42"));
//! client.close();
//! # Ok::<(), djinit_pg::Error>(())
//! ```

pub mod config;
pub mod conn;
mod error;
pub mod proto;

pub use config::Config;
pub use conn::{Client, Row};
pub use error::{classify, DbError, Error, ErrorKind, Result};
