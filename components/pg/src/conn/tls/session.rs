//! A TLS session over the deadline-bounded transport.
//!
//! rustls' connection is a sans-IO state machine; this file only moves bytes between it and the
//! [`Transport`], so every read and write of the handshake and of the session is bounded by the
//! same deadline as plain connections.

use super::end_point::tls_server_end_point;
use super::errors::{self, HANDSHAKE};
use super::settings::{Check, TlsSettings, ALPN};
use crate::conn::transport::Transport;
use crate::error::{Error, ErrorKind, Result};
use djinit_wait::Deadline;
use rustls::pki_types::ServerName;
use rustls::ClientConnection;
use std::io::{self, Read, Write};

pub(crate) struct TlsSession {
    tcp: Transport,
    conn: ClientConnection,
    /// For messages about failures after the handshake (TLS 1.3 servers reject a client
    /// certificate then): the host name and where the trusted roots came from.
    host: String,
    roots: Option<String>,
}

/// `Read`/`Write` over the transport for rustls, keeping our own error (with its kind and
/// message) instead of losing it inside an `io::Error`.
struct Io<'a> {
    tcp: &'a mut Transport,
    deadline: Deadline,
    during: &'static str,
    err: Option<Error>,
    received: usize,
}

impl Read for Io<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.tcp.read_some(buf, self.deadline, self.during) {
            Ok(n) => {
                self.received += n;
                Ok(n)
            }
            Err(e) => {
                self.err = Some(e);
                Err(io::Error::other("transport failed"))
            }
        }
    }
}

impl Write for Io<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.tcp.write_all(buf, self.deadline, self.during) {
            Ok(()) => Ok(buf.len()),
            Err(e) => {
                self.err = Some(e);
                Err(io::Error::other("transport failed"))
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> Io<'a> {
    fn new(tcp: &'a mut Transport, deadline: Deadline, during: &'static str) -> Self {
        Io {
            tcp,
            deadline,
            during,
            err: None,
            received: 0,
        }
    }

    /// The transport's error if it failed, else `fallback`.
    fn error(&mut self, fallback: impl FnOnce() -> Error) -> Error {
        self.err.take().unwrap_or_else(fallback)
    }
}

impl TlsSession {
    /// Run the handshake on `tcp` (after the server said `S` to SSLRequest, or at once for
    /// `sslnegotiation=direct`). `host` is the name the certificate must match under
    /// `verify-full`.
    pub fn handshake(
        mut tcp: Transport,
        settings: &TlsSettings,
        host: &str,
        deadline: Deadline,
    ) -> Result<TlsSession> {
        let addr = tcp.addr.clone();
        let name = match ServerName::try_from(host.to_string()) {
            Ok(n) => n,
            Err(_) if settings.check != Check::Full => {
                // Only verify-full looks at the name; SNI is skipped for unusual names.
                ServerName::try_from("invalid.invalid").expect("valid DNS name")
            }
            Err(_) => {
                return Err(Error::Tls {
                    addr,
                    step: HANDSHAKE,
                    detail: "sslmode=verify-full cannot check this host name: it is not a valid DNS name or IP address".into(),
                    kind: ErrorKind::Config,
                })
            }
        };
        let mut conn =
            ClientConnection::new(settings.client.clone(), name).map_err(|e| Error::Tls {
                addr: addr.clone(),
                step: HANDSHAKE,
                detail: format!("TLS setup failed: {}", errors::short(&e)),
                kind: ErrorKind::Config,
            })?;
        let mut io = Io::new(&mut tcp, deadline, HANDSHAKE);
        loop {
            if !conn.is_handshaking() {
                // Our last flight (Finished) stays queued and leaves with the first message
                // (the StartupMessage) in one write: no Nagle delay between the two.
                break;
            }
            let out = pending(&mut conn);
            if !out.is_empty() && io.write(&out).is_err() {
                return Err(io.error(|| tls_io(&addr)));
            }
            if conn.read_tls(&mut io).is_err() {
                let e = io.error(|| tls_io(&addr));
                if settings.direct && io.received == 0 && is_eof(&e) {
                    return Err(Error::Tls {
                        addr,
                        step: HANDSHAKE,
                        detail: "the server closed the connection on a direct TLS handshake: it does not support sslnegotiation=direct (PostgreSQL 17 and later do)".into(),
                        kind: ErrorKind::Protocol,
                    });
                }
                return Err(e);
            }
            if let Err(e) = conn.process_new_packets() {
                // Tell the server why (an alert), best effort.
                let _ = io.write(&pending(&mut conn));
                return Err(errors::handshake(
                    &e,
                    &addr,
                    host,
                    settings.roots.as_deref(),
                ));
            }
        }
        drop(io);
        if settings.direct && conn.alpn_protocol() != Some(ALPN) {
            return Err(Error::Tls {
                addr,
                step: HANDSHAKE,
                detail: "direct TLS connection established without ALPN \"postgresql\"".into(),
                kind: ErrorKind::Protocol,
            });
        }
        Ok(TlsSession {
            tcp,
            conn,
            host: host.to_string(),
            roots: settings.roots.clone(),
        })
    }

