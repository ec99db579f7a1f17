//! A scripted PostgreSQL server for hostile-server tests: each connection runs a script (a
//! closure) over a [`Conn`] that can read the client's messages and send any bytes, valid or not.
//!
//! ```no_run
//! use djinit_tests::hostile::{self, msg};
//! let fake = hostile::scripted(|c| {
//!     c.startup();
//!     c.send(&msg::ready()); // ReadyForQuery before authentication
//! });
//! ```

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// One client connection, from the server's side. Reads give up after 10 s (the script ends).
pub struct Conn {
    stream: TcpStream,
}

impl Conn {
    /// Read the startup packet, answering `N` to an SSLRequest first. Returns the packet body.
    pub fn startup(&mut self) -> Vec<u8> {
        loop {
            let Some(len) = self.read_u32() else {
                return Vec::new();
            };
            let body = self.read_exact(len.saturating_sub(4) as usize);
            if body.len() >= 4 && body[..4] == 80877103u32.to_be_bytes() {
                self.send(b"N");
                continue;
            }
            return body;
        }
    }

    /// Read one untagged packet (StartupMessage, SSLRequest): its body. `None` when the client
    /// closed.
    pub fn read_packet(&mut self) -> Option<Vec<u8>> {
        let len = self.read_u32()?;
        Some(self.read_exact(len.saturating_sub(4) as usize))
    }

    /// Read one tagged message: (tag, body). `None` when the client closed.
    pub fn read_msg(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut tag = [0u8; 1];
        self.stream.read_exact(&mut tag).ok()?;
        let len = self.read_u32()?;
        Some((tag[0], self.read_exact(len.saturating_sub(4) as usize)))
    }

    /// Read messages up to and including Sync (`S`) or a simple Query (`Q`).
    pub fn read_query(&mut self) -> bool {
        while let Some((tag, _)) = self.read_msg() {
            if tag == b'S' || tag == b'Q' {
                return true;
            }
        }
        false
    }

    pub fn send(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
        let _ = self.stream.flush();
    }

    fn read_u32(&mut self) -> Option<u32> {
        let mut b = [0u8; 4];
        self.stream.read_exact(&mut b).ok()?;
        Some(u32::from_be_bytes(b))
    }

    fn read_exact(&mut self, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n.min(1 << 20)];
        let _ = self.stream.read_exact(&mut v);
        v
    }
}

/// A running scripted server; stops on drop.
pub struct Scripted {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Scripted {
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres:<PASSWORD>@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/postgres",
            crate::urlenc::encode(crate::PASSWORD),
            self.port
        )
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Serve `script` on every connection (each in its own thread; the connection closes when the
/// script returns).
pub fn scripted(script: impl Fn(&mut Conn) + Send + Sync + 'static) -> Scripted {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let script = Arc::new(script);
    let thread = thread::spawn(move || {
        while !stop2.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let script = script.clone();
                    thread::spawn(move || {
                        let mut c = Conn { stream };
                        script(&mut c);
                    });
                }
                Err(_) => thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    Scripted {
        port,
        stop,
        thread: Some(thread),
    }
}

/// Backend messages.
pub mod msg {
    pub fn raw(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn auth(code: u32, extra: &[u8]) -> Vec<u8> {
        let mut b = code.to_be_bytes().to_vec();
        b.extend_from_slice(extra);
        raw(b'R', &b)
    }

    pub fn auth_ok() -> Vec<u8> {
        auth(0, &[])
    }
    pub fn auth_sasl(mechanisms: &[&str]) -> Vec<u8> {
        let mut b = Vec::new();
        for m in mechanisms {
            b.extend_from_slice(m.as_bytes());
            b.push(0);
        }
        b.push(0);
        auth(10, &b)
    }
    pub fn sasl_continue(data: &str) -> Vec<u8> {
        auth(11, data.as_bytes())
    }
    pub fn sasl_final(data: &str) -> Vec<u8> {
        auth(12, data.as_bytes())
    }
    pub fn ready() -> Vec<u8> {
        raw(b'Z', b"I")
    }
    pub fn error(severity: &str, code: &str, message: &str) -> Vec<u8> {
        let b = format!("S{severity}\0V{severity}\0C{code}\0M{message}\0\0");
        raw(b'E', b.as_bytes())
    }
    pub fn row_description(name: &str) -> Vec<u8> {
        let mut b = 1u16.to_be_bytes().to_vec();
        b.extend_from_slice(name.as_bytes());
        b.push(0);
        b.extend_from_slice(&[0; 18]);
        raw(b'T', &b)
    }
    pub fn data_row(value: &str) -> Vec<u8> {
        let mut b = 1u16.to_be_bytes().to_vec();
        b.extend_from_slice(&(value.len() as i32).to_be_bytes());
        b.extend_from_slice(value.as_bytes());
        raw(b'D', &b)
    }
    pub fn command_complete(tag: &str) -> Vec<u8> {
        raw(b'C', format!("{tag}\0").as_bytes())
    }

    /// The client nonce (`r=...`) of a SASLInitialResponse body.
    pub fn client_nonce(initial_response: &[u8]) -> String {
        let s = String::from_utf8_lossy(initial_response);
        s.split(',')
            .find_map(|a| a.strip_prefix("r="))
            .unwrap_or("")
            .trim_end_matches('\0')
            .to_string()
    }
}
