//! Progress lines on stderr, `prog: message`, filtered by `-v/--verbosity`, folded onto one line
//! with control characters escaped ([`crate::one_line`]).
//! Callers never pass credentials: connection settings are shown with `Config::describe()`.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Log {
    prog: &'static str,
    verbosity: u8,
    start: Instant,
}

impl Log {
    pub fn new(prog: &'static str, verbosity: u8) -> Self {
        Log {
            prog,
            verbosity,
            start: Instant::now(),
        }
    }

    pub fn verbosity(&self) -> u8 {
        self.verbosity
    }

    /// Time since the command started.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Normal progress (verbosity >= 1).
    pub fn info(&self, msg: impl AsRef<str>) {
        self.at(1, msg.as_ref());
    }

    /// Verbose detail (verbosity >= 2).
    pub fn detail(&self, msg: impl AsRef<str>) {
        self.at(2, msg.as_ref());
    }

    /// Very verbose (verbosity 3).
    pub fn debug(&self, msg: impl AsRef<str>) {
        self.at(3, msg.as_ref());
    }

    /// One progress line for an event of `djinit_wait::retry` (every command that waits uses it),
    /// at verbosity `level` or above.
    pub fn retry_event<E: std::fmt::Display>(&self, level: u8, event: &djinit_wait::Event<'_, E>) {
        use djinit_wait::Event;
        if self.verbosity < level {
            return;
        }
        let msg = match event {
            Event::Failed {
                attempt,
                elapsed,
                error,
            } => format!(
                "attempt {attempt} at {:.1}s: {error}",
                elapsed.as_secs_f64()
            ),
            Event::WindowStarted { elapsed, window } => format!(
                "ready at {:.1}s; checking it stays ready for {}s",
                elapsed.as_secs_f64(),
                window.as_secs_f64()
            ),
            Event::WindowReset { elapsed, error } => format!(
                "failure at {:.1}s inside the stability window, starting over: {error}",
                elapsed.as_secs_f64()
            ),
        };
        self.at(level, &msg);
    }

    /// A handler for `djinit_pg::Client::on_notice`: each server notice as one line at
    /// verbosity 2, at most [`NOTICES_PER_SECOND`] lines a second; the ones over that are
    /// counted and the count printed with the next line shown (or when the handler is dropped
    /// with the session). A statement raising 300,000 notices prints a few hundred lines and
    /// keeps nothing in memory.
    pub fn notices<N: std::fmt::Display>(&self) -> impl FnMut(&N) + 'static {
        let mut printer = NoticePrinter {
            log: self.clone(),
            window: Instant::now(),
            shown: 0,
            dropped: 0,
        };
        move |notice| printer.notice(notice)
    }

    fn at(&self, level: u8, msg: &str) {
        if self.verbosity >= level {
            eprintln!("{}: {}", self.prog, crate::one_line(msg));
        }
    }
}

/// The most notice lines [`Log::notices`] prints per second.
pub const NOTICES_PER_SECOND: u32 = 20;

struct NoticePrinter {
    log: Log,
    window: Instant,
    shown: u32,
    dropped: u64,
}

impl NoticePrinter {
    fn notice(&mut self, notice: &dyn std::fmt::Display) {
        if self.log.verbosity < 2 {
            return;
        }
        if self.window.elapsed() >= Duration::from_secs(1) {
            self.window = Instant::now();
            self.shown = 0;
        }
        if self.shown >= NOTICES_PER_SECOND {
            self.dropped += 1;
            return;
        }
        self.shown += 1;
        self.flush_dropped();
        self.log.detail(notice.to_string());
    }

    fn flush_dropped(&mut self) {
        if self.dropped > 0 {
            self.log.detail(format!(
                "({} more server notices not shown: over {NOTICES_PER_SECOND} a second)",
                self.dropped
            ));
            self.dropped = 0;
        }
    }
}

impl Drop for NoticePrinter {
    fn drop(&mut self) {
        self.flush_dropped();
    }
}
