//! Cutting the server's byte stream into messages.

use super::{Message, ProtoError};
use bytes::BytesMut;

/// Largest backend message accepted: 8 MiB. Anything larger is refused from its 5-byte header,
/// before its bytes are buffered (a protocol error, exit 76).
///
/// Why 8 MiB: a message costs about twice its length at its peak (the receive buffer, reserved
/// once at the exact size by `Message::parse`, and the text copy of a DataRow's values), so 16 MiB here, a quarter
/// of the runner's default 64 MiB component memory, leaving the rest to the component and its
/// migration bundle. The former 16 MiB cap, with a doubling buffer and the error text copied
/// while formatting, went over 64 MiB (exit 71 instead of 76, issue 9). djinit itself reads
/// small messages: rows of `django_migrations`, one user row, `pg_stat_activity` lines. The
/// largest legitimate ones are errors and notices whose text a migration chose (`RAISE`); their
/// fields are cut to [`super::MAX_FIELD_LEN`] when read.
pub const MAX_MESSAGE_LEN: usize = 8 << 20;

/// A receive buffer that grew past this for one large message is replaced by a small one once
/// that message is out, so a single large message does not pin its memory for the session.
const KEEP_CAPACITY: usize = 64 << 10;

/// Message tags a backend may send (protocol 3.0).
const BACKEND_TAGS: &[u8] = b"R123CdcGHWDIEVnNAtSKsZTv";

/// Accumulates bytes read from the server and yields whole messages.
#[derive(Default)]
pub struct Framer {
    buf: BytesMut,
}

impl Framer {
    pub fn new() -> Self {
        Framer {
            buf: BytesMut::with_capacity(8192),
        }
    }

    /// Add bytes received from the server.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered but not yet returned as messages.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// The next whole message, `None` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Message>, ProtoError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let tag = self.buf[0];
        if !BACKEND_TAGS.contains(&tag) {
            return Err(ProtoError::Protocol(format!(
                "unexpected first byte 0x{tag:02x} ({})",
                printable(&self.buf[..self.buf.len().min(16)])
            )));
        }
        if self.buf.len() < 5 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if !(4..=MAX_MESSAGE_LEN).contains(&len) {
            return Err(ProtoError::Protocol(format!(
                "message '{}' claims a length of {len} bytes (stream starts {})",
                tag as char,
                printable(&self.buf[..self.buf.len().min(16)])
            )));
        }
        // `Message::parse` reserves room for the whole message at once (no doubling).
        let msg = Message::parse(&mut self.buf).map_err(|e| {
            ProtoError::Protocol(format!("malformed '{}' message: {e}", tag as char))
        })?;
        if msg.is_some() && self.buf.capacity() > KEEP_CAPACITY {
            let rest = BytesMut::from(&self.buf[..]);
            self.buf = BytesMut::with_capacity(8192.max(rest.len()));
            self.buf.extend_from_slice(&rest);
        }
        Ok(msg)
    }
}

/// Show the start of unexpected bytes without dumping binary.
fn printable(b: &[u8]) -> String {
    let s: String = b
        .iter()
        .map(|&c| {
            if (0x20..0x7f).contains(&c) {
                c as char
            } else {
                '.'
            }
        })
        .collect();
    format!("{s:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn splits_messages_fed_byte_by_byte() {
        let mut bytes = msg(b'S', b"client_encoding\0UTF8\0");
        bytes.extend(msg(b'Z', b"I"));
        let mut f = Framer::new();
        let mut got = vec![];
        for b in bytes {
            f.feed(&[b]);
            while let Some(m) = f.next_message().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got.len(), 2);
        assert!(matches!(got[1], Message::ReadyForQuery(_)));
        assert_eq!(f.pending(), 0);
    }

    #[test]
    fn refuses_http_and_oversized_lengths() {
        let mut f = Framer::new();
        f.feed(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        let e = f.next_message().err().expect("HTTP must be refused");
        assert!(
            matches!(&e, ProtoError::Protocol(m) if m.contains("HTTP/1.1")),
            "{e:?}"
        );

        let mut f = Framer::new();
        f.feed(&[b'D', 0x7f, 0xff, 0xff, 0xff]);
        assert!(f.next_message().is_err());

        let mut f = Framer::new();
        f.feed(&[b'Z', 0, 0, 0, 2]);
        assert!(f.next_message().is_err());
    }

    #[test]
    fn a_large_message_is_buffered_once_and_not_kept() {
        let body = vec![b'x'; 1 << 20];
        let mut f = Framer::new();
        let bytes = msg(b'd', &body);
        for chunk in bytes.chunks(8192) {
            f.feed(chunk);
            if f.pending() < bytes.len() {
                assert!(f.next_message().unwrap().is_none());
                // Room for the whole message, reserved once, kept while it arrives.
                assert!(f.buf.capacity() >= bytes.len() - f.pending());
            }
        }
        assert!(f.next_message().unwrap().is_some());
        assert!(f.buf.capacity() <= KEEP_CAPACITY, "{}", f.buf.capacity());
    }

    #[test]
    fn malformed_body_is_an_error_not_a_panic() {
        // Every prefix of a valid stream is fine; garbage tails never panic.
        for n in 0..64u8 {
            let mut f = Framer::new();
            let mut b = msg(b'E', b"SERROR\0C42P01\0Mnope\0\0");
            b.truncate(n as usize % b.len());
            b.push(n);
            f.feed(&b);
            let _ = f.next_message();
        }
    }
}
