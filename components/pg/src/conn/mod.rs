//! The blocking client: one session with one server, every operation under a [`Deadline`].
//!
//! Bounds: every read and write is bounded by the session's [`Deadline`] and, when set, by a
//! per-exchange timeout ([`Client::set_timeout`]: sending one statement and reading all its
//! results). [`Client::unbounded`] lifts the timeout for the reads of statements that may
//! legitimately run for hours (a migration); such waits are not blind: a [`Watch`] is called
//! every few seconds while any exchange waits, and can print progress and end a wait on a
//! dead connection (lockedmigrate's checks `pg_stat_activity` on a second connection: see
//! `components/lockedmigrate/src/watch.rs` for why that and not TCP keepalive).
//!
//! Server texts: errors and notices are cut to a few KiB per field, and password hashes and the
//! failing statement's parameter values are redacted from them ([`crate::proto::redact`]).
//! Notices are handed to [`Client::on_notice`] one by one, never collected.

mod stream;
pub(crate) mod tls;
mod transport;

use crate::config::{Config, HostPort, SslMode};
use crate::error::{DbError, Error, Result};
use crate::proto::framing::Framer;
use crate::proto::query::{self, Collector, Finished, QueryResult, Step};
use crate::proto::startup::{Binding, Progress, Startup, StartupParams};
use crate::proto::{redact, Message, ProtoError};
use bytes::BytesMut;
use djinit_wait::Deadline;
use postgres_protocol::message::frontend;
use std::time::{Duration, Instant};
use stream::{Stream, Want};
use tls::settings::TlsSettings;

pub use crate::proto::query::{QueryResult as SimpleResult, Row};

/// Watches the client's waits for the server (see the module comment).
pub trait Watch {
    /// How often [`Watch::waiting`] is called during one wait.
    fn every(&self) -> Duration;

    /// Called every [`Watch::every`] while an exchange waits for the server. An error ends the
    /// wait with that error, and the session is not used again.
    fn waiting(&mut self, wait: &Waiting<'_>) -> Result<()>;
}

/// One wait for the server, as a [`Watch`] sees it.
#[derive(Debug)]
pub struct Waiting<'a> {
    /// The server (`host:port`).
    pub addr: &'a str,
    /// What the caller is doing, as given to [`Client::unbounded`]; `None` for bounded work.
    pub task: Option<&'a str>,
    /// Since the statement was sent.
    pub waited: Duration,
    /// Since the server last sent anything (notices count).
    pub quiet: Duration,
    /// The limit of this wait; `None` when unbounded.
    pub limit: Option<Duration>,
}

/// What to do with a server notice (already redacted).
pub type NoticeHandler = Box<dyn FnMut(&DbError)>;

/// A PostgreSQL session. Dropping it sends Terminate.
pub struct Client {
    transport: Stream,
    framer: Framer,
    out: BytesMut,
    deadline: Deadline,
    /// Per exchange, on top of `deadline`.
    timeout: Option<Duration>,
    /// Inside [`Client::unbounded`]: what the caller is doing.
    task: Option<String>,
    watch: Option<Box<dyn Watch>>,
    /// When the watch is next called during the current exchange.
    tick: Option<Instant>,
    on_notice: Option<NoticeHandler>,
    last_read: Instant,
    status: u8,
    broken: bool,
    server_version: Option<String>,
    method: &'static str,
}

