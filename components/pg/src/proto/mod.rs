//! Sans-IO PostgreSQL protocol: bytes in, bytes out, no sockets, no clocks.
//!
//! - [`framing::Framer`] cuts the server's byte stream into messages, refusing absurd lengths
//!   before buffering them.
//! - [`startup::Startup`] drives the startup and authentication exchange (trust, cleartext, MD5,
//!   SCRAM-SHA-256), producing the bytes to send.
//! - [`query`] encodes simple and extended queries and collects their results.
//!
//! The message codec itself is `postgres-protocol`'s.

pub mod framing;
#[cfg(test)]
mod fuzz;
pub mod query;
pub mod startup;

pub use postgres_protocol::message::backend::Message;

use crate::error::DbError;
use fallible_iterator::FallibleIterator;
use postgres_protocol::message::backend::ErrorFields;

/// What went wrong at the protocol level; the I/O layer adds the server address and what it was
/// doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtoError {
    /// The bytes do not follow the protocol.
    Protocol(String),
    /// Authentication could not proceed or the server failed to prove itself.
    Auth(String),
    /// The server sent an ErrorResponse.
    Server(DbError),
}

/// Read the fields of an ErrorResponse/NoticeResponse.
pub fn db_error(fields: ErrorFields<'_>) -> Result<DbError, ProtoError> {
    let mut e = DbError {
        severity: String::new(),
        code: String::new(),
        message: String::new(),
        detail: None,
        hint: None,
    };
    let mut fields = fields;
    while let Some(f) = fields
        .next()
        .map_err(|err| ProtoError::Protocol(format!("malformed error response: {err}")))?
    {
        let v = String::from_utf8_lossy(f.value_bytes()).into_owned();
        match f.type_() {
            b'V' => e.severity = v,
            b'S' if e.severity.is_empty() => e.severity = v,
            b'C' => e.code = v,
            b'M' => e.message = v,
            b'D' => e.detail = Some(v),
            b'H' => e.hint = Some(v),
            _ => {}
        }
    }
    if e.code.is_empty() {
        return Err(ProtoError::Protocol(
            "error response without SQLSTATE".into(),
        ));
    }
    Ok(e)
}
