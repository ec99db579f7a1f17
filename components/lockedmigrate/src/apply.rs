//! Applying (or unapplying) one migration of the bundle, and recording it.
//!
//! Atomic migration: `BEGIN`, its statements, its guards, its `django_migrations` row(s),
//! `COMMIT`: all or nothing, also when the process is killed (the server rolls back). SQL that
//! controls the transaction itself (`COMMIT;` in a `RunSQL`) is refused before anything is
//! applied ([`refuse_transaction_control`]); after a failure the message says only what the
//! server confirmed (see [`after_failure`]).
//! Non-atomic migration: each statement on its own (autocommit), the row recorded after the last
//! one succeeded. Values (app, name) are always bound parameters; only the exported SQL text and
//! `BEGIN`/`COMMIT`/`ROLLBACK` go through the simple-query protocol.

use anyhow::Context;
use djinit_bundle::{Guard, Migration, Step};
use djinit_cli::print_line;
use djinit_cli::{Failure, Log};
use djinit_pg::Client;
use djinit_wait::Kind;
use std::time::Duration;

use crate::ddl_guard;
use crate::tx_control;
use crate::txn::Txn;

const RECORD: &str = "INSERT INTO django_migrations (app, name, applied) VALUES ($1, $2, now())";
const UNRECORD: &str = "DELETE FROM django_migrations WHERE app = $1 AND name = $2";

/// What to do with one planned migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Run,
    /// `--fake` / `--fake-initial`: only the django_migrations rows.
    Fake,
}

/// What [`one`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Another run applied (or unapplied) it since we planned (transaction pooling: seen
    /// inside the transaction holding the lock, see txn.rs); nothing was written.
    AlreadyDone,
}

/// Apply (`backwards == false`) or unapply one migration. An atomic one (and any `--fake` one)
/// runs in a transaction opened by `txn` under the advisory lock.
pub fn one(
    client: &mut Client,
    txn: &Txn,
    m: &Migration,
    backwards: bool,
    mode: Mode,
    log: &Log,
) -> anyhow::Result<Outcome> {
    let steps: &[Step] = if backwards {
        m.backward.as_deref().ok_or_else(|| irreversible(m))?
    } else {
        &m.forward
    };
    let what = if backwards { "unapplying" } else { "applying" };
    if mode == Mode::Run {
        refuse_transaction_control(m, steps)?;
    }
    let in_tx = m.atomic || mode == Mode::Fake;
    if in_tx {
        txn.begin(client)?;
        let pending = txn.still_pending(client, m, backwards);
        if !matches!(pending, Ok(true)) {
            let _ = client.batch("ROLLBACK");
            txn.ended(client);
            return pending.map(|_| Outcome::AlreadyDone);
        }
        if mode == Mode::Run && m.atomic {
            ddl_guard::set_local(client, &txn.guard)?;
        }
    }
    let mut committing = false;
    let result = (|| -> anyhow::Result<()> {
        if mode == Mode::Run {
            run_steps(client, m, steps, in_tx, log)?;
        }
        record(client, m, backwards)?;
        if in_tx {
            committing = true;
            client.batch("COMMIT").context("COMMIT failed")?;
        }
        Ok(())
    })();
    let Err(e) = result else {
        txn.ended(client);
        return Ok(Outcome::Done);
    };
    let done = if in_tx {
        let done = after_failure(client, &e, committing);
        txn.ended(client);
        done
    } else {
        "non-atomic migration: statements before the failing one stay applied"
    };
    let code = e.chain().find_map(|c| {
        c.downcast_ref::<djinit_pg::Error>()
            .and_then(|p| p.code().map(str::to_string))
    });
    let sqlstate = code.map(|c| format!(" (SQLSTATE {c})")).unwrap_or_default();
    Err(e.context(format!("{what} {} failed{sqlstate}; {done}", m.label())))
}

