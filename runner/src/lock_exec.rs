//! `djinit lockedmigrate [OPTIONS] --exec -- CMD ARGS...`: hold lockedmigrate's advisory lock
//! while CMD runs natively, for apps whose migrations need Python
//! (`djinit lockedmigrate --exec -- python manage.py migrate --noinput`).
//!
//! The lock is taken by the lockedmigrate component through its `djinit:commands/lock-session`
//! export (wit/lock-session.wit), on its own database session, with the component's usual
//! grants (database variables, TCP to the database) and waiting rules (`-L`, `--lock-timeout`,
//! progress lines naming the holder). The runner then runs CMD as an ordinary child process:
//! NOT sandboxed, with the runner's environment, stdio and privileges (it is the user's own
//! command), in a process group of its own ([`crate::child`]). When CMD exits the runner
//! releases the lock and exits with CMD's exit code (128+N when CMD was killed by signal N).
//!
//! Stopping: SIGTERM/SIGINT and `--timeout` reach CMD's whole process group (SIGTERM, or SIGINT
//! for SIGINT), SIGKILL follows after [`crate::child::GRACE`] (10 s) or at a second signal; the
//! lock is released only once the group is gone; the exit code is then 143, 130 or 71. If the
//! runner dies, the database session ends and the server releases the lock, and the kernel kills
//! CMD (`PR_SET_PDEATHSIG`).

use std::time::Duration;

use crate::child::{self, Group};
use crate::describe::wasm_error;
use crate::exec::{self, Host, Run};
use djinit_cli::{ExitCode, Failure};
use djinit_wait::Kind;

wasmtime::component::bindgen!({
    path: "../wit",
    world: "lock-session-provider",
    exports: { default: async },
});

/// Releasing the lock: a statement and closing the session; after a stop request the rest of
/// Kubernetes' grace period is short, and the lock goes with the session in any case.
const RELEASE_LIMIT: Duration = Duration::from_secs(30);
const RELEASE_LIMIT_STOPPING: Duration = Duration::from_secs(5);

fn failure(f: exports::djinit::commands::lock_session::Failure) -> anyhow::Error {
    // The component's code, from the same table: passed on as the runner's own.
    let kind = ExitCode::from_code(i32::from(f.code))
        .and_then(djinit_cli::exit::kind_for_code)
        .unwrap_or(Kind::Internal);
    Failure::new(kind, djinit_cli::one_line(&f.message)).into()
}

/// Acquire through the component (with lockedmigrate's whole command line: its parser takes
/// `--exec`'s CMD and ignores it), run `cmd`, release; `cmd`'s exit code. The command table's
/// native hook for lockedmigrate; `cmd` is what lockedmigrate's `needs` reports as
/// `host_command`.
pub fn run(run: Run, cmd: Vec<String>) -> anyhow::Result<u8> {
    let lock_args = run.argv[1..].to_vec();
    let Some(program) = cmd.first().cloned() else {
        return Err(
            djinit_cli::UsageError("--exec needs a command: --exec -- CMD ARGS...".into()).into(),
        );
    };
    let p = exec::prepare(&run)?;
    let stopper = &p.stopper;
    let stopped = |what: &str| -> anyhow::Error {
        let reason = stopper.reason().expect("stopped with a reason");
        Failure::new(
            reason.kind(),
            format!("lockedmigrate --exec {}{what}", reason.describe()),
        )
        .into()
    };
    p.rt.block_on(async {
        let mut store = exec::store(&p.engine, p.host);
        let linker = exec::linker(&p.engine)
            .map_err(|e| anyhow::anyhow!("cannot link WASI: {}", wasm_error(&e)))?;
        let provider = LockSessionProvider::instantiate_async(&mut store, &p.component, &linker)
            .await
            .map_err(|e| {
                Failure::new(
                    Kind::Internal,
                    format!(
                        "the lockedmigrate component has no lock-session export: {}",
                        wasm_error(&e)
                    ),
                )
            })?;
        let session = provider.djinit_commands_lock_session();
        let acquired = tokio::select! {
            biased;
            _ = stopper.stopped() => None,
            r = session.call_acquire(&mut store, &lock_args) => Some(r),
        };
        let held = match acquired {
            None => return Err(stopped(" while waiting for the lock")),
            Some(Err(_)) if store.data().limits.exceeded() => {
                return Err(Failure::new(
                    Kind::Limit,
                    format!(
                        "lockedmigrate --exec stopped: memory limit of {} MiB exceeded (--memory)",
                        run.memory_mib
                    ),
                )
                .into());
            }
            Some(Err(e)) => {
                return Err(Failure::new(
                    Kind::Internal,
                    format!(
                        "lockedmigrate component failed while taking the lock: {}",
                        wasm_error(&e)
                    ),
                )
                .into())
            }
            Some(Ok(r)) => r.map_err(failure)?,
        };
        // A stop request that came while the lock was being taken: do not start CMD.
        let ended = if stopper.reason().is_some() {
            None
        } else {
            crate::stdio::note!("{held}; running {}", cmd.join(" "));
            // The guest is idle meanwhile; its session keeps the lock.
            let mut group = match Group::spawn(&program, &cmd[1..]) {
                Ok(g) => g,
                Err(e) => {
                    release(&mut store, session, RELEASE_LIMIT).await;
                    return Err(Failure::new(
                        Kind::NoInput,
                        format!("cannot run {program}: {e}"),
                    )
                    .into());
                }
            };
            Some(group.supervise(stopper).await)
        };
        if ended.as_ref().is_some_and(|e| e.survivors) {
            crate::stdio::note!(
                "processes of {program}'s group still exist {} s after SIGKILL (uninterruptible sleep?); releasing the lock anyway",
                child::KILL_WAIT.as_secs()
            );
        }
        // A stop request bumped the epoch: let the guest run again for the release.
        store.set_epoch_deadline(1);
        let limit = if stopper.reason().is_some() {
            RELEASE_LIMIT_STOPPING
        } else {
            RELEASE_LIMIT
        };
        release(&mut store, session, limit).await;
        match (stopper.reason(), ended) {
            (Some(_), Some(e)) => Err(stopped(&format!("; {program} {}", e.describe()))),
            (Some(_), None) => Err(stopped(&format!(" before {program} started"))),
            (None, Some(e)) => Ok(e.exit_code()),
            (None, None) => unreachable!("CMD runs unless stopped"),
        }
    })
}

/// Release the lock, bounded by `limit`; one line on stderr says how it went.
async fn release(
    store: &mut wasmtime::Store<Host>,
    session: &exports::djinit::commands::lock_session::Guest,
    limit: Duration,
) {
    match tokio::time::timeout(limit, session.call_release(store)).await {
        Ok(Ok(Ok(()))) => crate::stdio::note!("advisory lock released"),
        Ok(Ok(Err(f))) => crate::stdio::note!(
            "releasing the lock failed ({}); it goes with the session",
            djinit_cli::one_line(&f.message)
        ),
        Ok(Err(e)) => crate::stdio::note!(
            "releasing the lock failed ({}); it goes with the session",
            wasm_error(&e)
        ),
        Err(_) => crate::stdio::note!(
            "releasing the lock took more than {} s; it goes with the session",
            limit.as_secs()
        ),
    }
}
