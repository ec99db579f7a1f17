//! The database side: make sure the superuser exists (and, with `--update`, matches).
//!
//! Concurrency: the user row is created by ONE statement, `INSERT ... ON CONFLICT (username)
//! DO NOTHING`, relying on the unique index every valid Django user model has on its
//! `USERNAME_FIELD` (`auth_user.username` is unique). Simultaneous runs all succeed: one inserts,
//! the others see the conflict and report "exists"; the row appears complete or not at all.
//! This guards against every writer (Django's own `createsuperuser` too), not just djinit runs.
//! Only when the column has no unique index (possible with a custom authentication backend) does
//! ensureadmin fall back to a transaction-scoped advisory lock keyed on (table, username) around
//! "look, then insert": that serialises djinit runs only, which is the best a table without a
//! unique constraint allows.
//! `--update` rewrites with `UPDATE ... WHERE password = <the hash it verified>`, so a concurrent
//! rotation is noticed and re-checked rather than silently overwritten.

use crate::hash::{self, Verdict, MAX_ITERATIONS};
use crate::sql::{self, Column, Plan};
use djinit_cli::{Failure, Log};
use djinit_pg::Client;
use djinit_wait::Deadline;
use djinit_wait::Kind;
use std::time::Instant;

/// The password as given.
#[derive(Clone, Copy)]
pub enum Password<'a> {
    /// Plaintext: hashed here with a fresh salt.
    Plain(&'a str),
    /// A Django hash (format already checked): stored verbatim.
    Hash(&'a str),
}

/// What to ensure.
pub struct Request<'a> {
    pub table: &'a str,
    pub username_field: &'a str,
    pub username: &'a str,
    /// Already normalised (`normalize_email`).
    pub email: &'a str,
    pub password: Password<'a>,
    pub iterations: u32,
    pub update: bool,
    /// Deadline for each round of statements (`--timeout`), and for each PBKDF2 computation
    /// on its own: renewed after hashing, so the CPU time of PBKDF2 never counts against the
    /// database's I/O deadline, and a hash that takes longer than `--timeout` stops there.
    pub timeout: std::time::Duration,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Created,
    /// Present and left untouched (no `--update`), or created by a concurrent run.
    Exists,
    /// `--update`: everything already matched.
    Unchanged,
    /// `--update`: what was rewritten.
    Updated {
        password: bool,
        flags: bool,
    },
}

/// The message for a missing user table. Retry may help: a migration Job may still be running.
pub fn schema_missing(table: &str) -> anyhow::Error {
    anyhow::Error::new(Failure::new(
        Kind::Unavailable,
        format!(
            "schema missing: run migrations first (table {table} does not exist yet; \
             `python manage.py migrate` creates it)"
        ),
    ))
}

/// Attach what was being done; a missing table (SQLSTATE 42P01) becomes [`schema_missing`].
fn ctx<T>(r: Result<T, djinit_pg::Error>, table: &str, doing: &str) -> anyhow::Result<T> {
    r.map_err(|e| {
        if e.code() == Some("42P01") {
            schema_missing(table)
        } else {
            anyhow::Error::new(e).context(format!("{doing} failed"))
        }
    })
}

/// Read the table's columns and decide what to write.
pub fn plan(client: &mut Client, table: &str, username_field: &str) -> anyhow::Result<Plan> {
    let rows = ctx(
        client.query(sql::COLUMNS, &[Some(&sql::quote_table(table))]),
        table,
        "reading the user table's columns",
    )?;
    if rows.is_empty() {
        return Err(schema_missing(table));
    }
    let columns: Vec<Column> = rows
        .iter()
        .map(|r| Column {
            name: r.get(0).unwrap_or_default().to_string(),
            not_null: r.get(1) == Some("true"),
            has_default: r.get(2) == Some("true"),
            unique: r.get(3) == Some("true"),
        })
        .collect();
    Plan::new(table, username_field, &columns)
        .map_err(|e| anyhow::Error::new(Failure::new(Kind::Config, e.0)))
}

struct Stored {
    hash: String,
    flags_ok: bool,
}

fn load(client: &mut Client, plan: &Plan, req: &Request) -> anyhow::Result<Option<Stored>> {
    let rows = ctx(
        client.query(&plan.select(), &[Some(req.username)]),
        req.table,
        "looking up the user",
    )?;
    Ok(rows.first().map(|r| Stored {
        hash: r.get(0).unwrap_or_default().to_string(),
        flags_ok: (1..r.len()).all(|i| r.get(i) == Some("true")),
    }))
}

/// `--timeout` passed while hashing: exit 75 (a less busy node may make it).
fn hashing_timed_out(e: hash::Expired, doing: &str, timeout: std::time::Duration) -> anyhow::Error {
    anyhow::Error::new(Failure::new(
        Kind::Timeout,
        format!(
            "{doing} did not finish within --timeout {}s ({} of {} PBKDF2 iterations done)",
            timeout.as_secs_f64(),
            e.done,
            e.iterations
        ),
    ))
}

/// A hash for the given password: fresh (plaintext) or as given.
fn new_hash(client: &mut Client, req: &Request, log: &Log) -> anyhow::Result<String> {
    match req.password {
        Password::Hash(h) => Ok(h.to_string()),
        Password::Plain(pw) => {
            let start = Instant::now();
            let salt = hash::salt::generate()
                .map_err(|e| anyhow::Error::new(Failure::new(Kind::Internal, e.to_string())))?;
            let h = hash::make(pw, &salt, req.iterations, Some(start + req.timeout))
                .map_err(|e| hashing_timed_out(e, "hashing the password", req.timeout))?;
            client.set_deadline(Deadline::after(req.timeout));
            log.detail(format!(
                "hashed the password (pbkdf2_sha256, {} iterations) in {:.1} ms",
                req.iterations,
                start.elapsed().as_secs_f64() * 1e3
            ));
            Ok(h)
        }
    }
}

