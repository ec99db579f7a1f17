//! An in-process DNS server for the dns-discover tests, demo and bench: UDP and TCP on the same
//! random port of 127.0.0.1, records changeable while a command runs, NXDOMAIN for unknown
//! names, SERVFAIL and truncated-over-UDP answers on demand.
//!
//! Written independently of the component's DNS code (its own tiny encoder/decoder), so the two
//! cannot share a bug. Replies name their records with a compression pointer to the question,
//! like real servers. On demand a name's replies are malformed ([`Malformation`]), over UDP and
//! TCP alike.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

const A: u16 = 1;
const AAAA: u16 = 28;
const SRV: u16 = 33;

#[derive(Default)]
struct Zone {
    /// name → addresses (A and AAAA served from the same list by family).
    addrs: HashMap<String, Vec<IpAddr>>,
    /// name → (priority, weight, port, target).
    srv: HashMap<String, Vec<(u16, u16, u16, String)>>,
    servfail: HashSet<String>,
    /// Names answered over UDP with only the header+question and TC set.
    truncate: HashSet<String>,
    /// Names that get no reply at all.
    silent: HashSet<String>,
    /// Names whose replies are broken on purpose.
    malformed: HashMap<String, Malformation>,
}

/// How a reply is broken (it needs at least one record: give the name an address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformation {
    /// The first record's owner name is a compression pointer to itself.
    CompressionLoop,
    /// ANCOUNT says 65535 records; the message holds what it holds.
    ImpossibleCount,
    /// The message ends two bytes into the last record's data (TC not set).
    TruncatedRecord,
}

/// A UDP socket and a TCP listener on the same random port of 127.0.0.1 (a nameserver's
/// pair): pick the UDP port, then try TCP on it.
pub fn udp_and_tcp() -> (UdpSocket, TcpListener) {
    (0..50)
        .find_map(|_| {
            let udp = UdpSocket::bind("127.0.0.1:0").ok()?;
            let tcp = TcpListener::bind(udp.local_addr().ok()?).ok()?;
            Some((udp, tcp))
        })
        .expect("a port free for UDP and TCP on 127.0.0.1")
}

