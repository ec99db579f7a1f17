//! Real memcached servers (the Debian `memcached` binary) as child processes, killed on drop.

use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Memcached {
    addr: SocketAddr,
    child: Option<Child>,
}

/// A port that is free on every one of `ips` (TCP), so servers on different loopback addresses
/// can share it (A records carry no port).
pub fn common_free_port(ips: &[IpAddr]) -> u16 {
    for _ in 0..100 {
        let port = TcpListener::bind((ips[0], 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if ips.iter().all(|ip| TcpListener::bind((*ip, port)).is_ok()) {
            return port;
        }
    }
    panic!("no port free on all of {ips:?}");
}

impl Memcached {
    /// Start memcached on `ip:port` (TCP only) and wait until it answers.
    pub fn start(ip: IpAddr, port: u16) -> Memcached {
        let bin = ["/usr/bin/memcached", "/usr/local/bin/memcached"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("memcached is not installed (apt-get install -y memcached)");
        let mut cmd = Command::new(bin);
        cmd.args([
            "-l",
            &ip.to_string(),
            "-p",
            &port.to_string(),
            "-U",
            "0",
            "-m",
            "16",
            "-t",
            "1",
        ]);
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            cmd.args(["-u", "nobody"]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start memcached");
        let m = Memcached {
            addr: SocketAddr::new(ip, port),
            child: Some(child),
        };
        let start = Instant::now();
        while TcpStream::connect_timeout(&m.addr, Duration::from_millis(200)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "memcached on {} did not start",
                m.addr
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        m
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The process id (0 once killed).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// Kill it now (the port stops answering).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        self.kill();
    }
}
