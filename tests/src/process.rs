//! Running a child process with a hard deadline: it is killed (with its whole process group) when
//! the deadline passes, so no test ever hangs on a misbehaving command.

use crate::secret::{leaks, redact};
use std::borrow::BorrowMut;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

/// What a finished (or killed) process left behind.
#[derive(Debug, Clone)]
pub struct Output {
    /// The command line, passwords redacted (for messages).
    pub command: String,
    /// Exit status; `None` if it was killed by a signal (including our own kill at the timeout).
    pub code: Option<i32>,
    /// The signal that ended it, if any.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// From spawn to exit (or to the kill).
    pub elapsed: Duration,
    /// True if the harness killed it at the timeout.
    pub timed_out: bool,
    /// Peak resident set size of the process, in KiB (`getrusage` via `wait4`).
    pub max_rss_kib: u64,
}

impl Output {
    /// Panics with the command, code, stdout and stderr unless it exited with `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        if self.code != Some(code) {
            panic!(
                "expected exit code {code}, got {}\n{}",
                self.status_text(),
                self.report()
            );
        }
        self
    }

    /// `assert_code(0)`.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        self.assert_code(0)
    }

    /// Panics unless stderr contains `needle` (case-insensitive).
    #[track_caller]
    pub fn assert_stderr_contains(&self, needle: &str) -> &Self {
        if !self.stderr.to_lowercase().contains(&needle.to_lowercase()) {
            panic!("stderr does not contain {needle:?}\n{}", self.report());
        }
        self
    }

    /// Panics if `secret` (raw or percent-encoded) appears in stdout or stderr.
    #[track_caller]
    pub fn assert_no_secret(&self, secret: &str) -> &Self {
        if leaks(&self.stdout, secret) || leaks(&self.stderr, secret) {
            // The report is redacted; say where it leaked without printing it.
            let wher = if leaks(&self.stdout, secret) {
                "stdout"
            } else {
                "stderr"
            };
            panic!("a password appears in {wher}\n{}", self.report());
        }
        self
    }

    /// `exit 0`, `exit 75`, `killed by signal 9 (timeout)`.
    pub fn status_text(&self) -> String {
        match (self.code, self.signal) {
            (Some(c), _) => format!("exit {c}"),
            (None, Some(s)) if self.timed_out => format!("killed by signal {s} at the timeout"),
            (None, Some(s)) => format!("killed by signal {s}"),
            (None, None) => "unknown status".into(),
        }
    }

    /// Command, status, time, stdout and stderr, passwords redacted.
    pub fn report(&self) -> String {
        redact(&format!(
            "command: {}\nstatus: {} after {:.3}s\n--- stdout ---\n{}--- stderr ---\n{}--------------",
            self.command,
            self.status_text(),
            self.elapsed.as_secs_f64(),
            with_newline(&self.stdout),
            with_newline(&self.stderr),
        ))
    }
}

fn with_newline(s: &str) -> String {
    if s.is_empty() || s.ends_with('\n') {
        s.to_string()
    } else {
        format!("{s}\n")
    }
}

/// The command line of `cmd`, shell-quoted where needed, passwords redacted. Environment variables
/// are not shown (they carry URLs with passwords).
pub fn describe(cmd: &Command) -> String {
    let mut parts = vec![quote(&cmd.get_program().to_string_lossy())];
    parts.extend(cmd.get_args().map(|a| quote(&a.to_string_lossy())));
    redact(&parts.join(" "))
}

fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Runs `cmd` (stdin empty, stdout and stderr captured) and returns when it exits, or kills it
/// and its process group with SIGKILL once `timeout` has passed. Panics only if it cannot start.
pub fn run(cmd: impl BorrowMut<Command>, timeout: Duration) -> Output {
    spawn(cmd).wait(timeout)
}

/// [`run`] with `input` written to its stdin (then closed).
pub fn run_with_input(
    cmd: impl BorrowMut<Command>,
    input: impl Into<Vec<u8>>,
    timeout: Duration,
) -> Output {
    spawn_with_input(cmd, input).wait(timeout)
}

