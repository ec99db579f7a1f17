//! DNS messages, sans-IO: bytes in, bytes out (RFC 1035, 2782 for SRV, 3596 for AAAA).
//!
//! - [`wire`]: a bounds-checked reader and domain-name encoding/decoding with compression
//!   pointers (decoding follows only backward pointers, at most [`wire::MAX_POINTERS`] of them, so a
//!   hostile message cannot loop or read out of bounds).
//! - [`message`]: building a query and parsing a reply (header, question, records).
//! - [`answer`]: what a reply means for one question: addresses or SRV targets after following
//!   CNAME chains, or the reason there are none (NXDOMAIN, SERVFAIL, ...).
//!
//! Malformed input is an [`DecodeError`], never a panic. Nothing here touches sockets or clocks.

pub mod answer;
pub mod message;
pub mod wire;

#[cfg(test)]
mod tests;

pub use answer::{Answer, AnswerError};
pub use message::{encode_query, Header, Message, RData, Record, MAX_UDP_REPLY};
pub use wire::{DecodeError, NameError};

/// Record types this crate asks for or understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RType {
    A,
    Aaaa,
    Cname,
    Srv,
    Other(u16),
}

impl RType {
    pub fn code(self) -> u16 {
        match self {
            RType::A => 1,
            RType::Cname => 5,
            RType::Aaaa => 28,
            RType::Srv => 33,
            RType::Other(c) => c,
        }
    }

    pub fn from_code(c: u16) -> RType {
        match c {
            1 => RType::A,
            5 => RType::Cname,
            28 => RType::Aaaa,
            33 => RType::Srv,
            c => RType::Other(c),
        }
    }

    pub fn name(self) -> String {
        match self {
            RType::A => "A".into(),
            RType::Aaaa => "AAAA".into(),
            RType::Cname => "CNAME".into(),
            RType::Srv => "SRV".into(),
            RType::Other(c) => format!("TYPE{c}"),
        }
    }
}

/// Response codes (RFC 1035 4.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rcode {
    NoError,
    FormErr,
    ServFail,
    NxDomain,
    NotImp,
    Refused,
    Other(u8),
}

impl Rcode {
    pub fn from_code(c: u8) -> Rcode {
        match c {
            0 => Rcode::NoError,
            1 => Rcode::FormErr,
            2 => Rcode::ServFail,
            3 => Rcode::NxDomain,
            4 => Rcode::NotImp,
            5 => Rcode::Refused,
            c => Rcode::Other(c),
        }
    }

    pub fn code(self) -> u8 {
        match self {
            Rcode::NoError => 0,
            Rcode::FormErr => 1,
            Rcode::ServFail => 2,
            Rcode::NxDomain => 3,
            Rcode::NotImp => 4,
            Rcode::Refused => 5,
            Rcode::Other(c) => c,
        }
    }

    pub fn name(self) -> String {
        match self {
            Rcode::NoError => "NOERROR".into(),
            Rcode::FormErr => "FORMERR".into(),
            Rcode::ServFail => "SERVFAIL".into(),
            Rcode::NxDomain => "NXDOMAIN".into(),
            Rcode::NotImp => "NOTIMP".into(),
            Rcode::Refused => "REFUSED".into(),
            Rcode::Other(c) => format!("RCODE{c}"),
        }
    }
}

/// Class IN, the only one used.
pub const CLASS_IN: u16 = 1;
