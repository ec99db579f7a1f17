//! `lockedmigrate`: apply a migration bundle (`manage.py djinit_export`) under a PostgreSQL
//! advisory lock. Compatible with django-kubernetes' `manage.py lockedmigrate` (same flags, same
//! default lock key 1000, so the two exclude each other), with no Python at deploy time.
//!
//! Order of work: read and verify the bundle; connect; take the lock on this session (progress
//! lines name the holder; `--lock-timeout` bounds the wait, exit 75); re-read django_migrations
//! under the lock; plan like Django's `MigrationExecutor`; refuse up front what cannot be done
//! without Python or is irreversible; apply each migration (see `apply`); add the post_migrate
//! rows; release the lock (`pg_advisory_unlock`, its result checked) and close the session.
//! Behind a transaction-pooling proxy (PgBouncer `pool_mode = transaction`, detected before
//! anything is touched: pooling.rs) there is no session lock: each migration's transaction takes
//! the lock itself and re-reads django_migrations (txn.rs).

mod apply;
mod connection;
mod ddl_guard;
mod lock;
mod pooling;
mod post_migrate;
#[cfg(target_arch = "wasm32")]
mod session;
mod tx_control;
mod txn;

use anyhow::Context;
use djinit_bundle::graph::{plan, Graph, Key, Planned, Target};
use djinit_bundle::{state, Bundle, Migration};
use djinit_cli::print_line;
use djinit_cli::{Failure, Log};
use djinit_pg::{Client, Config};
use djinit_wait::Kind;
use lockedmigrate::options::Options;
use pooling::Pooling;
use std::collections::HashSet;
use txn::{Protocol, Txn};

const PROG: &str = "lockedmigrate";

fn main() -> std::process::ExitCode {
    djinit_cli::main(PROG, djinit_bundle::classify, run)
}