/// After a failure inside an atomic migration's transaction: roll back, and say what the server
/// confirmed, never more. "Nothing of it was committed" only when the server acknowledged the
/// `ROLLBACK` (or failed the `COMMIT` with an error, which rolls back).
fn after_failure(client: &mut Client, e: &anyhow::Error, committing: bool) -> &'static str {
    let server_refused = e.chain().any(|c| {
        matches!(
            c.downcast_ref::<djinit_pg::Error>(),
            Some(djinit_pg::Error::Db(_))
        )
    });
    match (committing, client.transaction_status()) {
        (true, b'I') if server_refused => "the server rolled it back: nothing of it was committed",
        (true, _) => {
            "the connection failed during COMMIT, so whether it was committed is unknown: check django_migrations before running again"
        }
        (false, b'T' | b'E') => match client.batch("ROLLBACK") {
            Ok(()) if client.transaction_status() == b'I' => {
                "rolled back: nothing of it was committed"
            }
            _ => {
                "the rollback was not confirmed (the connection failed); the server rolls back a transaction whose session ends"
            }
        },
        (false, _) => {
            "its own SQL ended the migration's transaction: what ran before that point is committed, and the migration is not recorded"
        }
    }
}

/// Refuse an atomic migration whose SQL controls the transaction itself (exit 65), before
/// anything of it runs: lockedmigrate runs it in one transaction, and a `COMMIT` inside would
/// commit part of it.
pub fn refuse_transaction_control(m: &Migration, steps: &[Step]) -> anyhow::Result<()> {
    if !m.atomic {
        return Ok(());
    }
    let found = steps
        .iter()
        .filter_map(|step| match step {
            Step::Sql(stmts) => stmts.iter().find_map(|s| tx_control::find(s)),
            _ => None,
        })
        .next();
    if let Some(found) = found {
        return Err(anyhow::Error::new(Failure::new(
            Kind::Data,
            format!(
                "migration {} is atomic but its SQL controls the transaction itself ({}: `{}`): lockedmigrate runs an atomic migration in one transaction, and this would commit or undo part of it. Nothing was applied. Remove the statement, or make the migration non-atomic (`atomic = False`) and re-export",
                m.label(),
                found.command,
                found.statement
            ),
        )));
    }
    Ok(())
}

fn run_steps(
    client: &mut Client,
    m: &Migration,
    steps: &[Step],
    in_tx: bool,
    log: &Log,
) -> anyhow::Result<()> {
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::Sql(stmts) => {
                for s in stmts {
                    log.debug(format!("{}: {s}", m.label()));
                    client
                        .batch(s)
                        .with_context(|| format!("statement: {}", first_line(s)))?;
                    if in_tx && client.transaction_status() != b'T' {
                        // A COMMIT/ROLLBACK inside exported SQL would break the all-or-nothing promise.
                        return Err(anyhow::Error::new(Failure::new(
                            Kind::Data,
                            format!(
                                "after statement {} the server reports no open transaction",
                                first_line(s)
                            ),
                        )));
                    }
                }
            }
            Step::Noop(_) => {}
            Step::Python {
                describe,
                callable,
                guard,
            } => {
                let name = callable.as_deref().unwrap_or(describe);
                let Some(g) = guard else {
                    return Err(needs_python(m, name));
                };
                if !guard_holds(client, g, name)? {
                    return Err(anyhow::Error::new(Failure::new(
                        Kind::Data,
                        format!(
                            "step {} of {} is Python ({name}); it is a no-op only when {} ({}), which does not hold on this database: let Django apply it, `djinit lockedmigrate --python \"python manage.py\"`",
                            i + 1,
                            m.label(),
                            g.sql,
                            g.reason
                        ),
                    )));
                }
                log.detail(format!(
                    "{}: guard {} holds: {name} is a no-op",
                    m.label(),
                    g.id
                ));
            }
        }
    }
    Ok(())
}

