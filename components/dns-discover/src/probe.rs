//! `--probe`: an endpoint counts only if it accepts TCP and answers memcached's `version`
//! command (`VERSION x.y.z\r\n`) before the deadline.

use djinit_wait::Deadline;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The version string the server reported.
pub fn memcached_version(ep: SocketAddr, deadline: Deadline) -> io::Result<String> {
    let left = || match deadline.remaining() {
        Some(d) if d.is_zero() => Err(io::Error::new(ErrorKind::TimedOut, "probe timed out")),
        Some(d) => Ok(d),
        None => Ok(Duration::from_secs(30)),
    };
    let mut s = TcpStream::connect_timeout(&ep, left()?)?;
    s.set_nodelay(true).ok();
    s.set_write_timeout(Some(left()?))?;
    s.write_all(b"version\r\n")?;
    let mut buf = Vec::with_capacity(64);
    let mut chunk = [0u8; 128];
    while !buf.ends_with(b"\r\n") {
        s.set_read_timeout(Some(left()?))?;
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                "closed without answering",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > 1024 {
            break;
        }
    }
    parse_version(&buf)
}

/// `VERSION 1.6.18\r\n` → `1.6.18`.
pub fn parse_version(reply: &[u8]) -> io::Result<String> {
    let line = reply.split(|&b| b == b'\r').next().unwrap_or(&[]);
    match line.strip_prefix(b"VERSION ") {
        Some(v) if !v.is_empty() && v.len() < 100 => Ok(String::from_utf8_lossy(v).into_owned()),
        _ => Err(io::Error::new(
            ErrorKind::InvalidData,
            "not a memcached server (no VERSION reply)",
        )),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_reply() {
        assert_eq!(
            super::parse_version(b"VERSION 1.6.18\r\n").unwrap(),
            "1.6.18"
        );
        assert!(super::parse_version(b"ERROR\r\n").is_err());
        assert!(super::parse_version(b"HTTP/1.1 400 Bad Request\r\n").is_err());
        assert!(super::parse_version(b"").is_err());
    }
}
