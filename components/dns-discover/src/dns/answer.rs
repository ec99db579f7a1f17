//! What a reply means for the question that was asked.

use super::message::{Message, RData};
use super::{RType, Rcode};
use std::net::IpAddr;

/// At most this many CNAMEs are followed from the question name.
pub const MAX_CNAME_CHAIN: usize = 8;

/// The records a reply holds for one question.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Answer {
    /// The name the records belong to after following CNAMEs.
    pub canonical: String,
    /// A/AAAA answers.
    pub addrs: Vec<IpAddr>,
    /// SRV answers: (priority, weight, port, target).
    pub srv: Vec<Srv>,
    /// Addresses from the additional section, by owner name (SRV targets' glue).
    pub glue: Vec<(String, IpAddr)>,
    /// Smallest TTL among the records used (seconds).
    pub ttl: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Srv {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: String,
}

/// Why a reply holds no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// The name does not exist (authoritative denial).
    #[error("NXDOMAIN")]
    NxDomain,
    /// The server could not answer (SERVFAIL) or refused (REFUSED) or another error rcode.
    #[error("{}", .0.name())]
    ServerError(Rcode),
    /// Not a reply to this question (wrong id, not a response, different question). The caller
    /// keeps waiting for the right datagram.
    #[error("unrelated reply: {0}")]
    Unrelated(&'static str),
    #[error("CNAME chain longer than {MAX_CNAME_CHAIN} or looping")]
    CnameLoop,
}

impl Answer {
    /// Interpret `msg` as the reply to query `id` for (`qname`, `qtype`). A truncated reply must be
    /// retried over TCP by the caller before calling this (its answer section may be partial).
    pub fn from_reply(
        msg: &Message,
        id: u16,
        qname: &str,
        qtype: RType,
    ) -> Result<Answer, AnswerError> {
        let h = &msg.header;
        if !h.response {
            return Err(AnswerError::Unrelated("not a response"));
        }
        if h.id != id {
            return Err(AnswerError::Unrelated("wrong id"));
        }
        if h.opcode != 0 {
            return Err(AnswerError::Unrelated("wrong opcode"));
        }
        // A server may omit the question only in error replies; if present it must match.
        match msg.questions.as_slice() {
            [(n, t)] if n == qname && *t == qtype => {}
            [] if h.rcode != Rcode::NoError => {}
            _ => return Err(AnswerError::Unrelated("different question")),
        }
        match h.rcode {
            Rcode::NoError => {}
            Rcode::NxDomain => return Err(AnswerError::NxDomain),
            other => return Err(AnswerError::ServerError(other)),
        }
        // Follow CNAMEs from the question name.
        let mut name = qname.to_string();
        let mut hops = 0;
        let mut ttl: Option<u32> = None;
        loop {
            let next = msg.answers.iter().find_map(|r| match &r.data {
                RData::Cname(t) if r.name == name => Some((t.clone(), r.ttl)),
                _ => None,
            });
            match next {
                Some((target, t)) if qtype != RType::Cname => {
                    hops += 1;
                    if hops > MAX_CNAME_CHAIN || target == qname {
                        return Err(AnswerError::CnameLoop);
                    }
                    ttl = Some(ttl.map_or(t, |x| x.min(t)));
                    name = target;
                }
                _ => break,
            }
        }
        let mut ans = Answer {
            canonical: name.clone(),
            ..Answer::default()
        };
        for r in msg.answers.iter().filter(|r| r.name == name) {
            let used = match (&r.data, qtype) {
                (RData::A(a), RType::A) => {
                    ans.addrs.push(IpAddr::V4(*a));
                    true
                }
                (RData::Aaaa(a), RType::Aaaa) => {
                    ans.addrs.push(IpAddr::V6(*a));
                    true
                }
                (
                    RData::Srv {
                        priority,
                        weight,
                        port,
                        target,
                    },
                    RType::Srv,
                ) => {
                    ans.srv.push(Srv {
                        priority: *priority,
                        weight: *weight,
                        port: *port,
                        target: target.clone(),
                    });
                    true
                }
                _ => false,
            };
            if used {
                ttl = Some(ttl.map_or(r.ttl, |x| x.min(r.ttl)));
            }
        }
        for r in &msg.additional {
            match r.data {
                RData::A(a) => ans.glue.push((r.name.clone(), IpAddr::V4(a))),
                RData::Aaaa(a) => ans.glue.push((r.name.clone(), IpAddr::V6(a))),
                _ => {}
            }
        }
        ans.ttl = ttl;
        Ok(ans)
    }
}
