//! The command of `lockedmigrate --exec -- CMD`: a native child process in a process group of its
//! own, stopped together with everything it started.
//!
//! * **Its own process group.** A stop request (SIGTERM/SIGINT to the runner, `--timeout`) goes
//!   to the whole group: `python manage.py migrate` and whatever it or a wrapper script started.
//!   The group gets SIGTERM (SIGINT for SIGINT), then SIGKILL after [`GRACE`], or at once on a
//!   second SIGTERM/SIGINT.
//! * **No orphan.** The runner is a child subreaper (`PR_SET_CHILD_SUBREAPER`): processes CMD
//!   leaves behind are re-parented to the runner instead of init, so they are waited for. When
//!   CMD exits, members of its group still running are stopped the same way: they would
//!   otherwise run on after the lock is released. `PR_SET_PDEATHSIG(SIGKILL)` kills CMD if the
//!   runner itself is killed (SIGKILL cannot be caught; CMD's own children then go with the
//!   container).
//! * **A terminal.** When the runner is in the foreground of its terminal, CMD's group becomes
//!   the foreground group: CMD can read the terminal (a background group reading it would be
//!   stopped by SIGTTIN and hang) and gets Ctrl-C directly. Ctrl-Z stops CMD, then the runner,
//!   so the shell sees the job stop; `fg` continues both.
//! * **The event loop is never blocked.** A thread waits for the group's members
//!   (`waitpid(-pgid)`) and reports each change over a channel; the runner's event loop watches
//!   that, the signals and `--timeout` together.

