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
use std::time::{Duration, Instant};

/// How long a fake keeps a silent connection open or keeps flooding: longer than any bound a
/// test gives a command, shorter than the harness's run limit.
pub const HOLD: Duration = Duration::from_secs(50);

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

    /// Authentication succeeded (trust): AuthenticationOk, server_version, ReadyForQuery.
    pub fn login(&mut self) {
        self.startup();
        self.send(
            &[
                msg::auth_ok(),
                msg::parameter_status("server_version", "15.0"),
                msg::ready(),
            ]
            .concat(),
        );
    }

    /// Keep the connection open without answering, reading and dropping what the client sends,
    /// until it closes or [`HOLD`] passes.
    pub fn hold(&mut self) {
        stall(&mut self.stream);
    }

    /// Send `bytes` again and again until the client goes away or [`HOLD`] passes.
    pub fn flood(&mut self, bytes: &[u8]) {
        let start = Instant::now();
        let _ = self.stream.set_write_timeout(Some(Duration::from_secs(1)));
        let chunk = bytes.repeat((65536 / bytes.len().max(1)).max(1));
        while start.elapsed() < HOLD {
            if let Err(e) = self.stream.write_all(&chunk) {
                if !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) {
                    return;
                }
            }
        }
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

/// A server that accepts the login (trust) and then never answers a query.
pub fn silent_after_login() -> Scripted {
    scripted(|c| {
        c.login();
        c.hold();
    })
}

/// A server that accepts the login and answers the first query with `bytes`, sent again and
/// again (a flood).
pub fn flood_after_login(bytes: Vec<u8>) -> Scripted {
    scripted(move |c| {
        c.login();
        if c.read_query() {
            c.flood(&bytes);
        }
    })
}

/// A nameserver that answers every UDP query with an empty, truncated (TC) reply, sending the
/// client to TCP on the same port, where `tcp` runs on each connection (after the query was
/// read). Returns `IP:PORT` for `--nameserver`; stops on drop.
pub struct HostileDns {
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
}

impl HostileDns {
    pub fn addr(&self) -> std::net::SocketAddr {
        self.addr
    }
}

impl Drop for HostileDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// See [`HostileDns`]. `tcp` gets the stream after the client's query was read.
pub fn truncating_dns(tcp: impl Fn(&mut TcpStream) + Send + Sync + 'static) -> HostileDns {
    let (udp, listener) = crate::dns_server::udp_and_tcp();
    let addr = udp.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    udp.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    listener.set_nonblocking(true).unwrap();
    let stop1 = stop.clone();
    thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while !stop1.load(Ordering::SeqCst) {
            let Ok((n, peer)) = udp.recv_from(&mut buf) else {
                continue;
            };
            if n < 12 {
                continue;
            }
            // The query echoed as a reply: QR, TC and RA set, nothing answered.
            let mut reply = buf[..n].to_vec();
            reply[2] |= 0x80 | 0x02;
            reply[3] |= 0x80;
            let _ = udp.send_to(&reply, peer);
        }
    });
    let stop2 = stop.clone();
    let tcp = Arc::new(tcp);
    thread::spawn(move || {
        while !stop2.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((mut s, _)) => {
                    let tcp = tcp.clone();
                    thread::spawn(move || {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                        let mut len = [0u8; 2];
                        if s.read_exact(&mut len).is_err() {
                            return;
                        }
                        let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
                        if s.read_exact(&mut q).is_ok() {
                            tcp(&mut s);
                        }
                    });
                }
                Err(_) => thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    HostileDns { addr, stop }
}

/// Send a DNS-over-TCP length prefix of 65535 and then one byte every 100 ms, until the client
/// goes away or [`HOLD`] passes.
pub fn trickle(s: &mut TcpStream) {
    let start = Instant::now();
    if s.write_all(&[0xff, 0xff]).is_err() {
        return;
    }
    while start.elapsed() < HOLD {
        thread::sleep(Duration::from_millis(100));
        if s.write_all(&[0]).is_err() {
            return;
        }
    }
}

/// Keep a TCP connection open without a byte, until [`HOLD`] passes or the client closes it.
pub fn stall(s: &mut TcpStream) {
    let start = Instant::now();
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 512];
    while start.elapsed() < HOLD {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// A TCP proxy to `127.0.0.1:upstream` that, on a connection whose client sent `trigger`,
/// stops passing the server's bytes to the client without closing anything: the connection is
/// half-open as after a NAT or proxy lost its state. Other connections pass untouched.
pub struct Proxy {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// See [`Proxy`].
pub fn swallowing_proxy(upstream: u16, trigger: &'static [u8]) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    thread::spawn(move || {
        while !stop2.load(Ordering::SeqCst) {
            let Ok((client, _)) = listener.accept() else {
                thread::sleep(Duration::from_millis(5));
                continue;
            };
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                continue;
            };
            let _ = client.set_nonblocking(false);
            let swallow = Arc::new(AtomicBool::new(false));
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut s_in, mut c_out) = (server, client);
            let (sw1, sw2) = (swallow.clone(), swallow);
            thread::spawn(move || {
                let mut buf = [0u8; 16384];
                while let Ok(n) = c_in.read(&mut buf) {
                    if n == 0 || s_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                    if buf[..n].windows(trigger.len()).any(|w| w == trigger) {
                        sw1.store(true, Ordering::SeqCst);
                    }
                }
            });
            thread::spawn(move || {
                let mut buf = [0u8; 16384];
                while let Ok(n) = s_in.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if !sw2.load(Ordering::SeqCst) && c_out.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                if sw2.load(Ordering::SeqCst) {
                    // Half-open: keep the client's side open, silent, for a while.
                    thread::sleep(HOLD);
                }
            });
        }
    });
    Proxy { port, stop }
}

