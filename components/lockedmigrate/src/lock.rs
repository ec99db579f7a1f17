//! The advisory lock, on the command's own session: `pg_advisory_lock(bigint)`, the same key
//! space as the Python command's `pg_advisory_lock(1000)`. Released when the session ends (also
//! when the process is killed: the server drops the session).
//!
//! Waiting polls `pg_try_advisory_lock` every [`POLL`] with the session idle in between, never
//! sitting in a blocking `pg_advisory_lock`: a waiter inside a statement holds a virtual
//! transaction, and the holder's `CREATE INDEX CONCURRENTLY` waits for every such transaction,
//! so blocking waiters and a non-atomic migration deadlock (measured: 16 concurrent runs on the
//! fixture, PostgreSQL 15, 40P01). A progress line naming the holder comes every [`PROGRESS`].

use djinit_cli::log::round_ms;
use djinit_cli::{Failure, Log};
use djinit_pg::Client;
use djinit_wait::Deadline;
use djinit_wait::Kind;
use std::time::{Duration, Instant};

pub const PROGRESS: Duration = Duration::from_secs(5);
pub const POLL: Duration = Duration::from_millis(25);

fn try_lock(client: &mut Client, key: &str) -> anyhow::Result<bool> {
    let got = client.query("SELECT pg_try_advisory_lock($1::bigint)", &[Some(key)])?;
    Ok(got.first().and_then(|r| r.get(0)) == Some("t"))
}

/// Take the lock, waiting at most `timeout` (forever when `None`).
pub fn acquire(
    client: &mut Client,
    id: i64,
    timeout: Option<Duration>,
    log: &Log,
) -> anyhow::Result<()> {
    let key = id.to_string();
    if try_lock(client, &key)? {
        log.detail(format!("advisory lock {id} taken"));
        return Ok(());
    }
    let mut wait = Wait::new(id, timeout, log);
    loop {
        if wait.due() {
            wait.report(holder(client, id)?);
        }
        let in_time = wait.sleep();
        if try_lock(client, &key)? {
            wait.taken();
            return Ok(());
        }
        if !in_time {
            return Err(wait.timed_out(holder(client, id)?));
        }
    }
}

/// One wait for advisory lock `id`, as both lock protocols (this session's lock, and each
/// migration's transaction lock behind a pooler, txn.rs) report it: a line naming the holder at
/// once and every [`PROGRESS`], one when it is taken, the `--lock-timeout` failure naming the
/// holder. The caller polls and reads the holder (when [`Wait::due`]) its own way.
pub struct Wait<'a> {
    id: i64,
    start: Instant,
    deadline: Deadline,
    next_report: Instant,
    reported: bool,
    log: &'a Log,
}

impl<'a> Wait<'a> {
    pub fn new(id: i64, timeout: Option<Duration>, log: &'a Log) -> Self {
        let start = Instant::now();
        Wait {
            id,
            start,
            deadline: timeout.map(Deadline::after).unwrap_or_else(Deadline::never),
            next_report: start,
            reported: false,
            log,
        }
    }

    /// Whether a progress line is due (the first at once, then every [`PROGRESS`]).
    pub fn due(&self) -> bool {
        Instant::now() >= self.next_report
    }

    /// The progress line naming `who` holds the lock.
    pub fn report(&mut self, who: String) {
        let id = self.id;
        let elapsed = self.start.elapsed();
        let msg = if self.reported {
            format!(
                "still waiting for advisory lock {id} ({:.0}s), {who}",
                elapsed.as_secs_f64()
            )
        } else {
            format!("waiting for advisory lock {id}, {who}")
        };
        self.reported = true;
        self.next_report = Instant::now() + PROGRESS;
        self.log.event(
            1,
            msg,
            &[
                ("event", "lock_wait".into()),
                ("lock_id", id.into()),
                ("elapsed_s", round_ms(elapsed).into()),
                ("holder", who.into()),
            ],
        );
    }

