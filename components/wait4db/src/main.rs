//! `wait4db`: wait until the database is ready and stays ready.
//!
//! Ready = connect, authenticate and `SELECT 1` succeed. Stable = ready at every probe for the
//! whole `--stable` window; any failure resets the window and waiting resumes with a new
//! connection. `--timeout` is a hard deadline for everything, hung connections included.
//! Run it: `djinit wait4db -t 60` (see README), or `wasmtime run -S inherit-network
//! -S allow-ip-name-lookup --env DATABASE_URL wait4db.wasm`.

use anyhow::Context;
use djinit_bundle::wait::NotMigrated;
use djinit_cli::Log;
use djinit_pg::{Client, Config};
use djinit_wait::{wait_stable, Deadline};
use std::time::Duration;
use wait4db::Options;

fn main() -> std::process::ExitCode {
    djinit_cli::main("wait4db", djinit_bundle::classify, run)
}

fn run() -> anyhow::Result<()> {
    let env = |k: &str| std::env::var(k).ok();
    let Some(opts) = Options::parse(djinit_cli::Args::from_env(), &env)?.or_print() else {
        return Ok(());
    };
    let log = Log::new("wait4db", opts.common.verbosity);
    let cfg = Config::for_command(&opts.common.database, "djinit wait4db")?;
    log.detail(format!(
        "waiting for {} (timeout {}s, stable {}s, interval {}s)",
        cfg.describe(),
        opts.timeout.as_secs_f64(),
        opts.stable.as_secs_f64(),
        opts.interval.as_secs_f64()
    ));
    // --migrated: the bundle is read once, before waiting (66 missing, 65 invalid).
    let bundle = if opts.migrated {
        let dir = opts.bundle.as_deref().ok_or_else(|| {
            djinit_cli::UsageError("--migrated needs --bundle DIR or DJINIT_MIGRATIONS".into())
        })?;
        Some(djinit_bundle::Bundle::load(dir)?)
    } else {
        None
    };
    let deadline = Deadline::after(opts.timeout);
    let mut probes = 0u32;
    wait_stable(
        deadline,
        opts.interval,
        opts.stable,
        |event| log.retry_event(1, &event),
        |d| {
            probes += 1;
            probe(&cfg, d, &log, bundle.as_ref())
        },
    )
    .map_err(anyhow::Error::new)
    .with_context(|| format!("database {} not ready", cfg.describe()))?;
    log.info(format!(
        "database {} is ready ({} probe{}, {:.2}s)",
        cfg.describe(),
        probes,
        if probes == 1 { "" } else { "s" },
        log.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// How long one probe may take when `connect_timeout`/`PGCONNECT_TIMEOUT` does not say: a server
/// that accepts TCP and stays silent is probed again instead of holding the whole deadline.
const PROBE_LIMIT: Duration = Duration::from_secs(10);

/// One probe: a fresh connection, `SELECT 1`, with `--migrated` nothing pending, Terminate.
fn probe(
    cfg: &Config,
    deadline: Deadline,
    log: &Log,
    bundle: Option<&djinit_bundle::Bundle>,
) -> Result<(), NotMigrated> {
    let deadline = deadline.min(Deadline::after(cfg.connect_timeout.unwrap_or(PROBE_LIMIT)));
    let mut client = Client::connect(cfg, deadline)?;
    let rows = client.query("SELECT 1", &[])?;
    if rows.first().and_then(|r| r.get(0)) != Some("1") {
        return Err(djinit_pg::Error::Protocol {
            addr: client.addr().to_string(),
            during: "checking SELECT 1",
            detail: "unexpected answer".into(),
        }
        .into());
    }
    if let Some(bundle) = bundle {
        djinit_bundle::wait::probe(&mut client, bundle)?;
    }
    log.debug(format!(
        "probe ok: {} (server {}, auth {})",
        client.addr(),
        client.server_version().unwrap_or("?"),
        client.auth_method()
    ));
    client.close();
    Ok(())
}
