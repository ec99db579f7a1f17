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
pub mod redact;
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

/// Longest error/notice field kept (message, detail, hint), in bytes; the rest is cut with a
/// note of how much. 4 KiB is several lines of any message PostgreSQL writes itself; longer ones
/// are texts a statement chose (`RAISE`), and a one-line error or log line cannot show more.
pub const MAX_FIELD_LEN: usize = 4096;

/// Read the fields of an ErrorResponse/NoticeResponse: each cut to [`MAX_FIELD_LEN`], hash-shaped
/// tokens redacted ([`redact::hashes`]).
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
        let kept = matches!(f.type_(), b'V' | b'S' | b'C' | b'M' | b'D' | b'H');
        if !kept {
            continue;
        }
        let v = field(f.value_bytes());
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
    redact::db_error(&mut e, &[]);
    Ok(e)
}

/// A field's text, cut to [`MAX_FIELD_LEN`].
fn field(v: &[u8]) -> String {
    if v.len() <= MAX_FIELD_LEN {
        return String::from_utf8_lossy(v).into_owned();
    }
    let mut s = String::from_utf8_lossy(&v[..MAX_FIELD_LEN]).into_owned();
    // A character cut in two shows as U+FFFD; drop it.
    if s.ends_with('\u{fffd}') {
        s.pop();
    }
    s.push_str(&format!("… ({} more bytes)", v.len() - MAX_FIELD_LEN));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::framing::Framer;

    fn error_message(fields: &[(u8, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (t, v) in fields {
            body.push(*t);
            body.extend_from_slice(v);
            body.push(0);
        }
        body.push(0);
        let mut m = vec![b'E'];
        m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        m.extend(body);
        m
    }

    fn parse(bytes: &[u8]) -> DbError {
        let mut f = Framer::new();
        f.feed(bytes);
        match f.next_message().unwrap().unwrap() {
            Message::ErrorResponse(b) => db_error(b.fields()).unwrap(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn long_fields_are_cut_and_hashes_redacted() {
        let long = "é".repeat(MAX_FIELD_LEN); // 2 bytes each
        let e = parse(&error_message(&[
            (b'S', b"ERROR"),
            (b'C', b"P0001"),
            (b'M', long.as_bytes()),
            (
                b'D',
                b"Failing row contains (1, md5a3556571e93b0d20722ba62be61e8c2d).",
            ),
            (b'W', &vec![b'w'; 100_000]),
        ]));
        assert!(e.message.len() <= MAX_FIELD_LEN + 40, "{}", e.message.len());
        assert!(e
            .message
            .ends_with(&format!("… ({} more bytes)", MAX_FIELD_LEN)));
        assert!(!e.message.contains('\u{fffd}'));
        assert_eq!(
            e.detail.as_deref(),
            Some("Failing row contains (1, [redacted]).")
        );
    }
}