    pub fn addr(&self) -> &str {
        &self.tcp.addr
    }

    /// `tls-server-end-point` data of the server's certificate, if its algorithm defines one.
    pub fn end_point(&self) -> Option<Vec<u8>> {
        let cert = self.conn.peer_certificates()?.first()?;
        tls_server_end_point(cert)
    }

    pub fn write_all(
        &mut self,
        mut buf: &[u8],
        deadline: Deadline,
        during: &'static str,
    ) -> Result<()> {
        while !buf.is_empty() {
            let n = self
                .conn
                .writer()
                .write(buf)
                .map_err(|e| self.failed(e, during))?;
            buf = &buf[n..];
            self.flush(deadline, during)?;
        }
        Ok(())
    }

    /// Read decrypted bytes (at least one) into `buf`.
    pub fn read_some(
        &mut self,
        buf: &mut [u8],
        deadline: Deadline,
        during: &'static str,
    ) -> Result<usize> {
        loop {
            match self.conn.reader().read(buf) {
                Ok(0) => {
                    return Err(Error::Io {
                        addr: self.tcp.addr.clone(),
                        during,
                        io: io::ErrorKind::UnexpectedEof.into(),
                    })
                }
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(self.failed(e, during)),
            }
            let addr = self.tcp.addr.clone();
            let mut io = Io::new(&mut self.tcp, deadline, during);
            if self.conn.read_tls(&mut io).is_err() {
                return Err(io.error(|| tls_io(&addr)));
            }
            drop(io);
            if let Err(e) = self.conn.process_new_packets() {
                return Err(errors::handshake(
                    &e,
                    &addr,
                    &self.host,
                    self.roots.as_deref(),
                ));
            }
            self.flush(deadline, during)?;
        }
    }

    /// Best effort, short: Terminate and close_notify on close.
    pub fn write_quick(&mut self, buf: &[u8]) {
        let _ = self.conn.writer().write_all(buf);
        self.conn.send_close_notify();
        self.tcp.write_quick(&pending(&mut self.conn));
    }

    fn flush(&mut self, deadline: Deadline, during: &'static str) -> Result<()> {
        let out = pending(&mut self.conn);
        if out.is_empty() {
            return Ok(());
        }
        self.tcp.write_all(&out, deadline, during)
    }

    fn failed(&self, e: io::Error, during: &'static str) -> Error {
        Error::Io {
            addr: self.tcp.addr.clone(),
            during,
            io: e,
        }
    }
}

/// Every TLS record waiting to be sent, as one buffer: one write per flight, so a flight of
/// several records never waits on Nagle's algorithm and the peer's delayed ACK (~40 ms each).
fn pending(conn: &mut ClientConnection) -> Vec<u8> {
    let mut out = Vec::new();
    while conn.wants_write() {
        // Writing into a Vec cannot fail.
        if conn.write_tls(&mut out).is_err() {
            break;
        }
    }
    out
}

fn tls_io(addr: &str) -> Error {
    Error::Tls {
        addr: addr.to_string(),
        step: HANDSHAKE,
        detail: "TLS buffer error".into(),
        kind: ErrorKind::Protocol,
    }
}

fn is_eof(e: &Error) -> bool {
    matches!(e, Error::Io { io, .. } if matches!(io.kind(), io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset))
}
