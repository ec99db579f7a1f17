//! The session lockedmigrate works on, and how its waits are bounded.
//!
//! - Connecting: `connect_timeout` (default [`CONNECT_LIMIT`]), never more than `-t`.
//! - Every exchange (each poll of the lock, each bookkeeping statement): `-t` (default 300 s,
//!   `options::DEFAULT_TIMEOUT`), exit 75 when it passes.
//! - The lock wait: `--lock-timeout` (lock.rs polls, so each poll is an exchange bounded by
//!   `-t`).
//! - The migrations' own SQL ([`Client::unbounded`] in main.rs): no time limit, since a
//!   migration may legitimately run for an hour. Such a wait is watched instead ([`Watcher`]):
//!   every [`PROGRESS`] a second, short-lived connection reads `pg_stat_activity` for our
//!   backend pid, prints what the statement waits for (state, wait event, the sessions
//!   blocking it) and ends the run (exit 69) when the connection is dead: our backend is gone,
//!   or it is idle while we still wait for its answer (the answer was lost: a half-open
//!   connection), or the server has not been reachable for `-t`.
//!
//! Why this and not TCP keepalive: std has no keepalive setting on any target (wasi-libc's
//! `setsockopt(SO_KEEPALIVE)` on wasip2 would mean raw libc calls, and each WASI host must
//! implement the option; jco does not), keepalive's default first probe comes after 2 hours
//! unless tuned, and it proves only that the peer's TCP stack is alive: not that our backend
//! still runs the statement, nor what it waits for. The check answers both, and the same line
//! is the progress report. Its cost: one connection every 5 s while a statement runs longer
//! than 5 s (none for fast migrations), kept open between checks.
//!
//! The pid is the backend's. On a session of its own (direct, PgBouncer session mode) that is
//! the session's for the whole run. Behind transaction pooling a backend is ours only within a
//! transaction, so there the watch is re-pointed at each migration transaction's backend when
//! it starts and removed when it ends (txn.rs): it never judges a backend another client uses.
//! With the DDL guard the watch also samples the sessions blocking a waiting migration statement
//! (ddl_guard.rs), more often than it prints.

use crate::ddl_guard::{self, Seen};
use crate::lock::PROGRESS;
use anyhow::Context;
use djinit_cli::Log;
use djinit_pg::conn::{Waiting, Watch};
use djinit_pg::{Client, Config};
use djinit_wait::Deadline;
use lockedmigrate::options::Options;
use std::io;
use std::time::{Duration, Instant};

/// Connecting, when `connect_timeout` does not say.
pub const CONNECT_LIMIT: Duration = Duration::from_secs(30);

/// The longest one check of the watch may take (connecting and querying), `-t` if shorter.
const CHECK_LIMIT: Duration = Duration::from_secs(10);

/// Connect with lockedmigrate's bounds, notices logged at `-v 2`, long waits watched. Also
/// returns the session's backend pid.
pub fn open(
    cfg: &Config,
    opts: &Options,
    log: &Log,
    sampling: Option<(Seen, Duration)>,
) -> anyhow::Result<(Client, String)> {
    let limit = cfg
        .connect_timeout
        .unwrap_or(CONNECT_LIMIT)
        .min(opts.timeout);
    let mut client = Client::connect(cfg, Deadline::after(limit))
        .with_context(|| format!("connecting to {}", cfg.describe()))?;
    client.set_deadline(Deadline::never());
    client.set_timeout(Some(opts.timeout));
    client.on_notice(log.notices());
    let pid = client
        .query("SELECT pg_catalog.pg_backend_pid()::text", &[])?
        .first()
        .and_then(|r| r.get(0).map(str::to_string))
        .unwrap_or_default();
    let mut watcher = Watcher::new(cfg, log.clone(), pid.clone(), opts.timeout);
    if let Some((seen, every)) = sampling {
        watcher = watcher.sampling(seen, every);
    }
    client.set_watch(Some(Box::new(watcher)));
    Ok((client, pid))
}

/// Watches a long wait on the main session from a second connection (see the module comment).
pub struct Watcher {
    cfg: Config,
    log: Log,
    /// Our backend's pid (`pg_backend_pid()` on the main session).
    pid: String,
    /// `-t`: how long the server may stay unreachable.
    timeout: Duration,
    monitor: Option<Client>,
    /// When the server last showed it is alive (a check answered, or data on the main session).
    alive: Instant,
    /// Consecutive checks that found our backend idle while we wait for its answer.
    idle: u32,
    /// With the DDL guard: where to put the blockers sampled every `.1` (ddl_guard.rs).
    sampling: Option<(Seen, Duration)>,
    /// The wait's `waited` at the last call, and when (in `waited`) the next full check is due:
    /// with sampling the watch is called more often than it checks and prints.
    last_waited: Duration,
    next_check: Duration,
}

/// What `pg_stat_activity` says of our backend.
struct Backend {
    state: String,
    wait_event: String,
    for_secs: String,
    blocked_by: String,
}

impl Watcher {
    pub fn new(cfg: &Config, log: Log, pid: String, timeout: Duration) -> Self {
        let mut cfg = cfg.clone();
        cfg.application_name = Some(format!("djinit lockedmigrate (watching pid {pid})"));
        Watcher {
            cfg,
            log,
            pid,
            timeout,
            monitor: None,
            alive: Instant::now(),
            idle: 0,
            sampling: None,
            last_waited: Duration::ZERO,
            next_check: PROGRESS,
        }
    }

