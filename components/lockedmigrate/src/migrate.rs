//! One `lockedmigrate` run on a connected session, shared by the command (`main`) and the
//! lock-session export's `migrate` (`--python`, session.rs): connect and take the lock as the
//! pooling probe allows ([`start`]), then plan under the lock and apply ([`Run::go`]).
//!
//! Order of work: connect; check the server version against the bundle's; probe for a
//! transaction-pooling proxy before touching anything (pooling.rs); take the lock on this
//! session (or, behind transaction pooling, in each migration's transaction: txn.rs); re-read
//! django_migrations under the lock; plan like Django's `MigrationExecutor`; refuse up front
//! what cannot be done (Python, unless handed to Django; irreversible; transaction control);
//! apply each migration (apply.rs) or, with `--python`, return the first that needs Django
//! (handover.rs); add the post_migrate rows once nothing is pending.

use crate::apply;
use crate::connection;
use crate::ddl_guard;
use crate::handover::{self, Handover};
use crate::lock;
use crate::pooling::{self, Pooling};
use crate::post_migrate;
use crate::prune::prune;
use crate::txn::{Protocol, Txn};
use anyhow::Context;
use djinit_bundle::graph::{plan, Graph, Key, Planned, Target};
use djinit_bundle::{state, Bundle, Migration};
use djinit_cli::print_line;
use djinit_cli::{Failure, Log};
use djinit_pg::{Client, Config};
use djinit_wait::Kind;
use lockedmigrate::options::Options;
use std::collections::HashSet;
use std::time::Instant;

/// How the run locks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locking {
    /// `--plan`, `--check`: no lock, nothing written.
    ReadOnly,
    /// The session lock, or per-transaction locks behind transaction pooling.
    Any,
    /// Only a session lock will do (`--exec`, `--python`: the lock must stay held while the
    /// host runs a command); behind transaction pooling the run stops with this reason. Used by
    /// the lock-session export, which exists only in the component.
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    Session(&'static str),
}

/// A connected session holding the lock as [`Locking`] said.
pub struct Started {
    pub client: Client,
    pub txn: Txn,
    pub pooling: Option<Pooling>,
    /// The session's backend pid (the lock-session export names it).
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    pub pid: String,
}

/// Connect with lockedmigrate's bounds, check the server against `bundle`, probe for pooling,
/// take the lock (see the module comment).
pub fn start(
    cfg: &Config,
    opts: &Options,
    log: &Log,
    bundle: Option<&Bundle>,
    locking: Locking,
) -> anyhow::Result<Started> {
    // The DDL guard's blocker samples (ddl_guard.rs), taken by the watch while a statement waits.
    let seen: ddl_guard::Seen = Default::default();
    let sampling = opts
        .guard
        .lock_timeout
        .map(|t| (seen.clone(), ddl_guard::sample_every(t)));
    let (mut client, pid) = connection::open(cfg, opts, log, sampling.clone())?;
    if let Some(bundle) = bundle {
        check_server_version(&mut client, bundle)?;
    }
    // Before touching anything: which locking protocol works on this connection (pooling.rs).
    let pooling = match locking {
        Locking::ReadOnly => None,
        _ => Some(pooling::detect(&mut client, cfg, opts, log)?),
    };
    let protocol = match (&pooling, locking) {
        (Some(Pooling::Transaction { evidence }), Locking::Session(why)) => {
            return Err(Failure::new(
                Kind::Config,
                format!(
                    "{why}, and this connection is pooled per transaction ({evidence}); nothing was run. Use a direct or session-pooled connection for migrations, e.g. DATABASE_URL_MIGRATE=postgres://...@db-host:5432/app and `-d migrate`"
                ),
            )
            .into());
        }
        (Some(Pooling::Session { pid }), _) => {
            lock::acquire(&mut client, opts.lock_id, opts.lock_timeout, log)?;
            Protocol::Session { pid: pid.clone() }
        }
        (Some(Pooling::Transaction { .. }), _) => {
            // The watch follows a backend pid; here each transaction has its own (txn.rs).
            client.set_watch(None);
            Protocol::Transaction
        }
        (None, _) => Protocol::Transaction,
    };
    let txn = Txn {
        protocol,
        key: opts.lock_id,
        lock_timeout: opts.lock_timeout,
        cfg: cfg.clone(),
        timeout: opts.timeout,
        log: log.clone(),
        guard: opts.guard.clone(),
        sampling,
    };
    Ok(Started {
        client,
        txn,
        pooling,
        pid,
    })
}