use std::os::fd::BorrowedFd;
use std::os::unix::process::CommandExt;
use std::process::{ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use rustix::io::Errno;
use rustix::process::{Pid, Signal, WaitOptions, WaitStatus};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::stop::{Reason, Stopper};

/// Between SIGTERM (or SIGINT) to CMD's group and SIGKILL. `manage.py migrate` ends at once on
/// SIGTERM (Python's default action; the server rolls its transaction back); a command that
/// handles SIGTERM gets 10 s to clean up. That fits Kubernetes' default
/// `terminationGracePeriodSeconds` of 30 s with room for releasing the lock.
pub const GRACE: Duration = Duration::from_secs(10);

/// After SIGKILL, how long to wait for the group to be gone before giving up on it (a process in
/// uninterruptible sleep cannot be killed).
pub const KILL_WAIT: Duration = Duration::from_secs(5);

/// What the reaper thread reports.
enum Event {
    /// A member of the group exited, was killed, or was stopped (job control).
    Changed { pid: Pid, status: WaitStatus },
    /// The runner has no child left in the group.
    Empty,
}

/// How the group ended.
pub struct Ended {
    /// How CMD itself ended (`None`: it did not end, see `survivors`).
    pub status: Option<WaitStatus>,
    /// The stop request that ended it, if one did.
    pub stopped_by: Option<Reason>,
    /// The group was killed with SIGKILL.
    pub killed: bool,
    /// Members still there [`KILL_WAIT`] after SIGKILL.
    pub survivors: bool,
}

impl Ended {
    /// CMD's exit code as a shell reports it: its code, or 128+N when killed by signal N.
    pub fn exit_code(&self) -> u8 {
        match self.status {
            Some(s) => match (s.exit_status(), s.terminating_signal()) {
                (Some(c), _) => u8::try_from(c).unwrap_or(1),
                (None, Some(sig)) => 128u8.saturating_add(u8::try_from(sig).unwrap_or(0)),
                _ => 1,
            },
            None => 1,
        }
    }

    /// "exited with code N" / "ended by SIGTERM" / "killed with SIGKILL after the grace period".
    pub fn describe(&self) -> String {
        let Some(s) = self.status else {
            return "did not end after SIGKILL".into();
        };
        match (s.exit_status(), s.terminating_signal()) {
            (Some(c), _) => format!("exited with code {c}"),
            (None, Some(9)) if self.killed => {
                format!("was killed with SIGKILL after {} s", GRACE.as_secs())
            }
            (None, Some(sig)) => format!("ended by {}", signal_name(sig)),
            _ => "ended".into(),
        }
    }
}

fn signal_name(sig: i32) -> String {
    match sig {
        1 => "SIGHUP".into(),
        2 => "SIGINT".into(),
        9 => "SIGKILL".into(),
        13 => "SIGPIPE".into(),
        15 => "SIGTERM".into(),
        n => format!("signal {n}"),
    }
}

/// A worker's stdin and stdout ([`Group::spawn_piped`]).
pub struct Pipes {
    pub stdin: ChildStdin,
    pub stdout: ChildStdout,
}

/// CMD, running in its own process group.
pub struct Group {
    /// CMD's pid, also the group id.
    leader: Pid,
    /// What CMD runs, for messages.
    label: String,
    events: mpsc::UnboundedReceiver<Event>,
    /// CMD's group is the terminal's foreground group (handed over by the runner).
    terminal: bool,
    /// How CMD ended, once a [`Group::supervise`] saw it: kept here so that a supervision
    /// dropped part-way (lock_exec.rs waits for a worker's reply or its end, whichever is
    /// first) does not lose it for the next.
    leader_status: Option<WaitStatus>,
}

impl Group {
    /// Start `program` with `args` (the runner's environment, stdio and privileges: it is the
    /// user's own command).
    pub fn spawn(program: &str, args: &[String]) -> std::io::Result<Group> {
        Self::start(program, args, false).map(|(g, _)| g)
    }

    /// As [`Group::spawn`], but with stdin and stdout pipes to the runner (stderr stays the
    /// runner's) and without the terminal: a worker the runner talks to (lock_exec.rs).
    pub fn spawn_piped(program: &str, args: &[String]) -> std::io::Result<(Group, Pipes)> {
        let (group, pipes) = Self::start(program, args, true)?;
        Ok((group, pipes.expect("piped")))
    }

    fn start(
        program: &str,
        args: &[String],
        piped: bool,
    ) -> std::io::Result<(Group, Option<Pipes>)> {
        // Before CMD exists, so nothing it starts can escape to init.
        rustix::process::set_child_subreaper(Some(rustix::process::getpid()))?;
        let runner = rustix::process::getpid();
        let mut cmd = Command::new(program);
        cmd.args(args).process_group(0);
        if piped {
            cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        }
        // SAFETY: the closure runs in the forked child before exec and only makes raw system
        // calls (prctl, getppid), which are async-signal-safe; it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
                // The runner died between fork and prctl: do not run unsupervised.
                if rustix::process::getppid() != Some(runner) {
                    return Err(Errno::SRCH.into());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        let leader = Pid::from_child(&child);
        let pipes = match (child.stdin.take(), child.stdout.take()) {
            (Some(stdin), Some(stdout)) => Some(Pipes { stdin, stdout }),
            _ => None,
        };
        // `spawn` returns after the exec, so CMD's group exists: hand it the terminal.
        let terminal = !piped && terminal_is_ours() && give_terminal(leader);
        if terminal {
            // CMD may have read the terminal before it was its own, and been stopped for it.
            let _ = rustix::process::kill_process_group(leader, Signal::CONT);
        }
        let (tx, events) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("djinit-reaper".into())
            .spawn(move || reap(leader, tx))?;
        Ok((
            Group {
                leader,
                label: program.to_string(),
                events,
                terminal,
                leader_status: None,
            },
            pipes,
        ))
    }

    /// Wait until the group is gone, forwarding stop requests to it; never blocks the event loop.
    pub async fn supervise(&mut self, stopper: &Stopper) -> Ended {
        let mut ended = Ended {
            status: self.leader_status,
            stopped_by: None,
            killed: false,
            survivors: false,
        };
        // When to SIGKILL the group, and when to stop waiting for it after that.
        let mut kill_at: Option<Instant> = None;
        let mut give_up_at: Option<Instant> = None;
        loop {
            let kill_due = async {
                match kill_at {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            let give_up_due = async {
                match give_up_at {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                ev = self.events.recv() => match ev {
                    Some(Event::Changed { pid, status }) => {
                        if status.stopped() {
                            if pid == self.leader {
                                self.follow_stop();
                            }
                            continue;
                        }
                        if pid != self.leader {
                            continue;
                        }
                        ended.status = Some(status);
                        self.leader_status = Some(status);
                        if kill_at.is_none() && self.signal(Signal::TERM) {
                            crate::stdio::note!(
                                "{} {}; stopping what it left running in its process group (SIGTERM, SIGKILL after {} s)",
                                self.label,
                                ended.describe(),
                                GRACE.as_secs()
                            );
                            kill_at = Some(Instant::now() + GRACE);
                        }
                    }
                    Some(Event::Empty) | None => break,
                },
                reason = stopper.stopped(), if ended.stopped_by.is_none() => {
                    ended.stopped_by = Some(reason);
                    let (sig, name) = match reason {
                        Reason::Interrupt => (Signal::INT, "SIGINT"),
                        _ => (Signal::TERM, "SIGTERM"),
                    };
                    let why = match reason {
                        Reason::Timeout(_) => "--timeout reached".to_string(),
                        _ => format!("{name} received"),
                    };
                    crate::stdio::note!(
                        "{why}: stopping {} ({name} to its process group, SIGKILL after {} s)",
                        self.label,
                        GRACE.as_secs()
                    );
                    self.signal(sig);
                    kill_at.get_or_insert(Instant::now() + GRACE);
                }
                _ = stopper.signalled_again(), if ended.stopped_by.is_some() && give_up_at.is_none() => {
                    crate::stdio::note!("signalled again: SIGKILL to {}", self.label);
                    self.kill(&mut ended, &mut kill_at, &mut give_up_at);
                }
                _ = kill_due => {
                    crate::stdio::note!(
                        "{} still running {} s after SIGTERM: SIGKILL",
                        self.label,
                        GRACE.as_secs()
                    );
                    self.kill(&mut ended, &mut kill_at, &mut give_up_at);
                }
                _ = give_up_due => {
                    ended.survivors = true;
                    break;
                }
            }
        }
        self.take_terminal_back();
        ended
    }

    fn kill(
        &self,
        ended: &mut Ended,
        kill_at: &mut Option<Instant>,
        give_up_at: &mut Option<Instant>,
    ) {
        self.signal(Signal::KILL);
        ended.killed = true;
        *kill_at = None;
        *give_up_at = Some(Instant::now() + KILL_WAIT);
    }

    /// Send `sig` to the group; whether it still has members.
    fn signal(&self, sig: Signal) -> bool {
        rustix::process::kill_process_group(self.leader, sig).is_ok()
    }

    /// CMD was stopped (Ctrl-Z, or SIGTTIN/SIGTTOU): stop the runner too, so the shell sees its
    /// job stop; when continued, give CMD the terminal back (if the runner is in the foreground
    /// again) and continue it.
    fn follow_stop(&self) {
        if !self.terminal {
            // No job control without a terminal: a stopped CMD would hang the run.
            self.signal(Signal::CONT);
            return;
        }
        self.take_terminal_back();
        // Stops every thread of the runner until the shell's SIGCONT (`fg`/`bg`).
        let _ = rustix::process::kill_process(rustix::process::getpid(), Signal::TSTP);
        if terminal_is_ours() {
            give_terminal(self.leader);
        }
        self.signal(Signal::CONT);
    }

    fn take_terminal_back(&self) {
        if self.terminal {
            give_terminal(rustix::process::getpgrp());
        }
    }
}

/// Waits for every child of the runner in group `pgid` and reports them, until none is left.
fn reap(pgid: Pid, tx: mpsc::UnboundedSender<Event>) {
    loop {
        match rustix::process::waitpgid(pgid, WaitOptions::UNTRACED) {
            Ok(Some((pid, status))) => {
                if tx.send(Event::Changed { pid, status }).is_err() {
                    return;
                }
            }
            Ok(None) | Err(Errno::INTR) => continue,
            Err(_) => {
                // ECHILD: no child of the runner is left in the group.
                let _ = tx.send(Event::Empty);
                return;
            }
        }
    }
}

fn stdin() -> BorrowedFd<'static> {
    // SAFETY: fd 0 stays open for the life of the process (the runner never closes it).
    unsafe { BorrowedFd::borrow_raw(0) }
}

/// Whether stdin is a terminal whose foreground process group is the runner's.
fn terminal_is_ours() -> bool {
    rustix::termios::isatty(stdin())
        && rustix::termios::tcgetpgrp(stdin()).ok() == Some(rustix::process::getpgrp())
}

/// Make `pgrp` the terminal's foreground group. SIGTTOU is ignored meanwhile: a process of a
/// background group (the runner, once CMD has the terminal) calling `tcsetpgrp` would be
/// stopped by it.
fn give_terminal(pgrp: Pid) -> bool {
    // SAFETY: `signal` with SIG_IGN and then the previous disposition; no handler runs.
    let previous = unsafe { libc::signal(libc::SIGTTOU, libc::SIG_IGN) };
    let ok = rustix::termios::tcsetpgrp(stdin(), pgrp).is_ok();
    // SAFETY: restores what `signal` returned above.
    unsafe { libc::signal(libc::SIGTTOU, previous) };
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reaped with waitpid (for the raw status), which clippy does not see.
    #[allow(clippy::zombie_processes)]
    fn status_of(sh: &str) -> WaitStatus {
        let child = Command::new("sh").args(["-c", sh]).spawn().unwrap();
        let pid = Pid::from_child(&child);
        rustix::process::waitpid(Some(pid), WaitOptions::empty())
            .unwrap()
            .unwrap()
            .1
    }

    #[test]
    fn exit_codes_as_a_shell_reports_them() {
        let ended = |status| Ended {
            status: Some(status),
            stopped_by: None,
            killed: false,
            survivors: false,
        };
        let e = ended(status_of("exit 3"));
        assert_eq!(
            (e.exit_code(), e.describe().as_str()),
            (3, "exited with code 3")
        );
        let e = ended(status_of("kill -TERM $$"));
        assert_eq!(
            (e.exit_code(), e.describe().as_str()),
            (143, "ended by SIGTERM")
        );
        let mut e = ended(status_of("kill -KILL $$"));
        e.killed = true;
        assert_eq!(e.exit_code(), 137);
        assert!(
            e.describe().contains("SIGKILL after 10 s"),
            "{}",
            e.describe()
        );
    }
}
