//! The byte stream a session runs over: plain TCP or TLS over TCP, and how it is set up
//! (SSLRequest or direct TLS).

use super::tls::errors::NEGOTIATING;
use super::tls::session::TlsSession;
use super::tls::settings::TlsSettings;
use super::transport::Transport;
use crate::config::HostPort;
use crate::error::{Error, ErrorKind, Result};
use bytes::BytesMut;
use djinit_wait::Deadline;
use postgres_protocol::message::frontend;

pub(crate) enum Stream {
    Plain(Transport),
    Tls(Box<TlsSession>),
}

/// What an attempt asks of TLS.
#[derive(Clone, Copy)]
pub(crate) enum Want<'a> {
    /// Plain text, no SSLRequest.
    Plain,
    /// TLS if the server accepts it, plain text on the same connection if it answers `N`.
    IfOffered(&'a TlsSettings),
    /// TLS or an error.
    Required(&'a TlsSettings),
}

impl Stream {
    /// Connect to `hp` and set up what `want` asks.
    pub fn open(
        hp: &HostPort,
        want: Want<'_>,
        deadline: Deadline,
        per_attempt: Option<std::time::Duration>,
    ) -> Result<Stream> {
        let mut tcp = Transport::connect(hp, deadline, per_attempt)?;
        let deadline = match per_attempt {
            Some(t) => deadline.min(Deadline::after(t)),
            None => deadline,
        };
        let (settings, required) = match want {
            Want::Plain => return Ok(Stream::Plain(tcp)),
            Want::IfOffered(s) => (s, false),
            Want::Required(s) => (s, true),
        };
        if !settings.direct {
            let mut req = BytesMut::with_capacity(8);
            frontend::ssl_request(&mut req);
            tcp.write_all(&req, deadline, NEGOTIATING)?;
            // Exactly one byte: anything the server sends after `S` must be TLS, never
            // plain text buffered before the handshake (CVE-2021-23222).
            let mut answer = [0u8; 1];
            tcp.read_some(&mut answer, deadline, NEGOTIATING)?;
            match answer[0] {
                b'S' => {}
                b'N' if !required => return Ok(Stream::Plain(tcp)),
                b'N' => {
                    return Err(Error::Tls {
                        addr: tcp.addr.clone(),
                        step: NEGOTIATING,
                        detail: format!(
                            "the server refused TLS, but sslmode={} requires it (enable ssl on the server, or lower sslmode)",
                            settings.mode.as_str()
                        ),
                        kind: ErrorKind::Config,
                    })
                }
                b'E' => {
                    return Err(Error::Tls {
                        addr: tcp.addr.clone(),
                        step: NEGOTIATING,
                        detail: "the server answered SSLRequest with an error (a server older than PostgreSQL 7.2, or not PostgreSQL)".into(),
                        kind: ErrorKind::Protocol,
                    })
                }
                other => {
                    return Err(Error::Tls {
                        addr: tcp.addr.clone(),
                        step: NEGOTIATING,
                        detail: format!(
                            "unexpected answer 0x{other:02x} to SSLRequest (not a PostgreSQL server?)"
                        ),
                        kind: ErrorKind::Protocol,
                    })
                }
            }
        }
        let session = TlsSession::handshake(tcp, settings, &hp.host, deadline)?;
        Ok(Stream::Tls(Box::new(session)))
    }

    pub fn addr(&self) -> &str {
        match self {
            Stream::Plain(t) => &t.addr,
            Stream::Tls(s) => s.addr(),
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// `tls-server-end-point` channel-binding data, over TLS.
    pub fn end_point(&self) -> Option<Vec<u8>> {
        match self {
            Stream::Plain(_) => None,
            Stream::Tls(s) => s.end_point(),
        }
    }

    pub fn write_all(
        &mut self,
        buf: &[u8],
        deadline: Deadline,
        during: &'static str,
    ) -> Result<()> {
        match self {
            Stream::Plain(t) => t.write_all(buf, deadline, during),
            Stream::Tls(s) => s.write_all(buf, deadline, during),
        }
    }

    pub fn read_some(
        &mut self,
        buf: &mut [u8],
        deadline: Deadline,
        during: &'static str,
    ) -> Result<usize> {
        match self {
            Stream::Plain(t) => t.read_some(buf, deadline, during),
            Stream::Tls(s) => s.read_some(buf, deadline, during),
        }
    }

    pub fn write_quick(&mut self, buf: &[u8]) {
        match self {
            Stream::Plain(t) => t.write_quick(buf),
            Stream::Tls(s) => s.write_quick(buf),
        }
    }
}
