//! `checkmigrations`: are all migrations of the bundle recorded in `django_migrations`?
//! Exit 0 yes ("Migrations complete."), 1 no. With `--wait`, checks every `--interval` until
//! yes or `--timeout`; unlike the Python command, connection errors while waiting are retried
//! (only transient ones, through `djinit_wait::retry`) and the wait is always bounded.

use checkmigrations::Options;
use djinit_bundle::wait::{probe, NotMigrated};
use djinit_bundle::Bundle;
use djinit_cli::{Failure, Log};
use djinit_pg::{Client, Config};
use djinit_wait::{retry, Deadline, Kind};

const PROG: &str = "checkmigrations";

fn main() -> std::process::ExitCode {
    djinit_cli::main(PROG, djinit_bundle::classify, run)
}

fn check(cfg: &Config, bundle: &Bundle, deadline: Deadline) -> Result<(), NotMigrated> {
    let mut client = Client::connect(cfg, deadline)?;
    probe(&mut client, bundle)?;
    client.close();
    Ok(())
}

fn run() -> anyhow::Result<()> {
    let env = |k: &str| std::env::var(k).ok();
    let Some(opts) = Options::parse(djinit_cli::Args::from_env(), &env)?.or_print() else {
        return Ok(());
    };
    let log = Log::new(PROG, opts.common.verbosity);
    let bundle = Bundle::load(&opts.bundle)?;
    let cfg = Config::for_command(&opts.common.database, "djinit checkmigrations")?;
    let deadline = Deadline::after(opts.timeout);
    let result = if opts.wait {
        let mut last_pending = None;
        let r = retry(
            deadline,
            opts.interval,
            |e| log.retry_event(3, &e),
            |d| {
                let r = check(&cfg, &bundle, d);
                last_pending = match &r {
                    Err(NotMigrated::Pending(p)) => Some(p.clone()),
                    // The attempt our own deadline cut short says nothing new: keep the last
                    // answer (pending ends as 1, not as a timeout).
                    Err(NotMigrated::Pg(e))
                        if e.kind() == djinit_pg::ErrorKind::Timeout && d.passed() =>
                    {
                        last_pending.take()
                    }
                    _ => None,
                };
                r
            },
        );
        match (r, last_pending) {
            (Err(NotMigrated::GaveUp(_)), Some(p)) => Err(NotMigrated::Pending(p)),
            (r, _) => r,
        }
    } else {
        check(&cfg, &bundle, deadline)
    };
    match result {
        Ok(()) => {
            if log.verbosity() >= 1 {
                println!("Migrations complete.");
            }
            Ok(())
        }
        Err(NotMigrated::Pending(p)) => {
            for m in &p {
                log.detail(format!("pending: {m}"));
            }
            Err(Failure::new(
                Kind::NotMet,
                format!(
                    "{} of {} migrations pending on {}",
                    p.len(),
                    bundle.migrations.len(),
                    cfg.describe()
                ),
            )
            .into())
        }
        Err(e) => {
            Err(anyhow::Error::new(e).context(format!("checking migrations on {}", cfg.describe())))
        }
    }
}
