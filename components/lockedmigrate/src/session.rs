//! The `djinit:commands/lock-session` export (wit/lock-session.wit): a host takes the advisory
//! lock through this component, runs something natively, and releases it
//! (`djinit lockedmigrate --exec -- CMD`); or, between acquiring and releasing, calls `migrate`
//! until it returns no more migrations for Django (`--python CMD`, handover.rs). The session
//! lives in this instance between the calls.

use crate::migrate::{self, Handing, Locking, Run, Started};
use djinit_bundle::graph::Target;
use djinit_bundle::Bundle;
use djinit_cli::CommandLine;
use djinit_cli::Log;
use djinit_pg::Config;
use djinit_wait::Deadline;
use lockedmigrate::options::Options;
use std::cell::RefCell;
use std::time::Duration;

wit_bindgen::generate!({
    path: "../../wit",
    world: "lock-session-provider",
});

use exports::djinit::commands::lock_session::{DjangoStep, Failure, Guest};

/// The session holding the lock, and what `--python`'s calls of `migrate` share.
struct Held {
    started: Started,
    /// The command line `acquire` was given, parsed; `migrate` takes the same one.
    args: Vec<String>,
    opts: Options,
    log: Log,
    /// `--python`: the bundle and target, read by the first `migrate`.
    bundle: Option<(Bundle, Target)>,
    handing: Handing,
}

thread_local! {
    static SESSION: RefCell<Option<Held>> = const { RefCell::new(None) };
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

/// lockedmigrate's command line as the host passes it (`--exec` added when neither `--exec`
/// nor `--python` is there: it makes the bundle optional).
fn options(args: Vec<String>) -> anyhow::Result<Options> {
    let mut args = args;
    if !args
        .iter()
        .any(|a| a == "--exec" || a.starts_with("--python"))
    {
        args.extend(["--exec", "--", "host"].map(String::from));
    }
    let env = |k: &str| std::env::var(k).ok();
    let Some(opts) = Options::parse(djinit_cli::Args::from_iter(args), &env)?.run() else {
        return Err(
            djinit_cli::UsageError("--help and --version do not take a lock".into()).into(),
        );
    };
    Ok(opts)
}

fn acquire(args: Vec<String>) -> anyhow::Result<String> {
    if SESSION.with(|s| s.borrow().is_some()) {
        return Err(
            djinit_cli::UsageError("the lock is already held by this instance".into()).into(),
        );
    }
    let opts = options(args.clone())?;
    let log = Log::new("lockedmigrate", opts.common.verbosity);
    let (how, why) = if opts.python.is_some() {
        (
            "djinit lockedmigrate --python",
            "--python needs a session that holds the advisory lock while Django runs each Python migration",
        )
    } else {
        (
            "djinit lockedmigrate --exec",
            "--exec needs a session that holds the advisory lock while CMD runs",
        )
    };
    let cfg = Config::for_command(&opts.common.database, how)?;
    // Every exchange bounded by -t (the lock wait polls); idle while the host's command runs.
    let started = migrate::start(&cfg, &opts, &log, None, Locking::Session(why))?;
    let what = format!(
        "advisory lock {} held by session pid {} on {}",
        opts.lock_id,
        started.pid,
        cfg.describe()
    );
    SESSION.with(|s| {
        *s.borrow_mut() = Some(Held {
            started,
            args,
            opts,
            log,
            bundle: None,
            handing: Handing::default(),
        })
    });
    Ok(what)
}

fn migrate(args: Vec<String>) -> anyhow::Result<Option<DjangoStep>> {
    SESSION.with(|s| {
        let mut s = s.borrow_mut();
        let Some(held) = s.as_mut() else {
            return Err(djinit_cli::UsageError(
                "migrate before acquire: the lock is not held by this instance".into(),
            )
            .into());
        };
        if held.opts.python.is_none() || args != held.args {
            return Err(djinit_cli::UsageError(
                "migrate hands migrations to Django: acquire with --python CMD, and migrate with the same arguments".into(),
            )
            .into());
        }
        if held.bundle.is_none() {
            let dir = held.opts.bundle.clone().unwrap_or_default();
            let bundle = Bundle::load(&dir)?;
            migrate::check_server_version(&mut held.started.client, &bundle)?;
            let target = migrate::resolve_target(&bundle, held.opts.target())?;
            held.log.detail(format!(
                "bundle {} ({} migrations, Django {}), Python migrations handed to {}",
                bundle.path.display(),
                bundle.migrations.len(),
                bundle.django,
                held.opts.python.as_deref().unwrap_or_default().join(" ")
            ));
            held.bundle = Some((bundle, target));
        }
        let Held {
            started,
            args: _,
            opts,
            log,
            bundle: Some((bundle, target)),
            handing,
        } = held
        else {
            unreachable!("loaded above")
        };
        let step = Run {
            txn: &started.txn,
            pooling: started.pooling.as_ref(),
            bundle,
            target,
            opts,
            log,
        }
        .go(&mut started.client, Some(handing))?;
        Ok(step.map(|h| {
            handing.django_ran |= !h.receivers_only;
            handing.last = Some((h.clone(), std::time::Instant::now()));
            DjangoStep {
                label: h.label(),
                backwards: h.backwards,
                args: h.args,
                reason: h.reason,
            }
        }))
    })
}

impl Guest for Provider {
    fn acquire(args: Vec<String>) -> Result<String, Failure> {
        acquire(args).map_err(failure)
    }

    fn migrate(args: Vec<String>) -> Result<Option<DjangoStep>, Failure> {
        migrate(args).map_err(failure)
    }

    fn release() -> Result<(), Failure> {
        let Some(held) = SESSION.with(|s| s.borrow_mut().take()) else {
            return Ok(());
        };
        let (mut client, id) = (held.started.client, held.opts.lock_id);
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
