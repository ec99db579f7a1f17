//! The DNS stub client: the sans-IO [`crate::dns`] code over sockets.
//!
//! - UDP first, through `std::net::UdpSocket` (wasi UDP on wasip2) in non-blocking mode, polled
//!   with short, growing sleeps until the per-try timeout (a blocking read timeout does not work
//!   on wasip2, and there are no threads). The socket is connected to the nameserver, so the OS
//!   drops datagrams from anyone else; replies must also match the query id (random) and question.
//! - A and AAAA queries for a name go out together on one socket, like glibc does.
//! - A reply with the TC bit is asked again over TCP (`std::net::TcpStream` with connect, read
//!   and write timeouts), RFC 7766 framing.
//! - Nameservers are tried in order, `attempts` rounds; NXDOMAIN is final for a name, SERVFAIL,
//!   REFUSED and no reply move on to the next nameserver.

use crate::dns::{encode_query, Answer, AnswerError, Message, RType};
use crate::error::DiscoverError;
use crate::resolv::ResolvConf;
use djinit_wait::Deadline;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

/// Longest sleep between two polls of a UDP socket.
const MAX_POLL: Duration = Duration::from_millis(5);

pub struct DnsClient {
    pub conf: ResolvConf,
    ids: RandomState,
    counter: u64,
}

/// The outcome of one question at one nameserver.
enum Outcome {
    Answer(Answer),
    NxDomain,
    ServerError(String),
}

impl DnsClient {
    pub fn new(conf: ResolvConf) -> Self {
        DnsClient {
            conf,
            ids: RandomState::new(),
            counter: 0,
        }
    }

    fn next_id(&mut self) -> u16 {
        self.counter += 1;
        self.ids.hash_one(self.counter) as u16
    }

    /// Ask every nameserver in turn for `types` of `name` (an exact name: no search list).
    /// `Ok(None)` means NXDOMAIN; answers come in the order of `types`.
    pub fn query(
        &mut self,
        name: &str,
        types: &[RType],
        deadline: Deadline,
    ) -> Result<Result<Vec<Answer>, String>, DiscoverError> {
        if self.conf.nameservers.is_empty() {
            return Err(DiscoverError::Config("no nameserver configured".into()));
        }
        let servers = self.conf.nameservers.clone();
        let mut last_failure: Option<DiscoverError> = None;
        for _round in 0..self.conf.attempts {
            for &server in &servers {
                if deadline.passed() {
                    break;
                }
                let per_try = Deadline::after(self.conf.timeout).min(deadline);
                match self.ask(server, name, types, per_try) {
                    Ok(outcomes) => {
                        let mut answers = Vec::new();
                        let mut nx = false;
                        let mut failed = None;
                        for o in outcomes {
                            match o {
                                Outcome::Answer(a) => answers.push(a),
                                Outcome::NxDomain => nx = true,
                                Outcome::ServerError(e) => failed = Some(e),
                            }
                        }
                        if let Some(detail) = failed {
                            last_failure = Some(DiscoverError::ServerFailure {
                                name: name.into(),
                                detail: format!("{detail} from {server}"),
                            });
                            continue;
                        }
                        // NXDOMAIN, unless another type of the same name has records.
                        if nx
                            && answers
                                .iter()
                                .all(|a| a.addrs.is_empty() && a.srv.is_empty())
                        {
                            return Ok(Err(server.to_string()));
                        }
                        return Ok(Ok(answers));
                    }
                    Err(e @ (DiscoverError::Denied { .. } | DiscoverError::Malformed { .. })) => {
                        return Err(e)
                    }
                    Err(e) => last_failure = Some(e),
                }
            }
        }
        Err(last_failure.unwrap_or_else(|| DiscoverError::Timeout {
            name: name.into(),
            servers: list(&servers),
            secs: 0.0,
        }))
    }

