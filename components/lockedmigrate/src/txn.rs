//! Opening the transaction a migration (or the bookkeeping around it) runs in, under the
//! advisory lock, in both protocols ([`Protocol`], chosen by `pooling.rs`):
//!
//! - [`Protocol::Session`] (direct, or PgBouncer session pooling): the run holds the session lock
//!   `pg_advisory_lock(key)` from before planning until the end (lock.rs). Each transaction also
//!   takes `pg_try_advisory_xact_lock(key)`, which the session already holding the lock always
//!   gets, and checks that it runs on the lock holder's backend: if the pid differs, the
//!   connection is pooled per transaction after all, and the run stops before applying anything
//!   more (exit 69), instead of trusting a lock it does not hold.
//! - [`Protocol::Transaction`] (transaction pooling): no session lock. Each transaction takes
//!   `pg_try_advisory_xact_lock(key)` (same key, so it also excludes runs holding the session
//!   lock on a direct connection, and the Python command), polling every [`lock::POLL`] with
//!   *no* transaction open in between: a waiter inside a transaction would deadlock with a
//!   holder's `CREATE INDEX CONCURRENTLY` (see lock.rs). The lock ends with the transaction, on
//!   whatever server connection ran it: nothing can be left held. Callers re-check
//!   `django_migrations` inside the transaction ([`still_pending`]), so a migration another run
//!   applied meanwhile is skipped, never applied or recorded twice.
//!
//! `--lock-timeout` bounds each wait for the lock; progress lines name the holder (lock.rs).

use crate::connection::Watcher;
use crate::ddl_guard::Seen;
use crate::lock;
use djinit_bundle::Migration;
use djinit_cli::{Failure, Log};
use djinit_pg::{Client, Config};
use djinit_wait::Kind;
use lockedmigrate::options::GuardOptions;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    /// The session holds the lock; `pid` is its backend.
    Session { pid: String },
    /// Every transaction takes the lock itself.
    Transaction,
}

/// Everything a transaction of the run needs to open itself under the lock.
pub struct Txn {
    pub protocol: Protocol,
    pub key: i64,
    pub lock_timeout: Option<Duration>,
    /// To re-point the half-open watch at each transaction's backend (transaction pooling).
    pub cfg: Config,
    pub timeout: Duration,
    pub log: Log,
    /// The zero-downtime guards (ddl_guard.rs), and where the watch puts the blockers it sees.
    pub guard: GuardOptions,
    pub sampling: Option<(Seen, Duration)>,
}

impl Txn {
    /// `BEGIN` and take the lock in that transaction (see the module comment). Returns the
    /// backend pid the transaction runs on.
    pub fn begin(&self, client: &mut Client) -> anyhow::Result<String> {
        let key = self.key.to_string();
        let mut wait = lock::Wait::new(self.key, self.lock_timeout, &self.log);
        loop {
            client.batch("BEGIN")?;
            let rows = client.query(
                "SELECT pg_catalog.pg_try_advisory_xact_lock($1::bigint)::text, pg_catalog.pg_backend_pid()::text",
                &[Some(&key)],
            )?;
            let got = rows.first().and_then(|r| r.get(0)) == Some("true");
            let pid = rows
                .first()
                .and_then(|r| r.get(1))
                .unwrap_or_default()
                .to_string();
            match &self.protocol {
                Protocol::Session { pid: ours } => {
                    if !got || &pid != ours {
                        let _ = client.batch("ROLLBACK");
                        return Err(anyhow::Error::new(Failure::new(
                            Kind::Unavailable,
                            format!(
                                "the connection is no longer our session (a transaction ran on backend pid {pid}, the advisory lock {} is held by pid {ours}): it is pooled per transaction although the probe at start did not show it; nothing more was applied. Run again; if this repeats, use a direct or session-pooled URL (DATABASE_URL_MIGRATE with -d migrate)",
                                self.key
                            ),
                        )));
                    }
                    return Ok(pid);
                }
                Protocol::Transaction if got => {
                    wait.taken();
                    // The half-open watch follows this transaction's backend.
                    let mut watcher =
                        Watcher::new(&self.cfg, self.log.clone(), pid.clone(), self.timeout);
                    if let Some((seen, every)) = &self.sampling {
                        watcher = watcher.sampling(seen.clone(), *every);
                    }
                    client.set_watch(Some(Box::new(watcher)));
                    return Ok(pid);
                }
                Protocol::Transaction => {
                    // Who holds it, read while our transaction is still open (same server
                    // connection, so `pg_backend_pid()` in lock::holder excludes us correctly).
                    let who = if wait.due() {
                        Some(lock::holder(client, self.key)?)
                    } else {
                        None
                    };
                    client.batch("ROLLBACK")?;
                    if let Some(who) = who {
                        wait.report(who);
                    }
                    if !wait.sleep() {
                        return Err(wait.timed_out(lock::holder(client, self.key)?));
                    }
                }
            }
        }
    }

    /// After a transaction of [`Txn::begin`] ended: behind transaction pooling the next
    /// statement may run on any backend, so the watch stops following this one.
    pub fn ended(&self, client: &mut Client) {
        if self.protocol == Protocol::Transaction {
            client.set_watch(None);
        }
    }

    /// Whether `m` still needs applying (or unapplying, `backwards`), read inside the
    /// transaction that holds the lock: another run may have done it since we planned.
    pub fn still_pending(
        &self,
        client: &mut Client,
        m: &Migration,
        backwards: bool,
    ) -> anyhow::Result<bool> {
        if matches!(self.protocol, Protocol::Session { .. }) {
            // The session lock has been ours since before planning: the plan is current.
            return Ok(true);
        }
        let (app, name) = m.key();
        let recorded = !client
            .query(
                "SELECT 1 FROM django_migrations WHERE app = $1 AND name = $2",
                &[Some(app), Some(name)],
            )?
            .is_empty();
        Ok(recorded == backwards)
    }
}
