//! Unit tests of the sans-IO DNS code: hand-built replies, no sockets.

use super::wire::{check_name, read_name};
use super::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Builds replies the way servers do: the question at offset 12, answers' owner names as
/// compression pointers to it (0xC00C).
struct Reply {
    buf: Vec<u8>,
    an: u16,
    ar: u16,
}

impl Reply {
    fn new(id: u16, flags: u16, qname: &str, qtype: RType) -> Reply {
        let mut buf = Vec::new();
        buf.extend_from_slice(&id.to_be_bytes());
        buf.extend_from_slice(&flags.to_be_bytes());
        buf.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        wire::write_name(qname, &mut buf).unwrap();
        buf.extend_from_slice(&qtype.code().to_be_bytes());
        buf.extend_from_slice(&1u16.to_be_bytes());
        Reply { buf, an: 0, ar: 0 }
    }

    fn rr(&mut self, owner: Option<&str>, t: RType, ttl: u32, data: &[u8], additional: bool) {
        match owner {
            None => self.buf.extend_from_slice(&[0xC0, 0x0C]),
            Some(n) => wire::write_name(n, &mut self.buf).unwrap(),
        }
        self.buf.extend_from_slice(&t.code().to_be_bytes());
        self.buf.extend_from_slice(&1u16.to_be_bytes());
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        self.buf
            .extend_from_slice(&(data.len() as u16).to_be_bytes());
        self.buf.extend_from_slice(data);
        if additional {
            self.ar += 1;
        } else {
            self.an += 1;
        }
    }

    fn done(mut self) -> Vec<u8> {
        self.buf[6..8].copy_from_slice(&self.an.to_be_bytes());
        self.buf[10..12].copy_from_slice(&self.ar.to_be_bytes());
        self.buf
    }
}

const OK: u16 = 0x8180; // QR RD RA, NOERROR

fn name_bytes(n: &str) -> Vec<u8> {
    let mut v = Vec::new();
    wire::write_name(n, &mut v).unwrap();
    v
}

#[test]
fn query_encoding() {
    let q = encode_query(0xBEEF, "memcached.default.svc", RType::A).unwrap();
    assert_eq!(&q[..12], &[0xBE, 0xEF, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1]);
    let mut r = wire::Reader::new(&q);
    r.bytes(12).unwrap();
    assert_eq!(r.name().unwrap(), "memcached.default.svc");
    assert_eq!(r.u16().unwrap(), 1);
    assert_eq!(r.u16().unwrap(), 1);
    // EDNS0 OPT advertising the payload size.
    assert_eq!(r.u8().unwrap(), 0);
    assert_eq!(r.u16().unwrap(), 41);
    assert_eq!(r.u16().unwrap() as usize, MAX_UDP_REPLY);
    assert!(encode_query(1, "a..b", RType::A).is_err());
    assert!(encode_query(1, &"x".repeat(64), RType::A).is_err());
    assert!(encode_query(1, "bad name", RType::A).is_err());
}

#[test]
fn names_checked_and_lowercased() {
    assert_eq!(
        check_name("Mem.Example.").unwrap(),
        ("mem.example".into(), true)
    );
    assert_eq!(
        check_name("_memcache._tcp.mc").unwrap(),
        ("_memcache._tcp.mc".into(), false)
    );
    assert!(check_name("").is_err());
    assert!(check_name(".").is_err());
    assert!(check_name(&"a.".repeat(130)).is_err());
}

#[test]
fn a_records_with_compression() {
    let mut m = Reply::new(7, OK, "mc.svc", RType::A);
    m.rr(None, RType::A, 30, &[10, 0, 0, 1], false);
    m.rr(None, RType::A, 5, &[10, 0, 0, 2], false);
    let msg = Message::parse(&m.done()).unwrap();
    let a = Answer::from_reply(&msg, 7, "mc.svc", RType::A).unwrap();
    assert_eq!(
        a.addrs,
        vec![
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))
        ]
    );
    assert_eq!(a.ttl, Some(5));
}