/// What a `--python` run keeps between calls of the lock-session export's `migrate`.
#[derive(Default)]
pub struct Handing {
    /// Calls so far: Django's headings are printed by the first.
    pub calls: u32,
    /// The migration handed to Django by the previous call, and when.
    pub last: Option<(Handover, Instant)>,
    /// Django ran a migration of this run: its post_migrate receivers run once more at the end.
    pub django_ran: bool,
    /// That final run of the receivers is done.
    pub receivers_ran: bool,
}

/// One run's settings on a started session.
pub struct Run<'a> {
    pub txn: &'a Txn,
    pub pooling: Option<&'a Pooling>,
    pub bundle: &'a Bundle,
    pub target: &'a Target,
    pub opts: &'a Options,
    pub log: &'a Log,
}

impl Run<'_> {
    /// Read django_migrations under the lock and do what the options say. With `handing`
    /// (`--python`): first check that Django did what the previous call handed it, then apply up
    /// to the next migration that needs Django and return it (`None`: the plan is done).
    pub fn go(
        &self,
        client: &mut Client,
        handing: Option<&mut Handing>,
    ) -> anyhow::Result<Option<Handover>> {
        let Run {
            txn,
            pooling,
            bundle,
            target,
            opts,
            log,
        } = *self;
        // Read under the lock: what another run applied while we waited is not applied again.
        let recorded = state::recorded(client)?;
        let applied = state::applied(bundle, &recorded)?;
        let graph = Graph::new(bundle);
        let mut headings = true;
        let mut hand_over = false;
        let mut after = AfterPlan::Report;
        if let Some(h) = handing {
            headings = h.calls == 0;
            h.calls += 1;
            hand_over = true;
            if let Some((last, since)) = h.last.take() {
                handover::check_done(&last, &applied)?;
                if last.receivers_only {
                    h.receivers_ran = true;
                    log.detail(format!(
                        "Django ran the post_migrate receivers ({:.3}s)",
                        since.elapsed().as_secs_f64()
                    ));
                } else {
                    let label = last.label();
                    apply::print_step(log, last.backwards, &label, " OK (Django)", since.elapsed());
                }
            }
            after = match (h.receivers_ran, h.django_ran) {
                (true, _) => AfterPlan::Nothing,
                (false, true) if !bundle.not_exported.is_empty() => AfterPlan::HandReceivers,
                _ => AfterPlan::Report,
            };
        }
        if opts.prune {
            prune(
                client,
                bundle,
                opts.app_label.as_deref().unwrap_or(""),
                &recorded,
                log,
            )?;
            return Ok(None);
        }
        let planned = plan(&graph, target, &applied);
        if opts.plan {
            print_plan(&graph, &planned, &applied);
            if opts.check && !planned.is_empty() {
                return Err(Failure::quiet(Kind::NotMet).into());
            }
            return Ok(None);
        }
        if opts.check {
            if planned.is_empty() {
                log.detail("no migrations pending");
                return Ok(None);
            }
            for p in &planned {
                log.detail(format!("pending: {}.{}", p.key.0, p.key.1));
            }
            return Err(Failure::new(
                Kind::NotMet,
                format!("{} migrations pending", planned.len()),
            )
            .into());
        }
        Migrate {
            txn,
            pooling,
            bundle,
            graph: &graph,
            target,
            planned: &planned,
            applied: &applied,
            opts,
            log,
            headings,
            hand_over,
            after,
        }
        .run(client)
    }
}

/// What is left to do about the post_migrate receivers the bundle does not have, once the plan
/// is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterPlan {
    /// List them (they did not run).
    Report,
    /// `--python`, and Django ran steps: hand Django a `migrate` that only runs them.
    HandReceivers,
    /// Django ran them.
    Nothing,
}

pub fn resolve_target(bundle: &Bundle, target: Target) -> anyhow::Result<Target> {
    let usage = |m: String| anyhow::Error::new(djinit_cli::UsageError(m));
    Ok(match target {
        Target::App(a) | Target::Zero(a) if !bundle.has_app(&a) => {
            return Err(usage(format!(
                "App '{a}' does not have migrations in the bundle."
            )))
        }
        Target::Migration(a, n) => {
            if !bundle.has_app(&a) {
                return Err(usage(format!(
                    "App '{a}' does not have migrations in the bundle."
                )));
            }
            // Django accepts a unique prefix of the name.
            let found: Vec<&Migration> = bundle
                .migrations
                .iter()
                .filter(|m| m.app == a && m.name.starts_with(&n))
                .collect();
            match (found.iter().find(|m| m.name == n), found.as_slice()) {
                (Some(m), _) | (None, [m]) => Target::Migration(a, m.name.clone()),
                (None, []) => {
                    return Err(usage(format!(
                        "Cannot find a migration matching '{n}' from app '{a}'."
                    )))
                }
                (None, _) => {
                    return Err(usage(format!(
                    "More than one migration matches '{n}' in app '{a}'. Please be more specific."
                )))
                }
            }
        }
        t => t,
    })
}

