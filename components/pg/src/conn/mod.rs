//! The blocking client: one session with one server, every operation under a [`Deadline`].

mod stream;
pub(crate) mod tls;
mod transport;

use crate::config::{Config, HostPort, SslMode};
use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::proto::framing::Framer;
use crate::proto::query::{self, Collector, Finished, QueryResult};
use crate::proto::startup::{Binding, Progress, Startup, StartupParams};
use crate::proto::{Message, ProtoError};
use bytes::BytesMut;
use postgres_protocol::message::frontend;
use stream::{Stream, Want};
use tls::settings::TlsSettings;

pub use crate::proto::query::{QueryResult as SimpleResult, Row};

/// A PostgreSQL session. Dropping it sends Terminate.
pub struct Client {
    transport: Stream,
    framer: Framer,
    out: BytesMut,
    deadline: Deadline,
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
            c.flush("starting up")?;
            let msg = c.read_message("authenticating")?;
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
        c.deadline = Deadline::never().min(c.deadline);
        Ok(c)
    }

    /// Bound every later read and write by `deadline`.
    pub fn set_deadline(&mut self, deadline: Deadline) {
        self.deadline = deadline;
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

    /// Run one statement with bound text parameters and return its rows.
    pub fn query(&mut self, sql: &str, params: &[Option<&str>]) -> Result<Vec<Row>> {
        let mut r = self.run(|out| query::encode_extended(sql, params, out))?;
        Ok(r.pop().map(|r| r.rows).unwrap_or_default())
    }

    /// Run one statement with bound text parameters and return the rows it affected.
    pub fn execute(&mut self, sql: &str, params: &[Option<&str>]) -> Result<u64> {
        let r = self.run(|out| query::encode_extended(sql, params, out))?;
        Ok(r.last().map(QueryResult::affected).unwrap_or(0))
    }

    /// Run fixed SQL text, possibly several statements, without parameters. Never splice values
    /// into `sql`: use [`Client::query`] for anything that carries data.
    pub fn simple_query(&mut self, sql: &str) -> Result<Vec<QueryResult>> {
        self.run(|out| query::encode_simple(sql, out))
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
    ) -> Result<Vec<QueryResult>> {
        if self.broken {
            return Err(Error::Protocol {
                addr: self.transport.addr().to_string(),
                during: "querying",
                detail: "the connection is unusable after an earlier failure".into(),
            });
        }
        encode(&mut self.out).map_err(|e| self.proto_error(e, "sending a query"))?;
        self.flush("sending a query")?;
        let mut collector = Collector::new();
        loop {
            let msg = self.read_message("waiting for query results")?;
            match collector.handle(msg, &mut self.out) {
                Ok(None) => {
                    if !self.out.is_empty() {
                        self.flush("answering the server")?;
                    }
                }
                Ok(Some(Finished {
                    results, status, ..
                })) => {
                    self.status = status;
                    return results.map_err(Error::Db);
                }
                Err(e) => {
                    self.broken = true;
                    return Err(self.proto_error(e, "reading query results"));
                }
            }
        }
    }

    fn flush(&mut self, during: &'static str) -> Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let r = self.transport.write_all(&self.out, self.deadline, during);
        self.out.clear();
        if r.is_err() {
            self.broken = true;
        }
        r
    }

    fn read_message(&mut self, during: &'static str) -> Result<Message> {
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
            match self.transport.read_some(&mut chunk, self.deadline, during) {
                Ok(n) => self.framer.feed(&chunk[..n]),
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
