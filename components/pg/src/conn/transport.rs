//! The byte stream under a connection: TCP with every operation bounded by a deadline.
//! TLS (a later layer) wraps this type.

use crate::config::HostPort;
use crate::error::{Error, Result};
use djinit_wait::Deadline;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

pub(crate) struct Transport {
    stream: TcpStream,
    /// `host:port` (and the IP when a name was resolved), for messages.
    pub addr: String,
}

impl Transport {
    /// Resolve `hp` and connect to its addresses in order until one accepts, each attempt bounded
    /// by the deadline and by `per_attempt` (libpq's connect_timeout). An IPv4-mapped IPv6
    /// address (`::ffff:10.0.0.1`, literal or resolved) is the IPv4 host: wasi-sockets refuses
    /// mapped addresses with "invalid argument" (wasmtime 48, measured), and on every system an
    /// IPv4 socket reaches the same server.
    pub fn connect(
        hp: &HostPort,
        deadline: Deadline,
        per_attempt: Option<Duration>,
    ) -> Result<Transport> {
        let name = hp.to_string();
        let addrs: Vec<SocketAddr> = match hp.host.parse::<std::net::IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip.to_canonical(), hp.port)],
            Err(_) => (hp.host.as_str(), hp.port)
                .to_socket_addrs()
                .map_err(|io| Error::Resolve {
                    host: hp.host.clone(),
                    io,
                })?
                .map(|a| SocketAddr::new(a.ip().to_canonical(), a.port()))
                .collect(),
        };
        let mut last = None;
        for addr in addrs {
            let label = if addr.ip().to_string() == hp.host {
                name.clone()
            } else {
                format!("{name} ({addr})")
            };
            let limit = match (deadline.remaining(), per_attempt) {
                (Some(d), Some(p)) => Some(d.min(p)),
                (d, p) => d.or(p),
            };
            let result = match limit {
                Some(d) if d.is_zero() => {
                    return Err(Error::Timeout {
                        addr: label,
                        during: "connecting",
                    })
                }
                Some(d) => TcpStream::connect_timeout(&addr, d).and_then(connected),
                None => TcpStream::connect(addr),
            };
            match result {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(Transport {
                        stream,
                        addr: label,
                    });
                }
                Err(e) if is_timeout(&e) => {
                    last = Some(Error::Timeout {
                        addr: label,
                        during: "connecting",
                    })
                }
                Err(io) => last = Some(Error::Connect { addr: label, io }),
            }
        }
        Err(last.unwrap_or_else(|| Error::Resolve {
            host: hp.host.clone(),
            io: io::Error::new(io::ErrorKind::NotFound, "no addresses"),
        }))
    }

    pub fn write_all(
        &mut self,
        buf: &[u8],
        deadline: Deadline,
        during: &'static str,
    ) -> Result<()> {
        let t = self.limit(deadline, during)?;
        self.stream
            .set_write_timeout(t)
            .and_then(|_| self.stream.write_all(buf))
            .map_err(|e| self.io_error(e, during))
    }

    /// Read what is available (at least one byte) into `buf`.
    pub fn read_some(
        &mut self,
        buf: &mut [u8],
        deadline: Deadline,
        during: &'static str,
    ) -> Result<usize> {
        let t = self.limit(deadline, during)?;
        match self
            .stream
            .set_read_timeout(t)
            .and_then(|_| self.stream.read(buf))
        {
            Ok(0) => Err(self.io_error(io::ErrorKind::UnexpectedEof.into(), during)),
            Ok(n) => Ok(n),
            Err(e) => Err(self.io_error(e, during)),
        }
    }

    /// Best effort, short: used for Terminate on close.
    pub fn write_quick(&mut self, buf: &[u8]) {
        let _ = self
            .stream
            .set_write_timeout(Some(Duration::from_millis(200)));
        let _ = self.stream.write_all(buf);
    }

    fn limit(&self, deadline: Deadline, during: &'static str) -> Result<Option<Duration>> {
        match deadline.remaining() {
            Some(d) if d.is_zero() => Err(Error::Timeout {
                addr: self.addr.clone(),
                during,
            }),
            other => Ok(other),
        }
    }

    fn io_error(&self, e: io::Error, during: &'static str) -> Error {
        let e = wasi_reset(e);
        if is_timeout(&e) {
            Error::Timeout {
                addr: self.addr.clone(),
                during,
            }
        } else {
            Error::Io {
                addr: self.addr.clone(),
                during,
                io: e,
            }
        }
    }
}

/// `connect_timeout` on wasm32-wasip2 returns a socket whose connect failed while it waited
/// (wasi-libc's poll reports it writable): the failure is only the socket's pending error
/// (`SO_ERROR`), and every later read or write says `Socket not connected (os error 53)`.
/// Measured under wasmtime 48 for a refused port: `take_error()` = `ConnectionRefused`,
/// `peer_addr()` = `NotConnected`. Natively both are clean after a successful connect.
fn connected(stream: TcpStream) -> io::Result<TcpStream> {
    if let Some(e) = stream.take_error()? {
        return Err(e);
    }
    match stream.peer_addr() {
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Err(e),
        _ => Ok(stream),
    }
}

/// On wasm32-wasip2 a reset connection (the server closed it with our data unread) reads as
/// `I/O error (os error 29)`: wasi-libc maps every failed stream operation to EIO; natively the
/// same read is `ConnectionReset`. On a connected socket EIO means the connection failed, so
/// it is reported like the native reset.
fn wasi_reset(e: io::Error) -> io::Error {
    const WASI_EIO: i32 = 29;
    if cfg!(target_os = "wasi") && e.raw_os_error() == Some(WASI_EIO) {
        io::Error::from(io::ErrorKind::ConnectionReset)
    } else {
        e
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}
