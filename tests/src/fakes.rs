//! Fake servers on 127.0.0.1 that misbehave on purpose, and free ports with nothing behind them.
//!
//! Each fake runs one accept thread; dropping the [`Fake`] stops it and closes every connection.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// A port on 127.0.0.1 with nothing listening (it was bound and released just now).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// A running fake server. Stops (and closes its connections) on drop.
pub struct Fake {
    port: u16,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl Fake {
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1`.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    /// How many connections it has accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// `postgres://postgres:<PASSWORD>@127.0.0.1:<port>/postgres`, what a test points a command at.
    pub fn url(&self) -> String {
        format!(
            "postgres://postgres:{}@127.0.0.1:{}/postgres",
            crate::urlenc::encode(crate::PASSWORD),
            self.port
        )
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Accepts TCP connections and never sends a byte (nor closes them until dropped): a server that
/// hangs after the handshake, like a stuck proxy or a SYN-accepting load balancer.
pub fn hung_listener() -> Fake {
    serve(|_stream| {})
}

/// Accepts TCP connections, sends `bytes` at once (e.g. `b"HTTP/1.1 400 Bad Request\r\n\r\n"`),
/// then keeps reading (and discarding) until the client closes: the client sees the garbage, not
/// a reset.
pub fn garbage_server(bytes: impl Into<Vec<u8>>) -> Fake {
    let bytes: Vec<u8> = bytes.into();
    serve(move |stream| {
        let _ = stream.write_all(&bytes);
        let _ = stream.flush();
    })
}

/// The accept loop: `on_accept` runs once per connection; the connection then stays open (drained
/// in the background) until the client closes it or the fake is dropped.
fn serve(on_accept: impl Fn(&mut TcpStream) + Send + 'static) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicUsize::new(0));
    let (stop2, accepted2) = (stop.clone(), accepted.clone());
    let thread = thread::spawn(move || {
        let mut open: Vec<TcpStream> = Vec::new();
        while !stop2.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    accepted2.fetch_add(1, Ordering::SeqCst);
                    let _ = stream.set_nonblocking(false);
                    on_accept(&mut stream);
                    let _ = stream.set_nonblocking(true);
                    open.push(stream);
                }
                Err(_) => thread::sleep(Duration::from_millis(5)),
            }
            // Drain what clients send; forget connections they closed.
            let mut buf = [0u8; 4096];
            open.retain_mut(|s| match s.read(&mut buf) {
                Ok(0) => false,
                Ok(_) => true,
                Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
            });
        }
        // Dropping `open` closes every connection.
    });
    Fake {
        port,
        stop,
        accepted,
        thread: Some(thread),
    }
}