impl Client {
    /// Connect and authenticate, trying `cfg.hosts` in order (the first that accepts wins, as in
    /// libpq). Everything, name resolution aside, is bounded by `deadline` (and per host by
    /// `cfg.connect_timeout`).
    ///
    /// TLS follows `sslmode` as libpq does (see `conn/tls/settings.rs` for the certificate
    /// checks): `disable` never; `allow` plain first, TLS on a new connection if the server
    /// rejects the plain one; `prefer` TLS if the server accepts SSLRequest, else plain on the
    /// same connection, and plain on a new connection if TLS fails (handshake, or an error while
    /// authenticating over TLS); `require`/`verify-ca`/`verify-full` TLS or an error.
    /// `sslnegotiation=direct` starts TLS at once (ALPN `postgresql`, PostgreSQL 17+).
    /// Files (`sslrootcert`, `sslcert`, `sslkey`) are read before connecting; a problem with
    /// them is a configuration error.
    pub fn connect(cfg: &Config, deadline: Deadline) -> Result<Client> {
        let tls = TlsSettings::from_config(cfg)?;
        let mut last = None;
        for hp in &cfg.hosts {
            match Self::connect_host(cfg, hp, tls.as_ref(), deadline) {
                Ok(c) => return Ok(c),
                // Auth/config errors are the server's answer: trying another host would hide them.
                Err(e) if !e.is_transient() => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("config has at least one host"))
    }

    /// One host, with libpq's sslmode fallbacks.
    fn connect_host(
        cfg: &Config,
        hp: &HostPort,
        tls: Option<&TlsSettings>,
        deadline: Deadline,
    ) -> Result<Client> {
        let Some(tls) = tls else {
            return Self::connect_one(cfg, hp, Want::Plain, deadline);
        };
        match cfg.sslmode {
            SslMode::Disable => Self::connect_one(cfg, hp, Want::Plain, deadline),
            SslMode::Allow => match Self::connect_one(cfg, hp, Want::Plain, deadline) {
                // The server rejected the plain connection (e.g. only `hostssl` lines): try TLS.
                Err(plain @ Error::Db(_)) if !plain.is_transient() => {
                    match Self::connect_one(cfg, hp, Want::Required(tls), deadline) {
                        Err(Error::Tls { .. }) => Err(plain),
                        other => other,
                    }
                }
                other => other,
            },
            SslMode::Prefer => match Self::connect_one(cfg, hp, Want::IfOffered(tls), deadline) {
                // TLS failed, or the server rejected us over TLS: plain, new connection.
                Err(e @ (Error::Tls { .. } | Error::Db(_))) if !e.is_transient() => {
                    Self::connect_one(cfg, hp, Want::Plain, deadline)
                }
                other => other,
            },
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                Self::connect_one(cfg, hp, Want::Required(tls), deadline)
            }
        }
    }

    fn connect_one(
        cfg: &Config,
        hp: &HostPort,
        want: Want<'_>,
        deadline: Deadline,
    ) -> Result<Client> {
        let per_host = cfg.connect_timeout;
        let transport = Stream::open(hp, want, deadline, per_host)?;
        let deadline = match per_host {
            Some(t) => deadline.min(Deadline::after(t)),
            None => deadline,
        };
        let binding = Binding {
            mode: cfg.channel_binding_mode(),
            tls: transport.is_tls(),
            end_point: transport.end_point(),
        };
        let mut c = Client {
            transport,
            framer: Framer::new(),
            out: BytesMut::with_capacity(1024),
            deadline,
            timeout: None,
            task: None,
            watch: None,
            tick: None,
            on_notice: None,
            last_read: Instant::now(),
            status: b'I',
            broken: false,
            server_version: None,
            method: "trust",
        };
        let params = StartupParams {
            user: &cfg.user,
            database: &cfg.dbname,
            application_name: cfg.application_name.as_deref(),
            options: cfg.options.as_deref(),
        };
        let password = cfg.password.as_ref().map(|p| p.expose().as_bytes());
        let mut startup = Startup::new(&params, password, &mut c.out);
        startup.set_binding(binding);
        loop {
            c.flush(c.deadline, "starting up")?;
            let msg = c.read_message(c.deadline, Instant::now(), "authenticating")?;
            match startup.handle(msg, &mut c.out) {
                Ok(Progress::Continue) => {}
                Ok(Progress::Ready) => break,
                Err(e) => {
                    c.broken = true;
                    return Err(c.proto_error(e, "authenticating"));
                }
            }
        }
        c.server_version = startup.server_version.take();
        c.method = startup.method;
        // The connect deadline stays in force until `set_deadline`: a probe (wait4db,
        // checkmigrations) is one deadline for connecting and querying.
        Ok(c)
    }

