//! `lockedmigrate`: apply a migration bundle (`manage.py djinit_export`) under a PostgreSQL
//! advisory lock. Compatible with django-kubernetes' `manage.py lockedmigrate` (same flags, same
//! default lock key 1000, so the two exclude each other), with no Python at deploy time.
//!
//! The work is in [`migrate`] (order of work there); `main` reads the options and the bundle,
//! starts the session and runs the plan, then releases the lock. `--exec` and `--python` run
//! through the runner, which drives the lock-session export ([`session`]) instead of `main`.
//! Behind a transaction-pooling proxy (PgBouncer `pool_mode = transaction`, detected before
//! anything is touched: pooling.rs) there is no session lock: each migration's transaction takes
//! the lock itself and re-reads django_migrations (txn.rs).

mod apply;
mod connection;
mod ddl_guard;
mod handover;
mod lock;
mod migrate;
mod pooling;
mod post_migrate;
mod prune;
#[cfg(target_arch = "wasm32")]
mod session;
mod tx_control;
mod txn;

use djinit_bundle::Bundle;
use djinit_cli::CommandLine;
use djinit_cli::{Failure, Log};
use djinit_pg::Config;
use djinit_wait::Kind;
use lockedmigrate::options::Options;
use migrate::{Locking, Run};
use txn::Protocol;

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
    let read_only = opts.plan || opts.check;
    if opts.exec.is_some() {
        return Err(Failure::new(
            Kind::Usage,
            "--exec needs the djinit runner (it runs CMD on the host while this component holds the lock through the lock-session export): djinit lockedmigrate --exec -- CMD ARGS...",
        )
        .into());
    }
    if opts.python.is_some() && !read_only {
        return Err(Failure::new(
            Kind::Usage,
            "--python needs the djinit runner (it runs Django on the host for each Python migration while this component holds the lock, through the lock-session export): djinit lockedmigrate --python \"python manage.py\"",
        )
        .into());
    }
    let bundle = Bundle::load(opts.bundle.as_deref().unwrap_or(std::path::Path::new("")))?;
    let target = migrate::resolve_target(&bundle, opts.target())?;
    let cfg = Config::for_command(&opts.common.database, "djinit lockedmigrate")?;
    log.detail(format!(
        "bundle {} ({} migrations, Django {}), database {}",
        bundle.path.display(),
        bundle.migrations.len(),
        bundle.django,
        cfg.describe()
    ));
    let locking = if read_only {
        Locking::ReadOnly
    } else {
        Locking::Any
    };
    let mut s = migrate::start(&cfg, &opts, &log, Some(&bundle), locking)?;
    Run {
        txn: &s.txn,
        pooling: s.pooling.as_ref(),
        bundle: &bundle,
        target: &target,
        opts: &opts,
        log: &log,
    }
    .go(&mut s.client, None)?;
    if matches!(s.txn.protocol, Protocol::Session { .. }) {
        lock::release(&mut s.client, opts.lock_id, &log)?;
    }
    s.client.close();
    Ok(())
}