    /// One nameserver, all `types` at once over UDP, TCP for truncated replies.
    fn ask(
        &mut self,
        server: SocketAddr,
        name: &str,
        types: &[RType],
        deadline: Deadline,
    ) -> Result<Vec<Outcome>, DiscoverError> {
        let started = Instant::now();
        let mut queries: Vec<(u16, RType, Vec<u8>)> = Vec::with_capacity(types.len());
        for &t in types {
            // Distinct ids: a reply is matched to its query by id alone.
            let mut id = self.next_id();
            while queries.iter().any(|(q, _, _)| *q == id) {
                id = self.next_id();
            }
            let q = encode_query(id, name, t).map_err(|e| DiscoverError::Usage(e.to_string()))?;
            queries.push((id, t, q));
        }
        let bind: SocketAddr = if server.is_ipv4() {
            "0.0.0.0:0".parse().unwrap()
        } else {
            "[::]:0".parse().unwrap()
        };
        let what = |op: &str| format!("{op} nameserver {server} (UDP)");
        let sock = UdpSocket::bind(bind)
            .map_err(|e| DiscoverError::io(what("binding a socket for"), e))?;
        sock.connect(server)
            .map_err(|e| DiscoverError::io(what("connecting to"), e))?;
        sock.set_nonblocking(true)
            .map_err(|e| DiscoverError::io(what("configuring a socket for"), e))?;
        for (_, _, q) in &queries {
            sock.send(q)
                .map_err(|e| DiscoverError::io(what("sending to"), e))?;
        }
        let mut replies: Vec<Option<Message>> = vec![None; queries.len()];
        let mut buf = vec![0u8; 65535];
        let mut pause = Duration::from_micros(50);
        while replies.iter().any(Option::is_none) {
            match sock.recv(&mut buf) {
                Ok(n) => {
                    let datagram = &buf[..n];
                    // Only the nameserver can send here (the socket is connected to it), and a
                    // datagram carrying one of the random query ids with the response bit set is
                    // its reply: a reply that does not parse, or does not answer the question
                    // asked, is malformed (exit 76 at once, not a timeout). Anything else, such as
                    // a stray datagram without our id, is ignored and waiting goes on.
                    let Some(i) = reply_slot(datagram, &queries, &replies) else {
                        continue;
                    };
                    let (id, t, _) = &queries[i];
                    let malformed = |detail: String| DiscoverError::Malformed {
                        server,
                        name: name.into(),
                        detail,
                    };
                    let msg = Message::parse(datagram).map_err(|e| malformed(e.to_string()))?;
                    if let Err(AnswerError::Unrelated(why)) =
                        Answer::from_reply(&msg, *id, name, *t)
                    {
                        return Err(malformed(format!("the reply to query {id}: {why}")));
                    }
                    replies[i] = Some(msg);
                }
                Err(e)
                    if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted =>
                {
                    match deadline.remaining() {
                        Some(left) if left.is_zero() => {
                            return Err(DiscoverError::Timeout {
                                name: name.into(),
                                servers: server.to_string(),
                                secs: started.elapsed().as_secs_f64(),
                            })
                        }
                        left => std::thread::sleep(left.map_or(pause, |l| l.min(pause))),
                    }
                    pause = (pause * 2).min(MAX_POLL);
                }
                Err(e) => return Err(DiscoverError::io(what("receiving from"), e)),
            }
        }
        let mut out = Vec::new();
        for ((id, t, q), reply) in queries.iter().zip(replies) {
            let mut msg = reply.expect("loop ends when all replies are in");
            if msg.header.truncated {
                msg = tcp_exchange(server, name, q, *id, deadline)?;
            }
            out.push(match Answer::from_reply(&msg, *id, name, *t) {
                Ok(a) => Outcome::Answer(a),
                Err(AnswerError::NxDomain) => Outcome::NxDomain,
                Err(AnswerError::ServerError(rc)) => Outcome::ServerError(rc.name()),
                Err(e) => {
                    return Err(DiscoverError::Malformed {
                        server,
                        name: name.into(),
                        detail: e.to_string(),
                    })
                }
            });
        }
        Ok(out)
    }
}

/// Which unanswered query `datagram` replies to: its id (first two bytes) is that query's and its
/// response bit is set. Decided before parsing, so a malformed reply is still recognised.
fn reply_slot(
    datagram: &[u8],
    queries: &[(u16, RType, Vec<u8>)],
    replies: &[Option<Message>],
) -> Option<usize> {
    let [a, b, flags, ..] = *datagram else {
        return None;
    };
    if flags & 0x80 == 0 {
        return None;
    }
    let id = u16::from_be_bytes([a, b]);
    queries
        .iter()
        .zip(replies)
        .position(|((qid, _, _), r)| *qid == id && r.is_none())
}

/// One query over TCP (after a truncated UDP reply), every read and write bounded by `deadline`
/// (a timeout is [`DiscoverError::Timeout`], exit 75).
fn tcp_exchange(
    server: SocketAddr,
    name: &str,
    query: &[u8],
    id: u16,
    deadline: Deadline,
) -> Result<Message, DiscoverError> {
    let started = Instant::now();
    let what = |op: &str| format!("{op} nameserver {server} (TCP)");
    let failed = |op: &str, e: std::io::Error| {
        if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) {
            DiscoverError::Timeout {
                name: name.into(),
                servers: format!("{server} (TCP)"),
                secs: started.elapsed().as_secs_f64(),
            }
        } else {
            DiscoverError::io(what(op), e)
        }
    };
    let left = || match deadline.remaining() {
        Some(d) if d.is_zero() => Err(failed("waiting for", ErrorKind::TimedOut.into())),
        Some(d) => Ok(d),
        None => Ok(Duration::from_secs(30)),
    };
    let mut s =
        TcpStream::connect_timeout(&server, left()?).map_err(|e| failed("connecting to", e))?;
    s.set_nodelay(true).ok();
    s.set_write_timeout(Some(left()?)).ok();
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&(query.len() as u16).to_be_bytes());
    framed.extend_from_slice(query);
    s.write_all(&framed).map_err(|e| failed("sending to", e))?;
    // Each read gets only the time left: a read timeout applies per read call, so
    // `read_exact` under one timeout lets a server trickling a byte at a time run for hours.
    let mut read_full = |buf: &mut [u8]| -> Result<(), DiscoverError> {
        let mut got = 0;
        while got < buf.len() {
            s.set_read_timeout(Some(left()?)).ok();
            match s.read(&mut buf[got..]) {
                Ok(0) => return Err(failed("reading from", ErrorKind::UnexpectedEof.into())),
                Ok(n) => got += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(failed("reading from", e)),
            }
        }
        Ok(())
    };
    loop {
        let mut len = [0u8; 2];
        read_full(&mut len)?;
        let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
        read_full(&mut body)?;
        let msg = Message::parse(&body).map_err(|e| DiscoverError::Malformed {
            server,
            name: String::new(),
            detail: e.to_string(),
        })?;
        if msg.header.id == id && msg.header.response {
            return Ok(msg);
        }
    }
}

fn list(servers: &[SocketAddr]) -> String {
    servers
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