/// Whether guard `g` of the Python step `name` holds on this database (its query answers true):
/// then the step is a no-op here. Read in the migration's transaction when applying, and before
/// it when deciding what `--python` hands to Django (handover.rs).
pub fn guard_holds(client: &mut Client, g: &Guard, name: &str) -> anyhow::Result<bool> {
    let rows = client
        .query(&g.sql, &[])
        .with_context(|| format!("checking guard {} of {name}", g.id))?;
    Ok(rows.first().and_then(|r| r.get(0)) == Some("t"))
}

/// `  Applying app.name... OK` as Django prints it (`tail` after the dots; the time at `-v 2`),
/// at `-v 1` and above.
pub fn print_step(log: &Log, backwards: bool, label: &str, tail: &str, took: Duration) {
    if log.verbosity() < 1 {
        return;
    }
    let verb = if backwards { "Unapplying" } else { "Applying" };
    let secs = if log.verbosity() >= 2 {
        format!(" ({:.3}s)", took.as_secs_f64())
    } else {
        String::new()
    };
    print_line(format!("  {verb} {label}...{tail}{secs}"));
}

fn record(client: &mut Client, m: &Migration, backwards: bool) -> anyhow::Result<()> {
    // Django records the replaced migrations of a squash, then (check_replacements) the squash.
    let mut keys: Vec<(&str, &str)> = m
        .replaces
        .iter()
        .map(|(a, n)| (a.as_str(), n.as_str()))
        .collect();
    keys.push(m.key());
    for (app, name) in keys {
        let sql = if backwards { UNRECORD } else { RECORD };
        client
            .execute(sql, &[Some(app), Some(name)])
            .with_context(|| format!("recording {app}.{name} in django_migrations"))?;
    }
    Ok(())
}

pub fn irreversible(m: &Migration) -> anyhow::Error {
    anyhow::Error::new(Failure::new(
        Kind::Data,
        format!(
            "Migration {} is not reversible (Django: IrreversibleError); nothing was unapplied",
            m.label()
        ),
    ))
}

pub fn needs_python(m: &Migration, what: &str) -> anyhow::Error {
    anyhow::Error::new(Failure::new(
        Kind::Data,
        format!(
            "migration {} needs Python ({what}), which the bundle cannot apply; nothing was applied. Hand such migrations to Django under the same lock: `djinit lockedmigrate --python \"python manage.py\"` (or all of Django: --exec -- python manage.py migrate)",
            m.label()
        ),
    ))
}

fn first_line(s: &str) -> String {
    let l = s.lines().next().unwrap_or("");
    if l.len() > 120 {
        let mut end = 120;
        while !l.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &l[..end])
    } else {
        l.to_string()
    }
}

/// `--fake-initial`: whether every table and column the initial migration creates exists
/// (Django's `detect_soft_applied`).
pub fn soft_applied(client: &mut Client, m: &Migration) -> anyhow::Result<bool> {
    let Some(check) = m.soft_applied.as_ref().filter(|_| m.initial) else {
        return Ok(false);
    };
    if check.tables.is_empty() && check.columns.is_empty() {
        return Ok(false);
    }
    for t in &check.tables {
        let rows = client.query(
            "SELECT 1 FROM pg_catalog.pg_class c WHERE c.relname = $1 \
             AND c.relkind IN ('f','m','p','r','v') AND pg_catalog.pg_table_is_visible(c.oid)",
            &[Some(t)],
        )?;
        if rows.is_empty() {
            return Ok(false);
        }
    }
    for (t, col) in &check.columns {
        let rows = client.query(
            "SELECT 1 FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
             WHERE c.relname = $1 AND a.attname = $2 AND a.attnum > 0 AND NOT a.attisdropped \
             AND pg_catalog.pg_table_is_visible(c.oid)",
            &[Some(t), Some(col)],
        )?;
        if rows.is_empty() {
            return Ok(false);
        }
    }
    Ok(true)
}
