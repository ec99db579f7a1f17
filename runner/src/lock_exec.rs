//! `djinit lockedmigrate [OPTIONS] --exec -- CMD ARGS...`: hold lockedmigrate's advisory lock
//! while CMD runs natively, for apps whose migrations need Python
//! (`djinit lockedmigrate --exec -- python manage.py migrate --noinput`).
//! `djinit lockedmigrate [OPTIONS] --python CMD`: hold it while the component applies the SQL
//! migrations itself and CMD runs Django for each migration that needs Python, one at a time
//! (`CMD migrate --noinput -v N APP TARGET`, [`Steps`]).
//!
//! The lock is taken by the lockedmigrate component through its `djinit:commands/lock-session`
//! export (wit/lock-session.wit), on its own database session, with the component's usual
//! grants (database variables, TCP to the database) and waiting rules (`-L`, `--lock-timeout`,
//! progress lines naming the holder). The runner then runs CMD as an ordinary child process:
//! NOT sandboxed, with the runner's environment, stdio and privileges (it is the user's own
//! command), in a process group of its own ([`crate::child`]). With `--exec`, when CMD exits the
//! runner releases the lock and exits with CMD's exit code (128+N when CMD was killed by signal
//! N); with `--python`, a Django step that fails ends the run (65) after the release.
//!
//! Stopping: SIGTERM/SIGINT and `--timeout` reach CMD's whole process group (SIGTERM, or SIGINT
//! for SIGINT), SIGKILL follows after [`crate::child::GRACE`] (10 s) or at a second signal; the
//! lock is released only once the group is gone; the exit code is then 143, 130 or 71. If the
//! runner dies, the database session ends and the server releases the lock, and the kernel kills
//! CMD (`PR_SET_PDEATHSIG`).

use std::time::Duration;

use crate::child::{self, Ended, Group};
use crate::describe::wasm_error;
use crate::exec::{self, Host, Run};
use crate::stop::Stopper;
use djinit_cli::{ExitCode, Failure, HostCommand, HostRun};
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
/// `--exec`'s or `--python`'s CMD and ignores it), run `cmd` as it says, release. The command
/// table's native hook for lockedmigrate; `cmd` is what lockedmigrate's `needs` reports as
/// `host_command`. [`HostRun::Once`] (`--exec`): CMD's exit code. [`HostRun::PerStep`]
/// (`--python`): 0 when the plan is done ([`django_steps`]).
pub fn run(run: Run, cmd: HostCommand) -> anyhow::Result<u8> {
    let lock_args = run.argv[1..].to_vec();
    let Some(program) = cmd.argv.first().cloned() else {
        return Err(
            djinit_cli::UsageError("--exec needs a command: --exec -- CMD ARGS...".into()).into(),
        );
    };
    let how = match cmd.when {
        HostRun::Once => "lockedmigrate --exec",
        HostRun::PerStep => "lockedmigrate --python",
    };
    let p = exec::prepare(&run)?;
    let stopper = &p.stopper;
    let stopped = |what: &str| stopped(stopper, how, what);
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
            Some(r) => guest_result(&store, r, run.memory_mib, how, "while taking the lock")?,
        };
        // A stop request that came while the lock was being taken: run nothing.
        let result = if stopper.reason().is_some() {
            Err(stopped(&format!(" before {program} started")))
        } else {
            match cmd.when {
                HostRun::Once => {
                    crate::stdio::note!("{held}; running {}", cmd.argv.join(" "));
                    // The guest is idle meanwhile; its session keeps the lock.
                    once(&cmd.argv, stopper, how).await
                }
                HostRun::PerStep => {
                    crate::stdio::note!(
                        "{held}; migrations that need Python go to {}",
                        cmd.argv.join(" ")
                    );
                    let steps = Steps {
                        session,
                        lock_args: &lock_args,
                        argv: &cmd.argv,
                        memory_mib: run.memory_mib,
                    };
                    steps.run(&mut store, stopper).await
                }
            }
        };
        // A stop request bumped the epoch: let the guest run again for the release.
        store.set_epoch_deadline(1);
        let limit = if stopper.reason().is_some() {
            RELEASE_LIMIT_STOPPING
        } else {
            RELEASE_LIMIT
        };
        release(&mut store, session, limit).await;
        result
    })
}

/// "lockedmigrate --exec stopped by SIGTERM{what}" (the stop request's kind and words).
fn stopped(stopper: &Stopper, how: &str, what: &str) -> anyhow::Error {
    let reason = stopper.reason().expect("stopped with a reason");
    Failure::new(reason.kind(), format!("{how} {}{what}", reason.describe())).into()
}