pub fn check_server_version(client: &mut Client, bundle: &Bundle) -> anyhow::Result<()> {
    let rows = client.query("SELECT current_setting('server_version_num')", &[])?;
    let num: u32 = rows
        .first()
        .and_then(|r| r.get(0))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if num / 10000 < bundle.pg_version / 10000 {
        return Err(Failure::new(
            Kind::Config,
            format!(
                "the bundle's SQL was exported for PostgreSQL {} and the server is {}; re-export with `djinit_export --pg-version {}`",
                bundle.pg_version / 10000,
                num / 10000,
                num / 10000
            ),
        )
        .into());
    }
    Ok(())
}

/// Django's `migrate --plan` lines, each migration marked with what applying it takes, for the
/// SQL that would run given what is applied (variants): `[sql]` (djinit alone), `[python]` (an
/// unguarded RunPython or un-exportable RunSQL: `--python` or `--exec`), `[irreversible]` (no way back).
fn print_plan(graph: &Graph<'_>, planned: &[Planned], applied: &HashSet<Key>) {
    print_line("Planned operations:");
    if planned.is_empty() {
        print_line("  No planned migration operations.");
    }
    let chosen = djinit_bundle::variant::resolve(graph, planned, applied);
    for (p, m) in planned.iter().zip(&chosen) {
        let mark = match m.needs_python(p.backwards) {
            Some(false) => "sql",
            Some(true) => "python",
            None => "irreversible",
        };
        print_line(format!("{}  [{mark}]", m.label()));
        for op in &m.operations {
            if p.backwards {
                print_line(format!("    Undo {op}"));
            } else {
                print_line(format!("    {op}"));
            }
        }
    }
}

/// One migrate run (refinery's `Runner` is the model): how transactions take the lock (txn.rs),
/// what the pooling probe found, the bundle and its graph, the target, the plan for it given what
/// is applied, and how to apply (the options, the log; whether this call prints Django's
/// headings; whether migrations that need Python go to Django).
struct Migrate<'a> {
    txn: &'a Txn,
    pooling: Option<&'a Pooling>,
    bundle: &'a Bundle,
    graph: &'a Graph<'a>,
    target: &'a Target,
    planned: &'a [Planned],
    applied: &'a HashSet<Key>,
    opts: &'a Options,
    log: &'a Log,
    headings: bool,
    hand_over: bool,
    after: AfterPlan,
}

