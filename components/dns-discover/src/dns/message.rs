//! Building queries and parsing replies.

use super::wire::{write_name, DecodeError, NameError, Reader};
use super::{RType, Rcode, CLASS_IN};
use std::net::{Ipv4Addr, Ipv6Addr};

/// The UDP payload size this client accepts (EDNS0 OPT record in the query advertises it).
pub const MAX_UDP_REPLY: usize = 1232;

/// A query for `name` (dotted, no final dot) of type `rtype`, recursion desired, with an EDNS0
/// OPT record advertising [`MAX_UDP_REPLY`] bytes (so large RRsets fit in one UDP reply; servers
/// that do not fit still set TC and the client retries over TCP).
pub fn encode_query(id: u16, name: &str, rtype: RType) -> Result<Vec<u8>, NameError> {
    let mut out = Vec::with_capacity(32 + name.len());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&0x0100u16.to_be_bytes()); // RD
    out.extend_from_slice(&1u16.to_be_bytes()); // QDCOUNT
    out.extend_from_slice(&[0, 0, 0, 0]); // ANCOUNT, NSCOUNT
    out.extend_from_slice(&1u16.to_be_bytes()); // ARCOUNT: OPT
    write_name(name, &mut out)?;
    out.extend_from_slice(&rtype.code().to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    // OPT: root name, type 41, class = UDP payload size, ttl = 0 (ext rcode, version, flags), no data.
    out.push(0);
    out.extend_from_slice(&41u16.to_be_bytes());
    out.extend_from_slice(&(MAX_UDP_REPLY as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    Ok(out)
}

/// The fixed 12-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub id: u16,
    pub response: bool,
    pub opcode: u8,
    pub authoritative: bool,
    pub truncated: bool,
    pub recursion_desired: bool,
    pub recursion_available: bool,
    pub rcode: Rcode,
    pub qdcount: u16,
    pub ancount: u16,
    pub nscount: u16,
    pub arcount: u16,
}

impl Header {
    pub fn parse(r: &mut Reader<'_>) -> Result<Header, DecodeError> {
        let id = r.u16()?;
        let flags = r.u16()?;
        Ok(Header {
            id,
            response: flags & 0x8000 != 0,
            opcode: ((flags >> 11) & 0xF) as u8,
            authoritative: flags & 0x0400 != 0,
            truncated: flags & 0x0200 != 0,
            recursion_desired: flags & 0x0100 != 0,
            recursion_available: flags & 0x0080 != 0,
            rcode: Rcode::from_code((flags & 0xF) as u8),
            qdcount: r.u16()?,
            ancount: r.u16()?,
            nscount: r.u16()?,
            arcount: r.u16()?,
        })
    }
}

/// Record data this crate uses; anything else is kept as its type only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(String),
    Srv {
        priority: u16,
        weight: u16,
        port: u16,
        target: String,
    },
    Other(RType),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Owner name, lowercase, no final dot.
    pub name: String,
    pub class: u16,
    pub ttl: u32,
    pub data: RData,
}

/// A parsed reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    /// Questions as (name, type).
    pub questions: Vec<(String, RType)>,
    pub answers: Vec<Record>,
    /// The additional section (SRV replies often carry the targets' addresses here).
    pub additional: Vec<Record>,
}

/// Upper bound on records parsed per section (a 64 KiB message cannot hold more anyway).
const MAX_RECORDS: u16 = 4096;

impl Message {
    /// Parse a whole message. A truncated (TC) UDP reply may end early: then only the header and
    /// what parsed cleanly are returned, as the caller retries over TCP anyway.
    pub fn parse(buf: &[u8]) -> Result<Message, DecodeError> {
        let mut r = Reader::new(buf);
        let header = Header::parse(&mut r)?;
        let mut msg = Message {
            header,
            questions: Vec::new(),
            answers: Vec::new(),
            additional: Vec::new(),
        };
        let body = (|| -> Result<(), DecodeError> {
            for _ in 0..header.qdcount.min(MAX_RECORDS) {
                let name = r.name()?;
                let t = RType::from_code(r.u16()?);
                let _class = r.u16()?;
                msg.questions.push((name, t));
            }
            for _ in 0..header.ancount.min(MAX_RECORDS) {
                msg.answers.push(parse_record(&mut r)?);
            }
            for _ in 0..header.nscount.min(MAX_RECORDS) {
                parse_record(&mut r)?;
            }
            for _ in 0..header.arcount.min(MAX_RECORDS) {
                msg.additional.push(parse_record(&mut r)?);
            }
            Ok(())
        })();
        match body {
            Ok(()) => Ok(msg),
            Err(_) if header.truncated => Ok(msg),
            Err(e) => Err(e),
        }
    }
}

fn parse_record(r: &mut Reader<'_>) -> Result<Record, DecodeError> {
    let name = r.name()?;
    let rtype = RType::from_code(r.u16()?);
    let class = r.u16()?;
    let ttl = r.u32()?;
    let len = r.u16()? as usize;
    let start = r.pos();
    let rdata = r.bytes(len)?;
    let bad = || DecodeError::BadRdata {
        rtype: rtype.name(),
        len,
    };
    let data = match rtype {
        RType::A => {
            let b: [u8; 4] = rdata.try_into().map_err(|_| bad())?;
            RData::A(Ipv4Addr::from(b))
        }
        RType::Aaaa => {
            let b: [u8; 16] = rdata.try_into().map_err(|_| bad())?;
            RData::Aaaa(Ipv6Addr::from(b))
        }
        RType::Cname => {
            let mut sub = Reader::new(r.buf());
            sub.bytes(start)?;
            let target = sub.name()?;
            if sub.pos() != start + len {
                return Err(bad());
            }
            RData::Cname(target)
        }
        RType::Srv => {
            if len < 7 {
                return Err(bad());
            }
            let mut sub = Reader::new(r.buf());
            sub.bytes(start)?;
            let priority = sub.u16()?;
            let weight = sub.u16()?;
            let port = sub.u16()?;
            let target = sub.name()?;
            if sub.pos() != start + len {
                return Err(bad());
            }
            RData::Srv {
                priority,
                weight,
                port,
                target,
            }
        }
        other => RData::Other(other),
    };
    Ok(Record {
        name,
        class,
        ttl,
        data,
    })
}
