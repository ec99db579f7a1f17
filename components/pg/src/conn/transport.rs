//! The byte stream under a connection: TCP with every operation bounded by a deadline.
//! TLS (a later layer) wraps this type.

use crate::config::HostPort;
use crate::deadline::Deadline;
use crate::error::{Error, Result};
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
    /// by the deadline and by `per_attempt` (libpq's connect_timeout).
    pub fn connect(
        hp: &HostPort,
        deadline: Deadline,
        per_attempt: Option<Duration>,
    ) -> Result<Transport> {
        let name = hp.to_string();
        let addrs: Vec<SocketAddr> = match hp.host.parse::<std::net::IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, hp.port)],
            Err(_) => (hp.host.as_str(), hp.port)
                .to_socket_addrs()
                .map_err(|io| Error::Resolve {
                    host: hp.host.clone(),
                    io,
                })?
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
                Some(d) => TcpStream::connect_timeout(&addr, d),
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

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}