/// A call into the guest: its trap (memory limit or a bug) or its failure as the runner's error.
fn guest_result<T>(
    store: &wasmtime::Store<Host>,
    r: wasmtime::Result<Result<T, exports::djinit::commands::lock_session::Failure>>,
    memory_mib: u64,
    how: &str,
    doing: &str,
) -> anyhow::Result<T> {
    match r {
        Err(_) if store.data().limits.exceeded() => Err(Failure::new(
            Kind::Limit,
            format!("{how} stopped: memory limit of {memory_mib} MiB exceeded (--memory)"),
        )
        .into()),
        Err(e) => Err(Failure::new(
            Kind::Internal,
            format!("lockedmigrate component failed {doing}: {}", wasm_error(&e)),
        )
        .into()),
        Ok(r) => r.map_err(failure),
    }
}

/// The host's command could not be started (not found, not executable): 66.
fn cannot_run(program: &str, e: std::io::Error) -> Failure {
    Failure::new(Kind::NoInput, format!("cannot run {program}: {e}"))
}

/// Run `argv` in a process group of its own until it ends or a stop request ends it.
async fn supervised(argv: &[String], stopper: &Stopper) -> anyhow::Result<Ended> {
    let program = &argv[0];
    let mut group = Group::spawn(program, &argv[1..]).map_err(|e| cannot_run(program, e))?;
    let ended = group.supervise(stopper).await;
    if ended.survivors {
        crate::stdio::note!(
            "processes of {program}'s group still exist {} s after SIGKILL (uninterruptible sleep?); releasing the lock anyway",
            child::KILL_WAIT.as_secs()
        );
    }
    Ok(ended)
}

/// `--exec`: CMD's exit code, or the stop request's error.
async fn once(argv: &[String], stopper: &Stopper, how: &str) -> anyhow::Result<u8> {
    let ended = supervised(argv, stopper).await?;
    match stopper.reason() {
        Some(_) => Err(stopped(
            stopper,
            how,
            &format!("; {} {}", argv[0], ended.describe()),
        )),
        None => Ok(ended.exit_code()),
    }
}

/// `--python CMD`: the guest applies what it can and hands back each migration that needs
/// Django; Django runs it while the guest's session keeps the lock; then the guest checks Django
/// did exactly that and goes on.
///
/// Django runs as one worker for the whole run, started at the first step (a run with nothing
/// for Django starts no Python): `CMD shell -v 0 -c WORKER`, reading one step per line on its
/// stdin and calling `call_command("migrate", "--noinput", "-v", N, APP, TARGET)` for it, which
/// is what `CMD migrate ... APP TARGET` runs, without Django's start-up each time. Why: on the
/// real-app project (101 migrations, 9 for Django on a fresh database) a `manage.py` start costs
/// 1.0-1.5 s here, so a process per step made `--python` 2.1x the time of `--exec` (`just bench
/// real-apps`, before this). The worker's stdout is passed through, minus its done lines; its
/// stderr is the runner's.
struct Steps<'a> {
    session: &'a exports::djinit::commands::lock_session::Guest,
    lock_args: &'a [String],
    argv: &'a [String],
    memory_mib: u64,
}

/// The worker's program (`shell -c`): a step per line, tab-separated `call_command` arguments
/// (app labels and migration names are Python identifiers), [`DONE`] after each. An exception
/// ends it (Django prints it, exit 1).
const WORKER: &str = "import sys\n\
from django.core.management import call_command\n\
for line in sys.stdin:\n    \
call_command(*line.rstrip('\\n').split('\\t'))\n    \
print('\\x1edjinit-step-done', flush=True)\n";

/// The line the worker writes after each step (starting with ASCII RS, which Django's output
/// does not).
const DONE: &str = "\u{1e}djinit-step-done";

/// Django, running [`WORKER`].
struct Worker {
    group: Group,
    stdin: std::process::ChildStdin,
    done: tokio::sync::mpsc::UnboundedReceiver<()>,
    /// For messages: `CMD shell -v 0 -c …`.
    label: String,
}

