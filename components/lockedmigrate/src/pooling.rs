//! Is our connection a session of its own, or is it pooled per transaction (PgBouncer
//! `pool_mode = transaction`, and any proxy that hands each transaction to whichever server
//! connection is free)? The one place that decides which locking protocol a run uses
//! ([`crate::txn::Protocol`]).
//!
//! Why it matters: a session advisory lock (`pg_advisory_lock`) belongs to a server session.
//! Behind transaction pooling the statement that takes it runs on some server connection, which
//! goes back to the pool holding the lock; later statements run elsewhere. Two runs then both
//! "hold" the lock and apply the same migrations, and the lock stays held by a pooled server
//! connection until PgBouncer closes it, so every later run waits for it (the bug golang-migrate,
//! Atlas, Flyway, Rails and authentik each hit).
//!
//! How: the client cannot ask PgBouncer for its `pool_mode` (`SHOW pool_mode` exists only on the
//! admin console, which an application role does not reach), so we look at what the pool does.
//! Our session `C` reads `pg_backend_pid()` (`p0`); then, [`ROUNDS`] times, a second client
//! connection `D` opens a transaction and reads its backend pid, and `C` reads its own again
//! while `D`'s transaction is open. With a session of its own (a direct connection or session
//! pooling) `C` always sees `p0` and `D` never sees it, since `p0` belongs to `C` for its
//! lifetime. Behind transaction pooling `p0` goes back to the pool after each statement:
//! PgBouncer reuses the most recently released server connection first (`server_round_robin =
//! 0`, the default), so `D` is given `p0`, and failing that (another client took it) `C` is given
//! another pid. Either observation proves transaction pooling; seeing neither in [`ROUNDS`]
//! rounds means a session of its own, up to a race that would have to recur in every round. That
//! residue is covered at run time: every migration's transaction checks its backend pid against
//! the lock holder's (`txn.rs`) and stops before applying anything if it differs.
//! Cost: one extra connection and 1 + 3×[`ROUNDS`] short statements (about 2 ms on a local
//! server), only for runs that apply (not `--plan`/`--check`).

use anyhow::Context;
use djinit_cli::Log;
use djinit_pg::{Client, Config};
use djinit_wait::Deadline;
use lockedmigrate::options::Options;

/// Probe rounds. Each is decisive by itself in a quiet pool; four make a wrong "session" verdict
/// need four coinciding races.
pub const ROUNDS: usize = 4;

/// How the connection is pooled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pooling {
    /// A session of our own: direct, or PgBouncer `pool_mode = session`. `pid` is its backend.
    Session { pid: String },
    /// Each transaction may run on another server connection. `evidence` says what showed it.
    Transaction { evidence: String },
}

fn backend_pid(client: &mut Client) -> anyhow::Result<String> {
    Ok(client
        .query("SELECT pg_catalog.pg_backend_pid()::text", &[])?
        .first()
        .and_then(|r| r.get(0).map(str::to_string))
        .unwrap_or_default())
}

/// Decide for `client` (see the module comment). `cfg` opens the probe's second connection,
/// bounded like lockedmigrate's own (`connect_timeout`, `-t`).
pub fn detect(
    client: &mut Client,
    cfg: &Config,
    opts: &Options,
    log: &Log,
) -> anyhow::Result<Pooling> {
    let p0 = backend_pid(client)?;
    let mut cfg = cfg.clone();
    cfg.application_name = Some("djinit lockedmigrate (pooling probe)".into());
    let limit = cfg
        .connect_timeout
        .unwrap_or(crate::connection::CONNECT_LIMIT)
        .min(opts.timeout);
    let mut probe = Client::connect(&cfg, Deadline::after(limit))
        .with_context(|| format!("connecting to {} (pooling probe)", cfg.describe()))?;
    probe.set_deadline(Deadline::never());
    probe.set_timeout(Some(opts.timeout));
    let verdict = (|| -> anyhow::Result<Pooling> {
        for round in 1..=ROUNDS {
            probe.batch("BEGIN")?;
            let pd = backend_pid(&mut probe)?;
            let pc = backend_pid(client)?;
            probe.batch("COMMIT")?;
            if pd == p0 {
                return Ok(Pooling::Transaction {
                    evidence: format!(
                        "round {round}: a second connection's transaction ran on our backend (pid {p0}) while we were idle"
                    ),
                });
            }
            if pc != p0 {
                return Ok(Pooling::Transaction {
                    evidence: format!(
                        "round {round}: our backend pid changed from {p0} to {pc} between two statements"
                    ),
                });
            }
        }
        Ok(Pooling::Session { pid: p0.clone() })
    })();
    probe.close();
    let verdict = verdict?;
    match &verdict {
        Pooling::Session { pid } => log.detail(format!(
            "the connection is a session of its own (backend pid {pid} kept across {ROUNDS} probe rounds): session advisory lock"
        )),
        Pooling::Transaction { evidence } => log.info(format!(
            "the connection is pooled per transaction ({evidence}): each migration takes the lock in its own transaction"
        )),
    }
    Ok(verdict)
}
