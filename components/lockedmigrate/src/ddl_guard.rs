//! Zero-downtime guards: an atomic migration's statements wait at most `--ddl-lock-timeout`
//! for a lock (`SET LOCAL lock_timeout`), because PostgreSQL queues every later lock request
//! on a table behind a waiting `ALTER TABLE`: one long transaction holding a weak lock on the
//! table would otherwise stall all of the application's queries on it for as long as the
//! ALTER waits (the classic migration outage).
//!
//! When the timeout passes (SQLSTATE 55P03) the migration's transaction rolls back (nothing of
//! it is applied), the sessions that blocked it are named (pid, application_name, state,
//! transaction age, the first [`QUERY_CHARS`] characters of their query, escaped; sampled during
//! the wait with `pg_blocking_pids` by the watch's second connection, see connection.rs), and it
//! is retried after a backoff with jitter, at most `--ddl-retries` times and within `-t` for
//! that migration; then exit 75 (retry may help) with the blockers named. With
//! `--cancel-blockers-after SEC`, once the migration has been blocked for SEC in total, the
//! blockers' queries are cancelled (`pg_cancel_backend`, never terminated; each logged) before
//! the next attempt; a blocker idle in its transaction has no query to cancel, and is only named.
//!
//! Non-atomic migrations (`CREATE INDEX CONCURRENTLY`) get no lock_timeout: their waits are for
//! older transactions to end (not a queue the application's queries join), and a concurrent
//! index build cut short leaves an INVALID index behind.

use djinit_cli::{Failure, Log};
use djinit_pg::{Client, Row};
use djinit_wait::Kind;
use lockedmigrate::options::GuardOptions;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Characters of a blocker's query shown.
pub const QUERY_CHARS: usize = 80;

/// Blocker lines are printed at most once per this interval (plus at the final failure).
pub const REPORT_EVERY: Duration = Duration::from_secs(5);

/// First backoff; doubled per retry up to [`BACKOFF_MAX`], each ±50% jitter so concurrent
/// runs (every replica's init container) do not retry in step.
pub const BACKOFF_FIRST: Duration = Duration::from_secs(1);
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// How often the watch samples `pg_blocking_pids` while a guarded statement waits: a few
/// samples within the lock timeout, at least every 100 ms apart.
pub fn sample_every(lock_timeout: Duration) -> Duration {
    (lock_timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(5))
}

/// A session that blocked our statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocker {
    pub pid: String,
    pub application_name: String,
    pub state: String,
    /// Seconds since its transaction began (empty when not visible to our role).
    pub xact_age: String,
    /// Its transaction's start, to cancel only that same transaction later.
    pub xact_start: String,
    /// The first [`QUERY_CHARS`] characters of its (current or last) query.
    pub query: String,
}

/// Blocked sessions seen during the latest guarded wait, shared with the watch.
pub type Seen = Rc<RefCell<Vec<Blocker>>>;

/// The blockers of backend `$1`, read from another connection while it waits.
pub const BLOCKERS: &str = "SELECT b.pid::text, coalesce(b.application_name, ''), \
        coalesce(b.state, 'unknown state'), \
        coalesce(extract(epoch FROM now() - b.xact_start)::bigint::text, ''), \
        coalesce(b.xact_start::text, ''), \
        left(coalesce(b.query, ''), 80) \
     FROM pg_catalog.pg_stat_activity b \
     WHERE b.pid = ANY (pg_catalog.pg_blocking_pids($1::int)) ORDER BY b.pid";

pub fn parse(rows: &[Row]) -> Vec<Blocker> {
    rows.iter()
        .map(|r| {
            let col = |i| r.get(i).unwrap_or("").to_string();
            Blocker {
                pid: col(0),
                application_name: col(1),
                state: col(2),
                xact_age: col(3),
                xact_start: col(4),
                query: col(5).chars().take(QUERY_CHARS).collect(),
            }
        })
        .collect()
}

impl Blocker {
    /// One line; names and query in Rust's `{:?}` quoting, so control characters are escaped.
    pub fn describe(&self) -> String {
        let age = if self.xact_age.is_empty() {
            "no transaction or not visible".to_string()
        } else {
            format!("transaction {}s old", self.xact_age)
        };
        format!(
            "pid {} (application_name {:?}, {}, {age}, query {:?})",
            self.pid, self.application_name, self.state, self.query
        )
    }
}

fn describe_all(blockers: &[Blocker]) -> String {
    if blockers.is_empty() {
        return "the blocking sessions were not seen (they let go before the first sample)".into();
    }
    blockers
        .iter()
        .map(Blocker::describe)
        .collect::<Vec<_>>()
        .join("; ")
}

/// `SET LOCAL lock_timeout` inside the migration's transaction (nothing when disabled).
pub fn set_local(client: &mut Client, guard: &GuardOptions) -> anyhow::Result<()> {
    if let Some(t) = guard.lock_timeout {
        let ms = t.as_millis().max(1);
        // A number we formatted ourselves: no value from outside enters the SQL text.
        client.batch(&format!("SET LOCAL lock_timeout = {ms}"))?;
    }
    Ok(())
}

/// Whether `e` is a statement that could not get its lock in time (55P03).
pub fn is_lock_timeout(e: &anyhow::Error) -> bool {
    e.chain()
        .any(|c| c.downcast_ref::<djinit_pg::Error>().and_then(|p| p.code()) == Some("55P03"))
}