/// A migration bundle made by hand (`manifest.json` with valid checksums, as the exporter
/// writes it): app `hostile`, one atomic migration per `(name, sql)`, each depending on the one
/// before. For what no Django project would export: migration names with terminal escapes, a
/// statement raising a flood of notices. Django's recorder table; PostgreSQL 14 as the minimum.
pub fn bundle(migrations: &[(&str, &str)]) -> tempfile::TempDir {
    use djinit_bundle::manifest::checksum_of as checksum;
    use serde_json::json;
    let mut entries = Vec::new();
    let mut previous: Option<&str> = None;
    for (name, sql) in migrations {
        let mut m = json!({
            "app": "hostile", "name": name, "atomic": true, "initial": previous.is_none(),
            "dependencies": previous.map(|p| vec![["hostile", p]]).unwrap_or_default(),
            "replaces": [], "operations": [format!("Raw SQL of {name}")], "soft_applied": null,
            "forward": [{"sql": [sql]}], "backward": null,
        });
        let c = checksum(&m);
        m["checksum"] = c.into();
        entries.push(m);
        previous = Some(name);
    }
    let mut v = json!({
        "format": "djinit-migrations", "version": 1, "django": "5.2", "database": "default",
        "pg_version": 140000,
        "recorder": {"table": "django_migrations", "sql": "CREATE TABLE \"django_migrations\" (\"id\" bigint NOT NULL PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY, \"app\" varchar(255) NOT NULL, \"name\" varchar(255) NOT NULL, \"applied\" timestamp with time zone NOT NULL);"},
        "migrations": entries,
        "post_migrate": {"rows": [], "not_exported": []},
    });
    let c = checksum(&v);
    v["checksum"] = c.into();
    let dir = tempfile::Builder::new()
        .prefix("djinit-hostile-bundle-")
        .tempdir()
        .unwrap();
    std::fs::write(
        dir.path().join("manifest.json"),
        serde_json::to_vec_pretty(&v).unwrap(),
    )
    .unwrap();
    dir
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
    pub fn parameter_status(name: &str, value: &str) -> Vec<u8> {
        raw(b'S', format!("{name}\0{value}\0").as_bytes())
    }
    pub fn notice(message: &str) -> Vec<u8> {
        let b = format!("SNOTICE\0VNOTICE\0C00000\0M{message}\0\0");
        raw(b'N', b.as_bytes())
    }
    /// An ErrorResponse whose message is `message` (any bytes).
    pub fn error_bytes(code: &str, message: &[u8]) -> Vec<u8> {
        let mut b = format!("SERROR\0VERROR\0C{code}\0M").into_bytes();
        b.extend_from_slice(message);
        b.extend_from_slice(b"\0\0");
        raw(b'E', &b)
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