    /// Sleep one [`POLL`]; false when the deadline passed first.
    pub fn sleep(&self) -> bool {
        self.deadline.sleep(POLL)
    }

    /// The lock was taken: a line if the wait was reported.
    pub fn taken(&self) {
        if self.reported {
            self.log.event(
                1,
                format!(
                    "advisory lock {} taken after {:.1}s",
                    self.id,
                    self.start.elapsed().as_secs_f64()
                ),
                &[
                    ("event", "lock_taken".into()),
                    ("lock_id", self.id.into()),
                    ("elapsed_s", round_ms(self.start.elapsed()).into()),
                ],
            );
        }
    }

    /// The `--lock-timeout` failure (75), naming `who` holds the lock.
    pub fn timed_out(&self, who: String) -> anyhow::Error {
        anyhow::Error::new(Failure::new(
            Kind::Timeout,
            format!(
                "advisory lock {} not acquired within {:.1}s (--lock-timeout); {who}",
                self.id,
                self.start.elapsed().as_secs_f64()
            ),
        ))
    }
}

/// Who holds lock `id` in this database, from pg_locks / pg_stat_activity. The holder's client
/// address, start time and state are visible only to its own role, members of that role and
/// `pg_read_all_stats` (other roles see NULLs): then the line says so instead of printing `?`.
pub fn holder(client: &mut Client, id: i64) -> anyhow::Result<String> {
    let key = id.to_string();
    let rows = client.query(
        "SELECT a.pid::text, coalesce(a.usename::text, ''), coalesce(a.application_name, ''), \
                (a.backend_start IS NOT NULL)::text, current_user::text, \
                coalesce(host(a.client_addr), 'local socket'), \
                coalesce(to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''), \
                coalesce(a.state, 'unknown state'), \
                coalesce(extract(epoch FROM now() - coalesce(a.state_change, a.backend_start))::bigint::text, '') \
         FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
           AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()) \
           AND l.classid::bigint = (($1::bigint >> 32) & 4294967295) \
           AND l.objid::bigint = ($1::bigint & 4294967295) \
           AND l.pid <> pg_backend_pid()",
        &[Some(&key)],
    )?;
    Ok(match rows.first() {
        None => "holder not visible (it may have just released it)".into(),
        Some(r) => {
            let col = |i| r.get(i).unwrap_or("");
            let who = format!(
                "held by pid {} (role {:?}, application_name {:?}",
                col(0),
                col(1),
                col(2)
            );
            if col(3) == "true" {
                format!(
                    "{who}, client {}, connected since {}, {} for {}s)",
                    col(5),
                    col(6),
                    col(7),
                    col(8)
                )
            } else {
                format!(
                    "{who}); its client address, start time and state are hidden from role {:?}: pg_stat_activity shows them only to the holder's role, its members and pg_read_all_stats",
                    col(4)
                )
            }
        }
    })
}

/// Release the session lock with `pg_advisory_unlock` and check its answer. `false` means this
/// session did not hold the lock any more: the connection was not the session it seemed (a
/// pooler that switched server connections, or the server restarted), so the lock may be left
/// held by a pooled server connection. Every migration was still applied under the
/// transaction's own lock (txn.rs), so the database is right; the warning says what to fix.
/// Closing the session afterwards releases the lock in any case on a real session.
pub fn release(client: &mut Client, id: i64, log: &Log) -> anyhow::Result<()> {
    let key = id.to_string();
    let rows = client.query(
        "SELECT pg_catalog.pg_advisory_unlock($1::bigint)",
        &[Some(&key)],
    )?;
    if rows.first().and_then(|r| r.get(0)) != Some("t") {
        log.info(format!(
            "warning: pg_advisory_unlock({id}) returned false: this session did not hold the lock at the end, so the connection is not one session (a transaction-pooling proxy?); the lock may stay held by a pooled server connection. Use a direct or session-pooled URL for migrations (DATABASE_URL_MIGRATE with -d migrate)"
        ));
    } else {
        log.detail(format!("advisory lock {id} released"));
    }
    Ok(())
}