/// A pseudo-random factor in [0.5, 1.5) for the jitter (no RNG crate for this: the clock's
/// nanoseconds and the attempt number are unpredictable enough to de-synchronise replicas).
fn jitter(attempt: u32) -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0) as u64;
    let mut x = nanos ^ (u64::from(attempt) << 32) ^ 0x9e37_79b9_7f4a_7c15;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    0.5 + (x % 1000) as f64 / 1000.0
}

/// The wait before retry number `attempt` (1-based), without jitter.
pub fn backoff_base(attempt: u32) -> Duration {
    BACKOFF_FIRST
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
        .min(BACKOFF_MAX)
}

/// The retry state of one migration.
pub struct Retry<'a> {
    guard: &'a GuardOptions,
    label: String,
    start: Instant,
    limit: Duration,
    retries: u32,
    blocked: Duration,
    last_report: Option<Instant>,
}

impl<'a> Retry<'a> {
    /// `limit`: `-t`, the longest one migration keeps retrying.
    pub fn new(guard: &'a GuardOptions, label: String, limit: Duration) -> Self {
        Retry {
            guard,
            label,
            start: Instant::now(),
            limit,
            retries: 0,
            blocked: Duration::ZERO,
            last_report: None,
        }
    }

    /// After a lock timeout (the transaction is rolled back): report the blockers, maybe cancel
    /// them, sleep the backoff. `Err` (exit 75) when no retry is left.
    pub fn after_timeout(
        &mut self,
        client: &mut Client,
        blockers: &[Blocker],
        log: &Log,
    ) -> anyhow::Result<()> {
        let Some(timeout) = self.guard.lock_timeout else {
            return Ok(());
        };
        self.blocked += timeout;
        let names = describe_all(blockers);
        let next = backoff_base(self.retries + 1).mul_f64(jitter(self.retries));
        if self.retries >= self.guard.retries || self.start.elapsed() + next > self.limit {
            return Err(anyhow::Error::new(Failure::new(
                Kind::Timeout,
                format!(
                    "{} could not get its locks within {:.1}s in {} attempts (--ddl-lock-timeout, --ddl-retries, -t); rolled back, nothing of it applied; blocked by {names}",
                    self.label,
                    timeout.as_secs_f64(),
                    self.retries + 1
                ),
            )));
        }
        self.retries += 1;
        if self.last_report.is_none_or(|t| t.elapsed() >= REPORT_EVERY) {
            self.last_report = Some(Instant::now());
            log.info(format!(
                "{}: lock not granted within {:.1}s (--ddl-lock-timeout), rolled back; retry {}/{} in {:.1}s",
                self.label,
                timeout.as_secs_f64(),
                self.retries,
                self.guard.retries,
                next.as_secs_f64()
            ));
            for b in blockers {
                log.info(format!("  blocked by {}", b.describe()));
            }
        }
        if let Some(after) = self.guard.cancel_after {
            if self.blocked >= after {
                cancel(client, blockers, log)?;
            }
        }
        std::thread::sleep(next);
        Ok(())
    }
}

/// `pg_cancel_backend` for each blocker still in the same transaction (never terminate).
fn cancel(client: &mut Client, blockers: &[Blocker], log: &Log) -> anyhow::Result<()> {
    for b in blockers {
        if b.state.starts_with("idle") {
            log.info(format!(
                "not cancelling {}: idle in its transaction, it has no query to cancel (djinit never terminates sessions)",
                b.describe()
            ));
            continue;
        }
        let rows = client.query(
            "SELECT pg_catalog.pg_cancel_backend(a.pid)::text FROM pg_catalog.pg_stat_activity a \
             WHERE a.pid = $1::int AND a.xact_start::text = $2 AND a.pid <> pg_catalog.pg_backend_pid()",
            &[Some(&b.pid), Some(&b.xact_start)],
        )?;
        match rows.first().and_then(|r| r.get(0)) {
            Some("true") => log.info(format!(
                "cancelled the query of blocker {} (--cancel-blockers-after)",
                b.describe()
            )),
            Some(_) => log.info(format!(
                "could not cancel blocker {} (permission: pg_cancel_backend needs the same role or pg_signal_backend)",
                b.describe()
            )),
            None => log.detail(format!("blocker pid {} has moved on", b.pid)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap_and_jitter_stays_within_half() {
        assert_eq!(backoff_base(1), Duration::from_secs(1));
        assert_eq!(backoff_base(2), Duration::from_secs(2));
        assert_eq!(backoff_base(5), Duration::from_secs(16));
        assert_eq!(backoff_base(6), Duration::from_secs(30));
        assert_eq!(backoff_base(60), Duration::from_secs(30));
        for a in 0..50 {
            let j = jitter(a);
            assert!((0.5..1.5).contains(&j), "{j}");
        }
    }

    #[test]
    fn blocker_lines_escape_and_cut() {
        let b = Blocker {
            pid: "42".into(),
            application_name: "report\x1b[2J".into(),
            state: "active".into(),
            xact_age: "17".into(),
            xact_start: String::new(),
            query: "SELECT\n1".into(),
        };
        let line = b.describe();
        assert!(!line.contains('\x1b') && !line.contains('\n'), "{line}");
        assert!(line.contains("pid 42") && line.contains("transaction 17s old"));
        assert!(describe_all(&[]).contains("not seen"));
        assert_eq!(
            sample_every(Duration::from_secs(3)),
            Duration::from_millis(750)
        );
        assert_eq!(
            sample_every(Duration::from_millis(100)),
            Duration::from_millis(100)
        );
    }
}