impl Worker {
    fn start(cmd: &[String]) -> anyhow::Result<Worker> {
        let mut argv = cmd.to_vec();
        argv.extend(["shell", "-v", "0", "-c", WORKER].map(String::from));
        let (group, pipes) =
            Group::spawn_piped(&argv[0], &argv[1..]).map_err(|e| cannot_run(&argv[0], e))?;
        let (tx, done) = tokio::sync::mpsc::unbounded_channel();
        let stdout = pipes.stdout;
        // Django's output is passed on line by line; each done line becomes an event.
        std::thread::Builder::new()
            .name("djinit-django-out".into())
            .spawn(move || {
                use std::io::{BufRead, Write};
                let mut lines = std::io::BufReader::new(stdout);
                let mut line = Vec::new();
                while matches!(lines.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                    let text = String::from_utf8_lossy(&line);
                    let body = text.trim_end_matches('\n');
                    let out = std::io::stdout();
                    let mut out = out.lock();
                    if let Some(before) = body.strip_suffix(DONE) {
                        if !before.is_empty() {
                            let _ = writeln!(out, "{before}");
                        }
                        let _ = out.flush();
                        let _ = tx.send(());
                    } else {
                        let _ = out.write_all(&line);
                        let _ = out.flush();
                    }
                    line.clear();
                }
            })?;
        Ok(Worker {
            group,
            stdin: pipes.stdin,
            done,
            label: format!("{} shell -v 0 -c …", cmd.join(" ")),
        })
    }
}

impl Steps<'_> {
    /// 0 when the plan is done. A Django step that fails stops the run (exit 65: Django's output
    /// above says why; the migrations before it stay applied, nothing after it runs).
    async fn run(
        &self,
        store: &mut wasmtime::Store<Host>,
        stopper: &Stopper,
    ) -> anyhow::Result<u8> {
        let how = "lockedmigrate --python";
        let mut worker: Option<Worker> = None;
        loop {
            let called = tokio::select! {
                biased;
                _ = stopper.stopped() => None,
                r = self.session.call_migrate(&mut *store, self.lock_args) => Some(r),
            };
            let Some(r) = called else {
                if let Some(w) = worker.as_mut() {
                    w.group.supervise(stopper).await;
                }
                return Err(stopped(stopper, how, " while applying migrations"));
            };
            let Some(step) = guest_result(store, r, self.memory_mib, how, "while migrating")?
            else {
                return match worker {
                    None => Ok(0),
                    Some(w) => finish(w, stopper, how).await,
                };
            };
            if worker.is_none() {
                worker = Some(Worker::start(self.argv)?);
            }
            let w = worker.as_mut().expect("started");
            let verb = if step.backwards {
                "unapplying"
            } else {
                "applying"
            };
            let doing = format!("`{} {}`", self.argv.join(" "), step.args.join(" "));
            if step.args.iter().any(|a| a.contains(['\t', '\n'])) {
                return Err(Failure::new(
                    Kind::Internal,
                    format!("a Django step's arguments contain a tab or newline: {doing}"),
                )
                .into());
            }
            let sent = {
                use std::io::Write;
                writeln!(w.stdin, "{}", step.args.join("\t")).and_then(|_| w.stdin.flush())
            };
            // The step is done, the worker could not be sent it, or the worker ended first.
            enum Next {
                Done,
                Closed,
                Ended(Ended),
            }
            let next = if sent.is_err() {
                // The worker is gone: its exit status says why.
                Next::Closed
            } else {
                // The worker's stdout closing is no outcome: its exit status is (supervise).
                tokio::select! {
                    biased;
                    Some(()) = w.done.recv() => Next::Done,
                    e = w.group.supervise(stopper) => Next::Ended(e),
                }
            };
            let ended = match next {
                Next::Done if stopper.reason().is_none() => continue,
                // Stopping (the stop may have come with the step's done line), or the worker is
                // gone: see it through to its exit status.
                Next::Done | Next::Closed => w.group.supervise(stopper).await,
                Next::Ended(e) => e,
            };
            if stopper.reason().is_some() {
                return Err(stopped(
                    stopper,
                    how,
                    &format!(
                        " while Django was {verb} {}; {} {}",
                        step.label,
                        w.label,
                        ended.describe()
                    ),
                ));
            }
            return Err(Failure::new(
                Kind::Data,
                format!(
                    "Django failed {verb} {} ({doing} in {}: {}); the migrations before it stay applied, nothing after it ran",
                    step.label,
                    w.label,
                    ended.describe()
                ),
            )
            .into());
        }
    }
}

/// The plan is done: end the worker (EOF on its stdin) and wait for it to exit 0.
async fn finish(w: Worker, stopper: &Stopper, how: &str) -> anyhow::Result<u8> {
    let Worker {
        mut group,
        stdin,
        label,
        ..
    } = w;
    drop(stdin);
    let ended = group.supervise(stopper).await;
    if stopper.reason().is_some() {
        return Err(stopped(
            stopper,
            how,
            &format!("; {label} {}", ended.describe()),
        ));
    }
    match ended.exit_code() {
        0 => Ok(0),
        _ => Err(Failure::new(
            Kind::Data,
            format!(
                "Django ({label}) {} after its last step; the migrations are applied",
                ended.describe()
            ),
        )
        .into()),
    }
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