fn run() -> anyhow::Result<()> {
    let env = |k: &str| std::env::var(k).ok();
    let Some(opts) = Options::parse(djinit_cli::Args::from_env(), &env)?.or_print() else {
        return Ok(());
    };
    let log = Log::new(PROG, opts.common.verbosity);
    if opts.exec.is_some() {
        return Err(Failure::new(
            Kind::Usage,
            "--exec needs the djinit runner (it runs CMD on the host while this component holds the lock through the lock-session export): djinit lockedmigrate --exec -- CMD ARGS...",
        )
        .into());
    }
    let bundle = Bundle::load(opts.bundle.as_deref().unwrap_or(std::path::Path::new("")))?;
    let target = resolve_target(&bundle, opts.target())?;
    let cfg = Config::for_command(&opts.common.database, "djinit lockedmigrate")?;
    log.detail(format!(
        "bundle {} ({} migrations, Django {}), database {}",
        bundle.path.display(),
        bundle.migrations.len(),
        bundle.django,
        cfg.describe()
    ));
    // The DDL guard's blocker samples (ddl_guard.rs), taken by the watch while a statement waits.
    let seen: ddl_guard::Seen = Default::default();
    let sampling = opts
        .guard
        .lock_timeout
        .map(|t| (seen.clone(), ddl_guard::sample_every(t)));
    let (mut client, _) = connection::open(&cfg, &opts, &log, sampling.clone())?;
    check_server_version(&mut client, &bundle)?;

    let read_only = opts.plan || opts.check;
    // Before touching anything: which locking protocol works on this connection (pooling.rs).
    let pooling = if read_only {
        None
    } else {
        Some(pooling::detect(&mut client, &cfg, &opts, &log)?)
    };
    let protocol = match &pooling {
        Some(Pooling::Session { pid }) => {
            lock::acquire(&mut client, opts.lock_id, opts.lock_timeout, &log)?;
            Protocol::Session { pid: pid.clone() }
        }
        Some(Pooling::Transaction { .. }) => {
            // The watch follows a backend pid; here each transaction has its own (txn.rs).
            client.set_watch(None);
            Protocol::Transaction
        }
        None => Protocol::Transaction,
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
    // Read under the lock: what another run applied while we waited is not applied again.
    let recorded = state::recorded(&mut client)?;
    let applied = state::applied(&bundle, &recorded)?;
    let graph = Graph::new(&bundle);

    if opts.prune {
        return prune(
            &mut client,
            &bundle,
            opts.app_label.as_deref().unwrap_or(""),
            &recorded,
            &log,
        );
    }
    let planned = plan(&graph, &target, &applied);
    if opts.plan {
        print_plan(&graph, &planned, &applied);
        if opts.check && !planned.is_empty() {
            return Err(Failure::quiet(Kind::NotMet).into());
        }
        return Ok(());
    }
    if opts.check {
        if planned.is_empty() {
            log.detail("no migrations pending");
            return Ok(());
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
        txn: &txn,
        pooling: pooling.as_ref(),
        bundle: &bundle,
        graph: &graph,
        target: &target,
        planned: &planned,
        applied: &applied,
        opts: &opts,
        log: &log,
    }
    .run(&mut client)?;
    if matches!(txn.protocol, Protocol::Session { .. }) {
        lock::release(&mut client, opts.lock_id, &log)?;
    }
    client.close();
    Ok(())
}

fn resolve_target(bundle: &Bundle, target: Target) -> anyhow::Result<Target> {
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

fn check_server_version(client: &mut Client, bundle: &Bundle) -> anyhow::Result<()> {
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
/// unguarded RunPython or un-exportable RunSQL: `--exec`), `[irreversible]` (no way back).
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
/// is applied, and how to apply (the options, the log).
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
}

impl Migrate<'_> {
    /// Refuse up front what cannot be done, print Django's headings, apply each planned
    /// migration, then add the post_migrate rows when nothing remains unapplied.
    fn run(&self, client: &mut Client) -> anyhow::Result<()> {
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
                if let Some(what) = Migration::unguarded_python(steps).first() {
                    return Err(apply::needs_python(m, what));
                }
                apply::refuse_transaction_control(m, steps)?;
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
        if out {
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
        for (p, m) in planned.iter().zip(&chosen) {
            let start = std::time::Instant::now();
            let mut mode = if opts.fake {
                apply::Mode::Fake
            } else {
                apply::Mode::Run
            };
            if !p.backwards && !opts.fake && opts.fake_initial && apply::soft_applied(client, m)? {
                mode = apply::Mode::Fake;
            }
            let verb = if p.backwards {
                "Unapplying"
            } else {
                "Applying"
            };
            // The migration's own SQL may run for hours: no -t, but watched (connection.rs).
            let task = format!("{} {}", verb.to_lowercase(), m.label());
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
            if out {
                let tail = match (outcome, mode) {
                    (apply::Outcome::AlreadyDone, _) => " SKIPPED (done by another run meanwhile)",
                    (_, apply::Mode::Fake) => " FAKED",
                    _ => " OK",
                };
                let secs = if log.verbosity() >= 2 {
                    format!(" ({:.3}s)", start.elapsed().as_secs_f64())
                } else {
                    String::new()
                };
                print_line(format!("  {verb} {}...{tail}{secs}", m.label()));
            }
        }
        // The rows are those of the fully migrated project: added only when nothing is pending
        // afterwards (a partial target would otherwise get rows for models it does not have yet).
        let mut done = applied.clone();
        for p in planned {
            if p.backwards {
                done.remove(&p.key);
            } else {
                done.insert(p.key.clone());
            }
        }
        if !graph.nodes.keys().all(|k| done.contains(k)) {
            log.detail("post_migrate rows not added: migrations remain unapplied");
        } else {
            post_migrate::apply(client, txn, &bundle.post_migrate, log)?;
        }
        post_migrate::report_not_exported(&bundle.not_exported, log);
        Ok(())
    }
}

fn prune(
    client: &mut Client,
    bundle: &Bundle,
    app: &str,
    recorded: &HashSet<Key>,
    log: &Log,
) -> anyhow::Result<()> {
    let known: HashSet<Key> = bundle
        .migrations
        .iter()
        .map(|m| (m.app.clone(), m.name.clone()))
        .collect();
    let mut to_prune: Vec<&Key> = recorded
        .iter()
        .filter(|k| k.0 == app && !known.contains(*k))
        .collect();
    to_prune.sort();
    let out = log.verbosity() >= 1;
    if out {
        print_line("Pruning migrations:");
    }
    let blocked: Vec<&Migration> = bundle
        .migrations
        .iter()
        .filter(|m| m.replaces.iter().any(|r| to_prune.contains(&r)))
        .collect();
    if !blocked.is_empty() {
        print_line("  Cannot use --prune because the following squashed migrations have their 'replaces' attributes and may not be recorded as applied:");
        for m in blocked {
            print_line(format!("    {}", m.label()));
        }
        return Ok(());
    }
    if to_prune.is_empty() && out {
        print_line("  No migrations to prune.");
    }
    for (a, n) in to_prune {
        client.execute(
            "DELETE FROM django_migrations WHERE app = $1 AND name = $2",
            &[Some(a), Some(n)],
        )?;
        if out {
            print_line(format!("  Pruning {a}.{n} OK"));
        }
    }
    Ok(())
}