#[test]
fn aaaa_records() {
    let mut m = Reply::new(9, OK, "mc.svc", RType::Aaaa);
    m.rr(None, RType::Aaaa, 30, &Ipv6Addr::LOCALHOST.octets(), false);
    let msg = Message::parse(&m.done()).unwrap();
    let a = Answer::from_reply(&msg, 9, "mc.svc", RType::Aaaa).unwrap();
    assert_eq!(a.addrs, vec![IpAddr::V6(Ipv6Addr::LOCALHOST)]);
    // An AAAA record of the wrong length is malformed.
    let mut m = Reply::new(9, OK, "mc.svc", RType::Aaaa);
    m.rr(None, RType::Aaaa, 30, &[1, 2, 3, 4], false);
    assert!(matches!(
        Message::parse(&m.done()),
        Err(DecodeError::BadRdata { .. })
    ));
}

#[test]
fn cname_chain_is_followed() {
    let mut m = Reply::new(1, OK, "cache.example", RType::A);
    // cache.example CNAME mc.svc ; mc.svc A 10.1.1.1 ; an unrelated A record is ignored.
    let mut target = Vec::new();
    target.extend_from_slice(&name_bytes("mc.svc"));
    m.rr(None, RType::Cname, 60, &target, false);
    m.rr(Some("mc.svc"), RType::A, 20, &[10, 1, 1, 1], false);
    m.rr(Some("other.svc"), RType::A, 20, &[10, 9, 9, 9], false);
    let msg = Message::parse(&m.done()).unwrap();
    let a = Answer::from_reply(&msg, 1, "cache.example", RType::A).unwrap();
    assert_eq!(a.canonical, "mc.svc");
    assert_eq!(a.addrs, vec![IpAddr::V4(Ipv4Addr::new(10, 1, 1, 1))]);
    // A loop is an error, not a hang.
    let mut m = Reply::new(1, OK, "a.x", RType::A);
    m.rr(None, RType::Cname, 60, &name_bytes("b.x"), false);
    m.rr(Some("b.x"), RType::Cname, 60, &name_bytes("a.x"), false);
    let msg = Message::parse(&m.done()).unwrap();
    assert_eq!(
        Answer::from_reply(&msg, 1, "a.x", RType::A),
        Err(AnswerError::CnameLoop)
    );
}

#[test]
fn srv_records_and_glue() {
    let q = "_memcache._tcp.mc.svc";
    let mut m = Reply::new(3, OK, q, RType::Srv);
    let mut d = vec![0, 10, 0, 50, 0x2B, 0xCB]; // prio 10, weight 50, port 11211
                                                // Target compressed: "mc-0" + pointer to "mc.svc" inside the question (offset 12 + 15).
    d.extend_from_slice(&[4, b'm', b'c', b'-', b'0', 0xC0, 12 + 15]);
    m.rr(None, RType::Srv, 30, &d, false);
    m.rr(Some("mc-0.mc.svc"), RType::A, 30, &[10, 2, 0, 1], true);
    let msg = Message::parse(&m.done()).unwrap();
    let a = Answer::from_reply(&msg, 3, q, RType::Srv).unwrap();
    assert_eq!(
        a.srv,
        vec![answer::Srv {
            priority: 10,
            weight: 50,
            port: 11211,
            target: "mc-0.mc.svc".into()
        }]
    );
    assert_eq!(
        a.glue,
        vec![("mc-0.mc.svc".into(), IpAddr::V4(Ipv4Addr::new(10, 2, 0, 1)))]
    );
}

#[test]
fn rcodes() {
    let nx = Reply::new(5, 0x8183, "gone.svc", RType::A).done();
    let msg = Message::parse(&nx).unwrap();
    assert_eq!(
        Answer::from_reply(&msg, 5, "gone.svc", RType::A),
        Err(AnswerError::NxDomain)
    );
    let sf = Reply::new(5, 0x8182, "x.svc", RType::A).done();
    let msg = Message::parse(&sf).unwrap();
    assert_eq!(
        Answer::from_reply(&msg, 5, "x.svc", RType::A),
        Err(AnswerError::ServerError(Rcode::ServFail))
    );
    assert_eq!(
        AnswerError::ServerError(Rcode::ServFail).to_string(),
        "SERVFAIL"
    );
    // NOERROR without records: the name exists but has no such records (NODATA).
    let nodata = Reply::new(5, OK, "x.svc", RType::Aaaa).done();
    let a = Answer::from_reply(&Message::parse(&nodata).unwrap(), 5, "x.svc", RType::Aaaa).unwrap();
    assert!(a.addrs.is_empty());
}

