//! `dns-discover`: find the memcached servers behind a name and keep a file listing them current.
//!
//! Layers, bottom up:
//! - [`dns`]: DNS messages, sans-IO, unit-tested without sockets.
//! - [`resolv`]: resolv.conf (nameservers, search, ndots, timeout, attempts).
//! - [`client`]: the stub DNS client over wasi UDP (non-blocking, polled) with TCP fallback.
//! - [`discover`]: one round: host resolver or DNS client, A/AAAA or SRV, optional [`probe`].
//! - [`format`], [`output`]: rendering and atomic writing.
//! - [`cli`], [`run`]: flags, the one-shot/`--min` wait (djinit-wait's `retry`) and `--watch`.
//!
//! Security posture: the component opens sockets only to the nameservers (UDP, TCP after a
//! truncated reply) and, with `--probe`, to the discovered endpoints; the runner's policy allows
//! exactly that. It reads no file of the host: the runner passes resolv.conf's content in
//! `$DJINIT_RESOLV_CONF`; it writes only `--output` (and its `.NAME.tmp`) in the one directory the
//! runner mounts.

pub mod cli;
pub mod client;
pub mod discover;
pub mod dns;
pub mod error;
pub mod format;
pub mod output;
pub mod probe;
pub mod resolv;
pub mod run;

pub use error::{classify, DiscoverError};

/// memcached's port, the default for `--port`.
pub const DEFAULT_PORT: u16 = 11211;