/// The server; stops on drop.
pub struct DnsServer {
    addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    stop: Arc<AtomicBool>,
    udp_queries: Arc<AtomicUsize>,
    tcp_queries: Arc<AtomicUsize>,
    threads: Vec<JoinHandle<()>>,
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl DnsServer {
    pub fn start() -> DnsServer {
        let (udp, tcp) = udp_and_tcp();
        let addr = udp.local_addr().unwrap();
        udp.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        tcp.set_nonblocking(true).unwrap();
        let mut s = DnsServer {
            addr,
            zone: Arc::default(),
            stop: Arc::default(),
            udp_queries: Arc::default(),
            tcp_queries: Arc::default(),
            threads: Vec::new(),
        };
        let (zone, stop, n) = (s.zone.clone(), s.stop.clone(), s.udp_queries.clone());
        let t1 = thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !stop.load(Ordering::SeqCst) {
                let Ok((len, peer)) = udp.recv_from(&mut buf) else {
                    continue;
                };
                n.fetch_add(1, Ordering::SeqCst);
                if let Some(reply) = answer(&zone, &buf[..len], true) {
                    let _ = udp.send_to(&reply, peer);
                }
            }
        });
        let (zone, stop, n) = (s.zone.clone(), s.stop.clone(), s.tcp_queries.clone());
        let t2 = thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match tcp.accept() {
                    Ok((conn, _)) => {
                        let (zone, n) = (zone.clone(), n.clone());
                        thread::spawn(move || serve_tcp(conn, &zone, &n));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        s.threads = vec![t1, t2];
        s
    }

    /// `127.0.0.1:PORT`, for `--nameserver`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replace the A/AAAA records of `name` (an empty list: the name exists with no records).
    pub fn set_addrs(&self, name: &str, ips: &[IpAddr]) {
        self.zone
            .lock()
            .unwrap()
            .addrs
            .insert(key(name), ips.to_vec());
    }

    /// Replace the SRV records of `name`: (priority, weight, port, target).
    pub fn set_srv(&self, name: &str, records: &[(u16, u16, u16, &str)]) {
        let v = records
            .iter()
            .map(|(p, w, port, t)| (*p, *w, *port, key(t)))
            .collect();
        self.zone.lock().unwrap().srv.insert(key(name), v);
    }

    /// Forget every record of `name` (NXDOMAIN from now on).
    pub fn remove(&self, name: &str) {
        let mut z = self.zone.lock().unwrap();
        z.addrs.remove(&key(name));
        z.srv.remove(&key(name));
    }

    pub fn set_servfail(&self, name: &str, on: bool) {
        toggle(&mut self.zone.lock().unwrap().servfail, name, on);
    }

    /// Answer `name` over UDP with TC set and no records, so the client must ask over TCP.
    pub fn set_truncate(&self, name: &str, on: bool) {
        toggle(&mut self.zone.lock().unwrap().truncate, name, on);
    }

    /// Never answer `name` (a timeout for the client).
    pub fn set_silent(&self, name: &str, on: bool) {
        toggle(&mut self.zone.lock().unwrap().silent, name, on);
    }

    /// Break every reply for `name` in the way `how` says (`None`: answer normally again).
    pub fn set_malformed(&self, name: &str, how: Option<Malformation>) {
        let mut z = self.zone.lock().unwrap();
        match how {
            Some(m) => z.malformed.insert(key(name), m),
            None => z.malformed.remove(&key(name)),
        };
    }

    pub fn udp_queries(&self) -> usize {
        self.udp_queries.load(Ordering::SeqCst)
    }

    pub fn tcp_queries(&self) -> usize {
        self.tcp_queries.load(Ordering::SeqCst)
    }
}

fn toggle(set: &mut HashSet<String>, name: &str, on: bool) {
    if on {
        set.insert(key(name));
    } else {
        set.remove(&key(name));
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn serve_tcp(mut conn: TcpStream, zone: &Mutex<Zone>, n: &AtomicUsize) {
    conn.set_nonblocking(false).ok();
    conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
    loop {
        let mut len = [0u8; 2];
        if conn.read_exact(&mut len).is_err() {
            return;
        }
        let mut q = vec![0u8; u16::from_be_bytes(len) as usize];
        if conn.read_exact(&mut q).is_err() {
            return;
        }
        n.fetch_add(1, Ordering::SeqCst);
        if let Some(reply) = answer(zone, &q, false) {
            let mut out = (reply.len() as u16).to_be_bytes().to_vec();
            out.extend_from_slice(&reply);
            if conn.write_all(&out).is_err() {
                return;
            }
        }
    }
}

/// Parse a query (uncompressed question) and build the reply.
fn answer(zone: &Mutex<Zone>, q: &[u8], udp: bool) -> Option<Vec<u8>> {
    if q.len() < 12 {
        return None;
    }
    let mut pos = 12;
    let mut labels = Vec::new();
    loop {
        let l = *q.get(pos)? as usize;
        pos += 1;
        if l == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(q.get(pos..pos + l)?).to_ascii_lowercase());
        pos += l;
    }
    let qtype = u16::from_be_bytes([*q.get(pos)?, *q.get(pos + 1)?]);
    let question = &q[12..pos + 4];
    let name = labels.join(".");
    let z = zone.lock().unwrap();
    if z.silent.contains(&name) {
        return None;
    }
    // Header: same id, QR + RD + RA.
    let mut rcode = 0u16;
    let mut tc = false;
    let mut records: Vec<(u16, Vec<u8>)> = Vec::new();
    if z.servfail.contains(&name) {
        rcode = 2;
    } else if udp && z.truncate.contains(&name) {
        tc = true;
    } else if !z.addrs.contains_key(&name) && !z.srv.contains_key(&name) {
        rcode = 3;
    } else {
        for ip in z.addrs.get(&name).into_iter().flatten() {
            match (ip, qtype) {
                (IpAddr::V4(a), A) => records.push((A, a.octets().to_vec())),
                (IpAddr::V6(a), AAAA) => records.push((AAAA, a.octets().to_vec())),
                _ => {}
            }
        }
        if qtype == SRV {
            for (p, w, port, target) in z.srv.get(&name).into_iter().flatten() {
                let mut d = Vec::new();
                for v in [p, w, port] {
                    d.extend_from_slice(&v.to_be_bytes());
                }
                for label in target.split('.').filter(|l| !l.is_empty()) {
                    d.push(label.len() as u8);
                    d.extend_from_slice(label.as_bytes());
                }
                d.push(0);
                records.push((SRV, d));
            }
        }
    }
    let flags: u16 = 0x8000 | 0x0100 | 0x0080 | if tc { 0x0200 } else { 0 } | rcode;
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&q[0..2]);
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(records.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(question);
    let first_record = out.len();
    for (t, data) in records {
        out.extend_from_slice(&[0xC0, 0x0C]);
        out.extend_from_slice(&t.to_be_bytes());
        out.extend_from_slice(&1u16.to_be_bytes());
        out.extend_from_slice(&5u32.to_be_bytes());
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend_from_slice(&data);
    }
    if out.len() > first_record {
        match z.malformed.get(&name) {
            Some(Malformation::CompressionLoop) => {
                out[first_record] = 0xC0 | (first_record >> 8) as u8;
                out[first_record + 1] = first_record as u8;
            }
            Some(Malformation::ImpossibleCount) => out[6..8].copy_from_slice(&[0xFF, 0xFF]),
            Some(Malformation::TruncatedRecord) => out.truncate(out.len() - 2),
            None => {}
        }
    }
    Some(out)
}