    /// Bound every later read and write by `deadline`.
    pub fn set_deadline(&mut self, deadline: Deadline) {
        self.deadline = deadline;
    }

    /// Bound each later exchange (sending one statement and reading all its results) by
    /// `timeout`, on top of the deadline; `None` for no per-exchange bound.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    /// Call `watch` every [`Watch::every`] while an exchange waits for the server.
    pub fn set_watch(&mut self, watch: Option<Box<dyn Watch>>) {
        self.watch = watch;
    }

    /// Hand each server notice (NOTICE, WARNING, ... raised by a statement) to `handler`, with
    /// hashes and the statement's parameter values redacted. Without a handler notices are
    /// dropped. They are never collected: memory stays flat whatever a statement raises.
    pub fn on_notice(&mut self, handler: impl FnMut(&DbError) + 'static) {
        self.on_notice = Some(Box::new(handler));
    }

    /// Run `f` with the per-exchange timeout lifted for reading results: for statements that
    /// may legitimately run for hours (a migration). Writes stay bounded (a server that does not
    /// read a statement is stuck whatever it executes) and so does the deadline. `task` says
    /// what the wait is for, to the [`Watch`], which is what notices a dead connection here.
    pub fn unbounded<T>(&mut self, task: &str, f: impl FnOnce(&mut Client) -> T) -> T {
        let outer = self.task.replace(task.to_string());
        let r = f(self);
        self.task = outer;
        r
    }

    pub fn deadline(&self) -> Deadline {
        self.deadline
    }

    /// The server address in use (`host:port`), for messages.
    pub fn addr(&self) -> &str {
        self.transport.addr()
    }

    /// The session is encrypted with TLS.
    pub fn is_tls(&self) -> bool {
        self.transport.is_tls()
    }

    /// The server's `server_version`.
    pub fn server_version(&self) -> Option<&str> {
        self.server_version.as_deref()
    }