    /// Also sample the sessions blocking our backend every `every` into `seen` while a
    /// migration's statement waits (the DDL guard's blocker report, ddl_guard.rs).
    pub fn sampling(mut self, seen: Seen, every: Duration) -> Self {
        self.sampling = Some((seen, every.min(PROGRESS)));
        self
    }

    fn monitor(&mut self) -> djinit_pg::Result<&mut Client> {
        let limit = CHECK_LIMIT.min(self.timeout);
        if self.monitor.is_none() {
            let mut m = Client::connect(&self.cfg, Deadline::after(limit))?;
            m.set_deadline(Deadline::never());
            m.set_timeout(Some(limit));
            self.monitor = Some(m);
        }
        Ok(self.monitor.as_mut().expect("connected above"))
    }

    /// Our backend's row, `None` when it has none (the session is gone).
    fn check(&mut self) -> djinit_pg::Result<Option<Backend>> {
        let pid = self.pid.clone();
        let rows = self.monitor()?.query(
            "SELECT coalesce(a.state, '?'), \
                    coalesce(a.wait_event_type || ': ' || a.wait_event, ''), \
                    coalesce(extract(epoch FROM now() - a.state_change)::bigint::text, '?'), \
                    coalesce((SELECT string_agg(format('pid %s (application_name %L, %s for %ss)', \
                                  b.pid, coalesce(b.application_name, ''), coalesce(b.state, '?'), \
                                  coalesce(extract(epoch FROM now() - b.state_change)::bigint::text, '?')), \
                                  '; ' ORDER BY b.pid) \
                              FROM pg_catalog.pg_stat_activity b \
                              WHERE b.pid = ANY (pg_catalog.pg_blocking_pids(a.pid))), '') \
             FROM pg_catalog.pg_stat_activity a WHERE a.pid = $1::int",
            &[Some(&pid)],
        )?;
        Ok(rows.first().map(|r| Backend {
            state: r.get(0).unwrap_or("?").to_string(),
            wait_event: r.get(1).unwrap_or("").to_string(),
            for_secs: r.get(2).unwrap_or("?").to_string(),
            blocked_by: r.get(3).unwrap_or("").to_string(),
        }))
    }

    fn dead(&self, wait: &Waiting<'_>, why: String) -> djinit_pg::Error {
        djinit_pg::Error::Io {
            addr: wait.addr.to_string(),
            during: "waiting for query results",
            // Kind `Other`: printed as is, classified "unavailable" (69, retry may help).
            io: io::Error::other(why),
        }
    }
}

impl Watch for Watcher {
    fn every(&self) -> Duration {
        self.sampling.as_ref().map_or(PROGRESS, |s| s.1)
    }

    fn waiting(&mut self, wait: &Waiting<'_>) -> djinit_pg::Result<()> {
        if wait.quiet < PROGRESS {
            self.alive = Instant::now();
        }
        if wait.waited < self.last_waited {
            self.next_check = PROGRESS; // a new wait
        }
        self.last_waited = wait.waited;
        if let Some((seen, _)) = self.sampling.clone() {
            if wait.task.is_some() {
                let pid = self.pid.clone();
                // A failed sample is not fatal: the full check below reports the connection.
                if let Ok(rows) = self
                    .monitor()
                    .and_then(|m| m.query(ddl_guard::BLOCKERS, &[Some(&pid)]))
                {
                    let found = ddl_guard::parse(&rows);
                    if !found.is_empty() {
                        *seen.borrow_mut() = found;
                    }
                } else {
                    self.monitor = None;
                }
            }
            if wait.waited < self.next_check {
                return Ok(());
            }
            self.next_check = wait.waited + PROGRESS;
        }
        let what = wait.task.unwrap_or("a statement of lockedmigrate's own");
        let limit = wait
            .limit
            .map(|l| format!(" (limit {}s, -t)", l.as_secs()))
            .unwrap_or_default();
        let head = format!(
            "{what}: waiting {:.0}s for the server{limit}",
            wait.waited.as_secs_f64()
        );
        match self.check() {
            Ok(Some(b)) => {
                self.alive = Instant::now();
                let idle = b.state.starts_with("idle") && wait.quiet >= PROGRESS * 2;
                self.idle = if idle { self.idle + 1 } else { 0 };
                if self.idle >= 2 {
                    return Err(self.dead(
                        wait,
                        format!(
                            "our backend (pid {}) is {} for {}s while its answer has not arrived for {:.0}s: the connection is half-open (lost by the network or a proxy)",
                            self.pid,
                            b.state,
                            b.for_secs,
                            wait.quiet.as_secs_f64()
                        ),
                    ));
                }
                let mut line = format!("{head}: backend pid {} {} for {}s", self.pid, b.state, b.for_secs);
                if !b.wait_event.is_empty() {
                    line.push_str(&format!(", waiting for {}", b.wait_event));
                }
                if !b.blocked_by.is_empty() {
                    line.push_str(&format!(", blocked by {}", b.blocked_by));
                }
                self.log.info(line);
                Ok(())
            }
            Ok(None) => Err(self.dead(
                wait,
                format!(
                    "the server has no session with our backend pid {} any more (terminated, or the server restarted)",
                    self.pid
                ),
            )),
            Err(e) => {
                self.monitor = None;
                // An error from the server itself (too many connections, ...) shows it is up.
                if e.db().is_some() {
                    self.alive = Instant::now();
                }
                if self.alive.elapsed() >= self.timeout {
                    return Err(self.dead(
                        wait,
                        format!(
                            "the server has not been reachable for {:.0}s (-t): {e}",
                            self.alive.elapsed().as_secs_f64()
                        ),
                    ));
                }
                self.log.info(format!("{head}; cannot check on it: {e}"));
                Ok(())
            }
        }
    }
}
