//! `djinit lockedmigrate [OPTIONS] --exec -- CMD ARGS...`: hold lockedmigrate's advisory lock
//! while CMD runs natively, for apps whose migrations need Python
//! (`djinit lockedmigrate --exec -- python manage.py migrate --noinput`).
//!
//! The lock is taken by the lockedmigrate component through its `djinit:commands/lock-session`
//! export (wit/lock-session.wit), on its own database session, with the component's usual
//! grants (database variables, TCP to the database) and waiting rules (`-L`, `--lock-timeout`,
//! progress lines naming the holder). The runner then runs CMD as an ordinary child process:
//! NOT sandboxed, with the runner's environment, stdio and privileges (it is the user's own
//! command). When CMD exits the runner releases the lock and exits with CMD's exit code
//! (128+N when CMD was killed by signal N). If the runner dies, the database session ends and
//! the server releases the lock.

use std::time::Duration;

use anyhow::Context;
use djinit_cli::{ExitCode, Failure};
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::Store;

use crate::exec::{self, Host, Run};
use crate::limits::MemoryLimit;
use crate::policy;
use crate::stop::Stopper;

wasmtime::component::bindgen!({
    path: "../wit",
    world: "lock-session-provider",
    exports: { default: async },
});

/// Split lockedmigrate's arguments at `--exec`: (the options for the lock, CMD and its args).
/// `None` when there is no `--exec`.
pub fn split(args: &[String]) -> Option<(Vec<String>, Vec<String>)> {
    let at = args.iter().position(|a| a == "--exec")?;
    let lock_args = args[..at].to_vec();
    let mut cmd = args[at + 1..].to_vec();
    if cmd.first().map(String::as_str) == Some("--") {
        cmd.remove(0);
    }
    Some((lock_args, cmd))
}

fn failure(f: exports::djinit::commands::lock_session::Failure) -> anyhow::Error {
    let code = ExitCode::from_code(i32::from(f.code)).unwrap_or(ExitCode::Software);
    Failure::new(code, f.message).into()
}

/// Acquire through the component, run `cmd`, release; `cmd`'s exit code.
pub fn run(run: Run, lock_args: Vec<String>, cmd: Vec<String>) -> anyhow::Result<u8> {
    let Some(program) = cmd.first().cloned() else {
        return Err(
            djinit_cli::UsageError("--exec needs a command: --exec -- CMD ARGS...".into()).into(),
        );
    };
    let engine = djinit_engine::engine()
        .map_err(|e| anyhow::anyhow!("cannot configure the wasm engine: {e}"))?;
    let stopper = Stopper::start(&engine, run.timeout)?;
    let component = exec::load(&engine, &run.source, &run.label)?;
    let wasi = policy::wasi_ctx(&run.argv, &run.env, &run.grants)?;
    let limit = usize::try_from(run.memory_mib << 20).unwrap_or(usize::MAX);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .context("cannot start the event loop")?;
    rt.block_on(async {
        let mut store = Store::new(
            &engine,
            Host {
                wasi,
                table: ResourceTable::new(),
                limits: MemoryLimit::new(limit),
            },
        );
        store.limiter(|h| &mut h.limits);
        store.set_epoch_deadline(1);
        store.epoch_deadline_trap();
        let mut linker = Linker::<Host>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| anyhow::anyhow!("cannot link WASI: {e:#}"))?;
        let provider = LockSessionProvider::instantiate_async(&mut store, &component, &linker)
            .await
            .map_err(|e| {
                Failure::new(
                    ExitCode::Software,
                    format!("the lockedmigrate component has no lock-session export: {e:#}"),
                )
            })?;
        let session = provider.djinit_commands_lock_session();
        let acquired = tokio::select! {
            biased;
            _ = stopper.stopped() => None,
            r = session.call_acquire(&mut store, &lock_args) => Some(r),
        };
        let held = match acquired {
            None => {
                let reason = stopper.reason().expect("stopped with a reason");
                return Err(Failure::new(
                    reason.exit_code(),
                    format!("lockedmigrate --exec {}", reason.describe()),
                )
                .into());
            }
            Some(r) => r
                .map_err(|e| {
                    Failure::new(
                        ExitCode::Software,
                        format!("lockedmigrate component failed while taking the lock: {e:#}"),
                    )
                })?
                .map_err(failure)?,
        };
        eprintln!("djinit: {held}; running {}", cmd.join(" "));
        // The guest is idle meanwhile; its session keeps the lock.
        let status = std::process::Command::new(&program)
            .args(&cmd[1..])
            .status();
        // Bound the release: the session ends with the process in any case.
        let released =
            tokio::time::timeout(Duration::from_secs(30), session.call_release(&mut store)).await;
        let status = status
            .map_err(|e| Failure::new(ExitCode::NoInput, format!("cannot run {program}: {e}")))?;
        match released {
            Ok(Ok(Ok(()))) => eprintln!("djinit: advisory lock released"),
            Ok(Ok(Err(f))) => eprintln!(
                "djinit: releasing the lock failed ({}); it goes with the session",
                f.message
            ),
            Ok(Err(e)) => {
                eprintln!("djinit: releasing the lock failed ({e}); it goes with the session")
            }
            Err(_) => eprintln!("djinit: releasing the lock timed out; it goes with the session"),
        }
        use std::os::unix::process::ExitStatusExt;
        Ok(match (status.code(), status.signal()) {
            (Some(c), _) => u8::try_from(c).unwrap_or(1),
            (None, Some(sig)) => 128u8.saturating_add(u8::try_from(sig).unwrap_or(0)),
            _ => 1,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_exec() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(split(&v(&["-L", "5"])), None);
        assert_eq!(
            split(&v(&[
                "-L",
                "5",
                "--exec",
                "--",
                "python",
                "manage.py",
                "migrate"
            ])),
            Some((v(&["-L", "5"]), v(&["python", "manage.py", "migrate"])))
        );
        assert_eq!(split(&v(&["--exec", "true"])), Some((vec![], v(&["true"]))));
    }
}