    /// The authentication method the server used (`trust`, `password`, `md5`, `scram-sha-256`,
    /// `scram-sha-256-plus` = SCRAM with TLS channel binding).
    pub fn auth_method(&self) -> &'static str {
        self.method
    }

    /// Transaction status after the last statement: `b'I'` idle, `b'T'` in a transaction,
    /// `b'E'` in a failed transaction.
    pub fn transaction_status(&self) -> u8 {
        self.status
    }

    /// Run one statement with bound text parameters and return its rows. The values of
    /// `params` are redacted from the server's error and notices (see the module comment).
    pub fn query(&mut self, sql: &str, params: &[Option<&str>]) -> Result<Vec<Row>> {
        let mut r = self.run(|out| query::encode_extended(sql, params, out), params)?;
        Ok(r.pop().map(|r| r.rows).unwrap_or_default())
    }

    /// Run one statement with bound text parameters and return the rows it affected.
    pub fn execute(&mut self, sql: &str, params: &[Option<&str>]) -> Result<u64> {
        let r = self.run(|out| query::encode_extended(sql, params, out), params)?;
        Ok(r.last().map(QueryResult::affected).unwrap_or(0))
    }

    /// Run fixed SQL text, possibly several statements, without parameters. Never splice values
    /// into `sql`: use [`Client::query`] for anything that carries data.
    pub fn simple_query(&mut self, sql: &str) -> Result<Vec<QueryResult>> {
        self.run(|out| query::encode_simple(sql, out), &[])
    }

    /// [`Client::simple_query`] ignoring the results.
    pub fn batch(&mut self, sql: &str) -> Result<()> {
        self.simple_query(sql).map(drop)
    }

    /// Send Terminate and close.
    pub fn close(self) {}

    fn run(
        &mut self,
        encode: impl FnOnce(&mut BytesMut) -> std::result::Result<(), ProtoError>,
        sent: &[Option<&str>],
    ) -> Result<Vec<QueryResult>> {
        if self.broken {
            return Err(Error::Protocol {
                addr: self.transport.addr().to_string(),
                during: "querying",
                detail: "the connection is unusable after an earlier failure".into(),
            });
        }
        encode(&mut self.out).map_err(|e| self.proto_error(e, "sending a query"))?;
        let started = Instant::now();
        let bounded = match self.timeout {
            Some(t) => self.deadline.min(Deadline::after(t)),
            None => self.deadline,
        };
        let reading = if self.task.is_some() {
            self.deadline
        } else {
            bounded
        };
        self.tick = self.watch.as_ref().map(|w| started + w.every());
        self.flush(bounded, "sending a query")?;
        let mut collector = Collector::new();
        loop {
            let msg = self.read_message(reading, started, "waiting for query results")?;
            match collector.handle(msg, &mut self.out) {
                Ok(Step::More) => {
                    if !self.out.is_empty() {
                        self.flush(bounded, "answering the server")?;
                    }
                }
                Ok(Step::Notice(mut notice)) => {
                    if let Some(handler) = self.on_notice.as_mut() {
                        redact::db_error(&mut notice, sent);
                        handler(&notice);
                    }
                }
                Ok(Step::Done(Finished { results, status })) => {
                    self.status = status;
                    return results.map_err(|mut e| {
                        redact::db_error(&mut e, sent);
                        Error::Db(e)
                    });
                }
                Err(e) => {
                    self.broken = true;
                    return Err(self.proto_error(e, "reading query results"));
                }
            }
        }
    }

    fn flush(&mut self, deadline: Deadline, during: &'static str) -> Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let r = self.transport.write_all(&self.out, deadline, during);
        self.out.clear();
        if r.is_err() {
            self.broken = true;
        }
        r
    }

    /// The next message, reading until `deadline`; with a [`Watch`], in slices ending at
    /// `self.tick`, calling it at each (`started`: when the statement was sent).
    fn read_message(
        &mut self,
        deadline: Deadline,
        started: Instant,
        during: &'static str,
    ) -> Result<Message> {
        let mut chunk = [0u8; 8192];
        loop {
            match self.framer.next_message() {
                Ok(Some(m)) => return Ok(m),
                Ok(None) => {}
                Err(e) => {
                    self.broken = true;
                    return Err(self.proto_error(e, during));
                }
            }
            let slice = match self.tick {
                Some(t) => deadline.min(Deadline::at(t)),
                None => deadline,
            };
            match self.transport.read_some(&mut chunk, slice, during) {
                Ok(n) => {
                    self.last_read = Instant::now();
                    self.framer.feed(&chunk[..n]);
                }
                Err(Error::Timeout { .. }) if self.tick.is_some() && !deadline.passed() => {
                    let Some(mut watch) = self.watch.take() else {
                        continue;
                    };
                    let limit = deadline
                        .instant()
                        .map(|d| d.saturating_duration_since(started));
                    let r = watch.waiting(&Waiting {
                        addr: self.transport.addr(),
                        task: self.task.as_deref(),
                        waited: started.elapsed(),
                        quiet: self.last_read.max(started).elapsed(),
                        limit,
                    });
                    self.tick = Some(Instant::now() + watch.every());
                    self.watch = Some(watch);
                    if let Err(e) = r {
                        self.broken = true;
                        return Err(e);
                    }
                }
                Err(e) => {
                    self.broken = true;
                    return Err(e);
                }
            }
        }
    }

    fn proto_error(&self, e: ProtoError, during: &'static str) -> Error {
        let addr = self.transport.addr().to_string();
        match e {
            ProtoError::Protocol(detail) => Error::Protocol {
                addr,
                during,
                detail,
            },
            ProtoError::Auth(detail) => Error::Auth { addr, detail },
            ProtoError::Server(db) => Error::Db(db),
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        if !self.broken {
            let mut b = BytesMut::with_capacity(5);
            frontend::terminate(&mut b);
            self.transport.write_quick(&b);
        }
    }
}