impl Migrate<'_> {
    /// Refuse up front what cannot be done, print Django's headings, apply each planned
    /// migration, then add the post_migrate rows when nothing remains unapplied. With
    /// `hand_over`, stop at the first migration that needs Django and return it instead.
    fn run(&self, client: &mut Client) -> anyhow::Result<Option<Handover>> {
        let Migrate {
            txn,
            pooling,
            bundle,
            graph,
            target,
            planned,
            applied,
            opts,
            log,
            headings,
            hand_over,
            after,
        } = *self;
        let out = log.verbosity() >= 1;
        // Each migration with the SQL Django would run for it given what is applied (variants).
        let chosen = djinit_bundle::variant::resolve(graph, planned, applied);
        // Refuse up front what cannot be done, before anything is applied.
        if !opts.fake {
            for (p, m) in planned.iter().zip(&chosen) {
                let steps = if p.backwards {
                    m.backward
                        .as_deref()
                        .ok_or_else(|| apply::irreversible(m))?
                } else {
                    &m.forward
                };
                let python = Migration::unguarded_python(steps);
                if let (Some(what), false) = (python.first(), hand_over) {
                    return Err(apply::needs_python(m, what));
                }
                // Django applies it as it is; for djinit it is checked again if it comes to that.
                if !(hand_over && m.has_python(p.backwards)) {
                    apply::refuse_transaction_control(m, steps)?;
                }
                if let (false, Some(Pooling::Transaction { evidence })) = (m.atomic, pooling) {
                    return Err(Failure::new(
                    Kind::Config,
                    format!(
                        "migration {} is non-atomic (atomic = False, e.g. CREATE INDEX CONCURRENTLY) and this connection is pooled per transaction ({evidence}): no lock can be held across its statements there, so nothing was applied. Use a direct or session-pooled connection for migrations, e.g. DATABASE_URL_MIGRATE=postgres://...@db-host:5432/app and `lockedmigrate -d migrate`",
                        m.label()
                    ),
                )
                .into());
                }
            }
        }
        if out && headings {
            print_line("Operations to perform:");
            match target {
                Target::All | Target::App(_) => {
                    let mut apps: Vec<&str> = graph
                        .leaf_nodes(match target {
                            Target::App(a) => Some(a.as_str()),
                            _ => None,
                        })
                        .iter()
                        .map(|k| bundle.get(&k.0, &k.1).map(|m| m.app.as_str()).unwrap_or(""))
                        .collect();
                    apps.dedup();
                    print_line(format!(
                        "  Apply all migrations: {}",
                        if apps.is_empty() {
                            "(none)".into()
                        } else {
                            apps.join(", ")
                        }
                    ));
                }
                Target::Zero(a) => print_line(format!("  Unapply all migrations: {a}")),
                Target::Migration(a, n) => {
                    print_line(format!("  Target specific migration: {n}, from {a}"))
                }
            }
            print_line("Running migrations:");
            if planned.is_empty() {
                print_line("  No migrations to apply.");
            }
        }
        if !planned.is_empty() && !state::table_exists(client)? {
            // Under the lock, checked again inside: a concurrent run may have created it.
            txn.begin(client)?;
            let r = (|| -> anyhow::Result<()> {
                if !state::table_exists(client)? {
                    log.detail("creating django_migrations");
                    client
                        .batch(&bundle.recorder_sql)
                        .context("creating django_migrations")?;
                }
                client.batch("COMMIT")?;
                Ok(())
            })();
            if r.is_err() {
                let _ = client.batch("ROLLBACK");
            }
            txn.ended(client);
            r?;
        }
        // What is applied as the plan goes (a handed-over step's target depends on it).
        let mut done = applied.clone();
        for (p, m) in planned.iter().zip(&chosen) {
            let start = Instant::now();
            let mut mode = if opts.fake {
                apply::Mode::Fake
            } else {
                apply::Mode::Run
            };
            if hand_over && mode == apply::Mode::Run {
                let steps = if p.backwards {
                    m.backward.as_deref().unwrap_or_default()
                } else {
                    &m.forward
                };
                if let Some(reason) = handover::needs_django(client, steps)? {
                    let h = handover::step(graph, &done, p, log.verbosity(), reason)?;
                    log.detail(format!(
                        "{} goes to Django ({}): {}",
                        h.label(),
                        h.reason,
                        h.args.join(" ")
                    ));
                    return Ok(Some(h));
                }
            }
            if !p.backwards && !opts.fake && opts.fake_initial && apply::soft_applied(client, m)? {
                mode = apply::Mode::Fake;
            }
            // The migration's own SQL may run for hours: no -t, but watched (connection.rs).
            let verb = if p.backwards {
                "unapplying"
            } else {
                "applying"
            };
            let task = format!("{verb} {}", m.label());
            let mut retry = ddl_guard::Retry::new(&opts.guard, m.label(), opts.timeout);
            let outcome = loop {
                if let Some((seen, _)) = &txn.sampling {
                    seen.borrow_mut().clear();
                }
                match client.unbounded(&task, |c| apply::one(c, txn, m, p.backwards, mode, log)) {
                    // Lock timeout of the guard, and the server confirmed the rollback: retry.
                    Err(e)
                        if opts.guard.lock_timeout.is_some()
                            && m.atomic
                            && mode == apply::Mode::Run
                            && ddl_guard::is_lock_timeout(&e)
                            && client.transaction_status() == b'I' =>
                    {
                        let blockers = txn
                            .sampling
                            .as_ref()
                            .map(|(s, _)| s.borrow().clone())
                            .unwrap_or_default();
                        retry.after_timeout(client, &blockers, log)?;
                    }
                    r => break r?,
                }
            };
            let tail = match (outcome, mode) {
                (apply::Outcome::AlreadyDone, _) => " SKIPPED (done by another run meanwhile)",
                (_, apply::Mode::Fake) => " FAKED",
                _ => " OK",
            };
            apply::print_step(log, p.backwards, &m.label(), tail, start.elapsed());
            if p.backwards {
                done.remove(&p.key);
            } else {
                done.insert(p.key.clone());
            }
        }
        // The rows are those of the fully migrated project: added only when nothing is pending
        // afterwards (a partial target would otherwise get rows for models it does not have yet).
        if !graph.nodes.keys().all(|k| done.contains(k)) {
            log.detail("post_migrate rows not added: migrations remain unapplied");
        } else {
            post_migrate::apply(client, txn, &bundle.post_migrate, log)?;
        }
        match after {
            AfterPlan::Report => post_migrate::report_not_exported(&bundle.not_exported, log),
            AfterPlan::HandReceivers => {
                return Ok(Some(handover::receivers(target, log.verbosity())));
            }
            AfterPlan::Nothing => {}
        }
        Ok(None)
    }
}