/// Insert the user; `true` if this run created it.
fn insert(client: &mut Client, plan: &Plan, req: &Request, hash: &str) -> anyhow::Result<bool> {
    let email = plan.writes_email.then_some(req.email);
    let params: Vec<Option<&str>> = if plan.writes_email {
        vec![Some(req.username), Some(hash), email]
    } else {
        vec![Some(req.username), Some(hash)]
    };
    if plan.unique_username {
        let n = ctx(
            client.execute(&plan.insert(), &params),
            req.table,
            "creating the user",
        )?;
        return Ok(n == 1);
    }
    // No unique index: serialise djinit runs with an advisory lock held until COMMIT.
    let result = (|| -> anyhow::Result<bool> {
        ctx(client.batch("BEGIN"), req.table, "starting a transaction")?;
        ctx(
            client.query(
                sql::ADVISORY_LOCK,
                &[Some(&sql::quote_table(req.table)), Some(req.username)],
            ),
            req.table,
            "taking the advisory lock",
        )?;
        let present = !ctx(
            client.query(&plan.exists(), &[Some(req.username)]),
            req.table,
            "looking up the user",
        )?
        .is_empty();
        if !present {
            ctx(
                client.execute(&plan.insert(), &params),
                req.table,
                "creating the user",
            )?;
        }
        ctx(client.batch("COMMIT"), req.table, "committing the new user")?;
        Ok(!present)
    })();
    if result.is_err() && client.transaction_status() != b'I' {
        let _ = client.batch("ROLLBACK");
    }
    result
}

/// Does the stored hash hold the given password? A hash ensureadmin does not compute (another
/// algorithm, or more than [`MAX_ITERATIONS`]) counts as "no": `--update` then rewrites it,
/// which is what it was asked to ensure.
fn matches(client: &mut Client, req: &Request, stored: &str, log: &Log) -> anyhow::Result<bool> {
    let pw = match req.password {
        Password::Hash(h) => return Ok(hash::constant_time_eq(h.as_bytes(), stored.as_bytes())),
        Password::Plain(pw) => pw,
    };
    let start = Instant::now();
    let verdict = hash::verify(pw, stored, Some(start + req.timeout))
        .map_err(|e| hashing_timed_out(e, "verifying the stored password hash", req.timeout))?;
    client.set_deadline(Deadline::after(req.timeout));
    log.detail(format!(
        "verified the stored hash in {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    ));
    Ok(match verdict {
        Verdict::Match => true,
        Verdict::Mismatch => false,
        Verdict::Unverifiable(alg) => {
            log.info(format!(
                "the stored hash uses {alg}, which ensureadmin cannot verify; rewriting it as pbkdf2_sha256"
            ));
            false
        }
        Verdict::TooManyIterations(n) => {
            log.info(format!(
                "the stored hash asks for {n} PBKDF2 iterations, more than the {MAX_ITERATIONS} \
                 ensureadmin computes ({}x Django 5.2's default); not verifying it, rewriting it",
                hash::ITERATIONS_FACTOR
            ));
            false
        }
    })
}

/// Ensure the user exists (and matches, with `--update`).
pub fn ensure(
    client: &mut Client,
    plan: &Plan,
    req: &Request,
    log: &Log,
) -> anyhow::Result<Outcome> {
    let mut fresh: Option<String> = None;
    let mut stored = load(client, plan, req)?;
    if stored.is_none() {
        let h = new_hash(client, req, log)?;
        if insert(client, plan, req, &h)? {
            return Ok(Outcome::Created);
        }
        log.detail("another run created the user at the same time");
        fresh = Some(h);
        stored = load(client, plan, req)?;
    }
    if !req.update {
        return Ok(Outcome::Exists);
    }
    // --update: verify, then rewrite only what differs. A concurrent change of the hash between
    // our read and our write makes the UPDATE match no row: read again and re-check.
    for _ in 0..5 {
        let Some(s) = stored.take() else {
            // Deleted between statements: start over as "absent".
            return ensure(client, plan, req, log);
        };
        if matches(client, req, &s.hash, log)? {
            if s.flags_ok {
                return Ok(Outcome::Unchanged);
            }
            ctx(
                client.execute(&plan.update_flags(), &[Some(req.username)]),
                req.table,
                "setting the superuser flags",
            )?;
            return Ok(Outcome::Updated {
                password: false,
                flags: true,
            });
        }
        let h = match fresh.take() {
            Some(h) => h,
            None => new_hash(client, req, log)?,
        };
        let n = ctx(
            client.execute(
                &plan.update_password(),
                &[Some(req.username), Some(&h), Some(&s.hash)],
            ),
            req.table,
            "rewriting the password",
        )?;
        if n == 1 {
            return Ok(Outcome::Updated {
                password: true,
                flags: !s.flags_ok,
            });
        }
        log.detail("the stored hash changed while checking it; checking again");
        fresh = Some(h);
        stored = load(client, plan, req)?;
    }
    Err(anyhow::Error::new(Failure::new(
        Kind::Unavailable,
        "the user's password kept changing while ensureadmin checked it (another writer?)",
    )))
}