/// A started process, for tests that act while it runs (send a signal, run several at once).
/// Dropping it without [`Running::wait`] kills its process group.
pub struct Running {
    command: String,
    pid: libc::pid_t,
    start: Instant,
    reaped: Arc<AtomicBool>,
    exit: mpsc::Receiver<(libc::pid_t, i32, u64, Instant)>,
    stdout: Option<thread::JoinHandle<String>>,
    stderr: Option<thread::JoinHandle<String>>,
    waited: bool,
}

/// Starts `cmd` in its own process group, stdin empty, stdout and stderr captured.
pub fn spawn(cmd: impl BorrowMut<Command>) -> Running {
    start(cmd, None)
}

/// [`spawn`] with `input` written to its stdin (then closed).
pub fn spawn_with_input(cmd: impl BorrowMut<Command>, input: impl Into<Vec<u8>>) -> Running {
    start(cmd, Some(input.into()))
}

fn start(mut cmd: impl BorrowMut<Command>, input: Option<Vec<u8>>) -> Running {
    let cmd = cmd.borrow_mut();
    let command = describe(cmd);
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .process_group(0);
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command}: {e}"));
    let pid = child.id() as libc::pid_t;
    if let (Some(input), Some(mut stdin)) = (input, child.stdin.take()) {
        thread::spawn(move || {
            let _ = stdin.write_all(&input);
            // Dropping stdin closes it: the child sees EOF.
        });
    }
    let stdout = reader(child.stdout.take().unwrap());
    let stderr = reader(child.stderr.take().unwrap());
    drop(child); // reaped below with wait4; dropping only closes handles

    // Reap with wait4 (not Child::wait) to get the child's rusage (peak RSS).
    let reaped = Arc::new(AtomicBool::new(false));
    let reaped2 = reaped.clone();
    let (tx, exit) = mpsc::channel();
    thread::spawn(move || loop {
        let mut status = 0;
        // SAFETY: plain libc call with valid out-pointers.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == -1 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        let ended = Instant::now();
        reaped2.store(true, Ordering::SeqCst);
        let _ = tx.send((r, status, usage.ru_maxrss.max(0) as u64, ended));
        break;
    });
    Running {
        command,
        pid,
        start,
        reaped,
        exit,
        stdout: Some(stdout),
        stderr: Some(stderr),
        waited: false,
    }
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) to the process itself, if it has not exited yet.
    pub fn signal(&self, signal: libc::c_int) {
        if !self.reaped.load(Ordering::SeqCst) {
            // SAFETY: our child, not yet reaped, so the pid is still ours.
            unsafe { libc::kill(self.pid, signal) };
        }
    }

    /// Waits until it exits, or kills its process group with SIGKILL once `timeout` has passed
    /// (counted from now).
    pub fn wait(mut self, timeout: Duration) -> Output {
        self.waited = true;
        let (timed_out, (r, status, max_rss_kib, ended)) = match self.exit.recv_timeout(timeout) {
            Ok(v) => (false, v),
            Err(_) => {
                // SAFETY: signals our own child's process group (pgid == pid).
                unsafe { libc::kill(-self.pid, libc::SIGKILL) };
                (true, self.exit.recv().expect("waiter thread"))
            }
        };
        if r != self.pid {
            panic!("wait4 failed for {}", self.command);
        }
        let (code, signal) = if libc::WIFEXITED(status) {
            (Some(libc::WEXITSTATUS(status)), None)
        } else if libc::WIFSIGNALED(status) {
            (None, Some(libc::WTERMSIG(status)))
        } else {
            (None, None)
        };
        if !timed_out {
            // Leftover grandchildren holding our pipes would block the readers; end them too.
            // SAFETY: as above; ESRCH when the group is already gone.
            unsafe { libc::kill(-self.pid, libc::SIGKILL) };
        }
        Output {
            command: self.command.clone(),
            code,
            signal,
            stdout: self.stdout.take().unwrap().join().unwrap_or_default(),
            stderr: self.stderr.take().unwrap().join().unwrap_or_default(),
            elapsed: ended - self.start,
            timed_out,
            max_rss_kib,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.waited {
            // SAFETY: our child's process group; reap it so nothing outlives the test.
            unsafe { libc::kill(-self.pid, libc::SIGKILL) };
            let _ = self.exit.recv();
        }
    }
}

fn reader(mut r: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}
