//! TLS inside the component: rustls (its own state machine is sans-IO) driven over the
//! deadline-bounded [`Transport`](super::transport::Transport).
//!
//! - [`settings`]: what the connection settings ask for (sslmode, sslrootcert, sslcert/sslkey,
//!   sslnegotiation), files read and checked before any byte goes to the server.
//! - [`verify`]: the certificate checks each sslmode implies (none, chain only, chain + name).
//! - [`session`]: the handshake and record I/O over the transport, every step under the deadline.
//! - [`errors`]: rustls errors turned into one clear line saying which step failed.
//! - [`end_point`]: the `tls-server-end-point` channel binding (RFC 5929) for SCRAM-SHA-256-PLUS.
//!
//! Crypto provider: `ring`. It builds for wasm32-wasip2 (its C parts need `clang`), is mature
//! and constant-time. Measured: wait4db.wasm 547,278 B without TLS, 1,253,244 B with rustls +
//! ring + TLS 1.2/1.3 + the bundled webpki roots (+0.67 MiB); ring at opt-level 3 instead of the
//! profile's "s" made it 1,417,814 B and no faster, so it stays size-optimized. Not measured:
//! the pure-Rust `rustls-rustcrypto` (pre-1.0, unaudited, so not a candidate for production
//! TLS) and `aws-lc-rs` (rustls' default, a large C build).
//!
//! WASI 0.2 sockets have no TCP_NODELAY: every TLS flight goes out in one write (and our last
//! handshake flight together with the StartupMessage), or Nagle and delayed ACKs cost ~40 ms per
//! extra write.

pub(crate) mod end_point;
pub(crate) mod errors;
pub(crate) mod session;
pub(crate) mod settings;
pub(crate) mod verify;

use std::sync::Arc;

/// The provider every TLS session uses.
pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
