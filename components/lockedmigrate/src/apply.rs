//! Applying (or unapplying) one migration of the bundle, and recording it.
//!
//! Atomic migration: `BEGIN`, its statements, its guards, its `django_migrations` row(s),
//! `COMMIT`: all or nothing, also when the process is killed (the server rolls back).
//! Non-atomic migration: each statement on its own (autocommit), the row recorded after the last
//! one succeeded. Values (app, name) are always bound parameters; only the exported SQL text and
//! `BEGIN`/`COMMIT`/`ROLLBACK` go through the simple-query protocol.

use anyhow::Context;
use djinit_bundle::{Migration, Step};
use djinit_cli::{ExitCode, Failure, Log};
use djinit_pg::Client;

const RECORD: &str = "INSERT INTO django_migrations (app, name, applied) VALUES ($1, $2, now())";
const UNRECORD: &str = "DELETE FROM django_migrations WHERE app = $1 AND name = $2";

/// What to do with one planned migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Run,
    /// `--fake` / `--fake-initial`: only the django_migrations rows.
    Fake,
}

/// Apply (`backwards == false`) or unapply one migration.
pub fn one(
    client: &mut Client,
    m: &Migration,
    backwards: bool,
    mode: Mode,
    log: &Log,
) -> anyhow::Result<()> {
    let steps: &[Step] = if backwards {
        m.backward.as_deref().ok_or_else(|| irreversible(m))?
    } else {
        &m.forward
    };
    let what = if backwards { "unapplying" } else { "applying" };
    let in_tx = m.atomic || mode == Mode::Fake;
    if in_tx {
        client.batch("BEGIN")?;
    }
    let result = (|| -> anyhow::Result<()> {
        if mode == Mode::Run {
            run_steps(client, m, steps, in_tx, log)?;
        }
        record(client, m, backwards)
    })();
    match result {
        Ok(()) => {
            if in_tx {
                client
                    .batch("COMMIT")
                    .with_context(|| format!("{what} {}: COMMIT failed", m.label()))?;
            }
            Ok(())
        }
        Err(e) => {
            if client.transaction_status() != b'I' {
                let _ = client.batch("ROLLBACK");
            }
            let done = if in_tx {
                "nothing of it was committed"
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
    }
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
                            ExitCode::Data,
                            format!(
                                "statement {} left the migration's transaction",
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
                let rows = client
                    .query(&g.sql, &[])
                    .with_context(|| format!("checking guard {} of {name}", g.id))?;
                let holds = rows.first().and_then(|r| r.get(0)) == Some("t");
                if !holds {
                    return Err(anyhow::Error::new(Failure::new(
                        ExitCode::Data,
                        format!(
                            "step {} of {} is Python ({name}); it is a no-op only when {} ({}), which does not hold on this database: apply it with `djinit lockedmigrate --exec -- python manage.py migrate`",
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
        ExitCode::Data,
        format!(
            "Migration {} is not reversible (Django: IrreversibleError); nothing was unapplied",
            m.label()
        ),
    ))
}

pub fn needs_python(m: &Migration, what: &str) -> anyhow::Error {
    anyhow::Error::new(Failure::new(
        ExitCode::Data,
        format!(
            "migration {} needs Python ({what}), which the bundle cannot apply; nothing of it was applied. Run Django under the lock instead: `djinit lockedmigrate --exec -- python manage.py migrate`",
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