#[test]
fn unrelated_replies_are_rejected() {
    let mut m = Reply::new(5, OK, "x.svc", RType::A);
    m.rr(None, RType::A, 1, &[1, 2, 3, 4], false);
    let msg = Message::parse(&m.done()).unwrap();
    assert!(matches!(
        Answer::from_reply(&msg, 6, "x.svc", RType::A),
        Err(AnswerError::Unrelated(_))
    ));
    assert!(matches!(
        Answer::from_reply(&msg, 5, "y.svc", RType::A),
        Err(AnswerError::Unrelated(_))
    ));
    assert!(matches!(
        Answer::from_reply(&msg, 5, "x.svc", RType::Aaaa),
        Err(AnswerError::Unrelated(_))
    ));
    let query = encode_query(5, "x.svc", RType::A).unwrap();
    let msg = Message::parse(&query).unwrap();
    assert!(matches!(
        Answer::from_reply(&msg, 5, "x.svc", RType::A),
        Err(AnswerError::Unrelated(_))
    ));
}

#[test]
fn truncation_bit() {
    // TC set and the answer cut in the middle of a record: header and question still parse.
    let mut m = Reply::new(2, OK | 0x0200, "big.svc", RType::A);
    m.rr(None, RType::A, 1, &[1, 2, 3, 4], false);
    m.rr(None, RType::A, 1, &[1, 2, 3, 5], false);
    let mut buf = m.done();
    buf.truncate(buf.len() - 7);
    let msg = Message::parse(&buf).unwrap();
    assert!(msg.header.truncated);
    assert_eq!(msg.questions, vec![("big.svc".into(), RType::A)]);
    assert_eq!(msg.answers.len(), 1);
    // The same cut without TC is malformed.
    buf[2] &= !0x02;
    assert!(Message::parse(&buf).is_err());
}

#[test]
fn compression_pointer_abuse() {
    // Pointer to itself.
    let mut buf = vec![0u8; 12];
    buf.extend_from_slice(&[0xC0, 12]);
    assert!(read_name(&buf, 12).is_err());
    // Forward pointer.
    let mut buf = vec![0u8; 12];
    buf.extend_from_slice(&[0xC0, 14, 1, b'a', 0]);
    assert!(read_name(&buf, 12).is_err());
    // Two labels pointing at each other (a -> b -> a).
    let mut buf = vec![0u8; 12];
    buf.extend_from_slice(&[1, b'a', 0xC0, 16, 1, b'b', 0xC0, 12]);
    assert!(read_name(&buf, 16).is_err());
    // A valid backward pointer chain.
    let mut buf = vec![0u8; 12];
    buf.extend_from_slice(&[3, b'c', b'o', b'm', 0, 3, b'F', b'o', b'o', 0xC0, 12]);
    assert_eq!(read_name(&buf, 17).unwrap(), ("foo.com".into(), 23));
    // Reserved label types.
    let mut buf = vec![0u8; 12];
    buf.extend_from_slice(&[0x40, 0]);
    assert!(read_name(&buf, 12).is_err());
}

#[test]
fn malformed_input_never_panics() {
    let mut m = Reply::new(77, OK, "_m._tcp.mc.svc", RType::Srv);
    let mut d = vec![0, 1, 0, 1, 0x2B, 0xCB];
    d.extend_from_slice(&[0xC0, 12]);
    m.rr(None, RType::Srv, 30, &d, false);
    m.rr(None, RType::Cname, 30, &[0xC0, 12], false);
    m.rr(Some("a.mc.svc"), RType::Aaaa, 30, &[0; 16], true);
    let good = m.done();
    Message::parse(&good).unwrap();
    // Every prefix, every single-byte corruption, and pseudo-random garbage.
    for n in 0..good.len() {
        let _ = Message::parse(&good[..n])
            .map(|m| Answer::from_reply(&m, 77, "_m._tcp.mc.svc", RType::Srv));
    }
    for i in 0..good.len() {
        for v in [0x00, 0x01, 0x3F, 0x40, 0x80, 0xC0, 0xFF] {
            let mut b = good.clone();
            b[i] = v;
            let _ = Message::parse(&b)
                .map(|m| Answer::from_reply(&m, 77, "_m._tcp.mc.svc", RType::Srv));
        }
    }
    let mut x: u64 = 0x9E3779B97F4A7C15;
    for len in 0..600 {
        let mut b = Vec::with_capacity(len);
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b.push(x as u8);
        }
        if len > 12 {
            b[2] |= 0x80; // a response, to reach the answer logic more often
        }
        let _ = Message::parse(&b).map(|m| Answer::from_reply(&m, 77, "a", RType::A));
    }
}
