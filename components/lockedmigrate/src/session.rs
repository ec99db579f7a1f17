//! The `djinit:commands/lock-session` export (wit/lock-session.wit): a host takes the advisory
//! lock through this component, runs something natively, and releases it
//! (`djinit lockedmigrate --exec -- CMD`). The session lives in this instance between the calls.

use crate::pooling::{self, Pooling};
use crate::{connection, lock};
use djinit_cli::Log;
use djinit_pg::{Client, Config};
use djinit_wait::Deadline;
use lockedmigrate::options::Options;
use std::cell::RefCell;
use std::time::Duration;

wit_bindgen::generate!({
    path: "../../wit",
    world: "lock-session-provider",
});

use exports::djinit::commands::lock_session::{Failure, Guest};

thread_local! {
    static SESSION: RefCell<Option<(Client, i64)>> = const { RefCell::new(None) };
}

struct Provider;

/// Unlocking is one statement; after this the session is closed anyway, which releases the lock.
const RELEASE_LIMIT: Duration = Duration::from_secs(10);

fn failure(e: anyhow::Error) -> Failure {
    Failure {
        code: djinit_cli::exit::for_error(&e, djinit_bundle::classify) as u8,
        message: djinit_cli::one_line(&format!("{e:#}")),
    }
}

fn acquire(args: Vec<String>) -> anyhow::Result<String> {
    if SESSION.with(|s| s.borrow().is_some()) {
        return Err(
            djinit_cli::UsageError("the lock is already held by this instance".into()).into(),
        );
    }
    // lockedmigrate's command line; `--exec` (added when missing) makes the bundle optional.
    let mut args = args;
    if !args.iter().any(|a| a == "--exec") {
        args.extend(["--exec", "--", "host"].map(String::from));
    }
    let env = |k: &str| std::env::var(k).ok();
    let Some(opts) = Options::parse(djinit_cli::Args::from_iter(args), &env)?.run() else {
        return Err(
            djinit_cli::UsageError("--help and --version do not take a lock".into()).into(),
        );
    };
    let log = Log::new("lockedmigrate", opts.common.verbosity);
    let cfg = Config::for_command(&opts.common.database, "djinit lockedmigrate --exec")?;
    // Every exchange bounded by -t (the lock wait polls); idle while CMD runs.
    let (mut client, pid) = connection::open(&cfg, &opts, &log, None)?;
    if let Pooling::Transaction { evidence } = pooling::detect(&mut client, &cfg, &opts, &log)? {
        return Err(djinit_cli::Failure::new(
            djinit_wait::Kind::Config,
            format!(
                "--exec needs a session that holds the advisory lock while CMD runs, and this connection is pooled per transaction ({evidence}); nothing was run. Use a direct or session-pooled connection for migrations, e.g. DATABASE_URL_MIGRATE=postgres://...@db-host:5432/app and `-d migrate`"
            ),
        )
        .into());
    }
    lock::acquire(&mut client, opts.lock_id, opts.lock_timeout, &log)?;
    let what = format!(
        "advisory lock {} held by session pid {pid} on {}",
        opts.lock_id,
        cfg.describe()
    );
    SESSION.with(|s| *s.borrow_mut() = Some((client, opts.lock_id)));
    Ok(what)
}

impl Guest for Provider {
    fn acquire(args: Vec<String>) -> Result<String, Failure> {
        acquire(args).map_err(failure)
    }

    fn release() -> Result<(), Failure> {
        let Some((mut client, id)) = SESSION.with(|s| s.borrow_mut().take()) else {
            return Ok(());
        };
        let key = id.to_string();
        // Bounded: a server that stopped answering must not hold the host's release forever.
        client.set_deadline(Deadline::after(RELEASE_LIMIT));
        let r = client.query("SELECT pg_advisory_unlock($1::bigint)", &[Some(&key)]);
        client.close(); // ending the session releases the lock in any case
        match r {
            Ok(rows) if rows.first().and_then(|r| r.get(0)) == Some("t") => Ok(()),
            // CMD ran without the lock we believed we held: say so, as a failure of the run.
            Ok(_) => Err(failure(
                djinit_cli::Failure::new(
                    djinit_wait::Kind::Unavailable,
                    format!("pg_advisory_unlock({id}) returned false: the session did not hold the lock at the end (the connection is not one session: a transaction-pooling proxy, or the server restarted), so CMD may have run without it. Use a direct or session-pooled URL for migrations"),
                )
                .into(),
            )),
            Err(e) => Err(failure(e.into())),
        }
    }
}

export!(Provider);
