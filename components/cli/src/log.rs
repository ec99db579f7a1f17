//! Progress lines on stderr, `prog: message`, filtered by `-v/--verbosity`.
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

    /// One progress line for an event of `djinit_pg::retry` (every command that waits uses it), at
    /// verbosity `level` or above.
    pub fn retry_event<E: std::fmt::Display>(
        &self,
        level: u8,
        event: &djinit_pg::retry::Event<'_, E>,
    ) {
        use djinit_pg::retry::Event;
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

    fn at(&self, level: u8, msg: &str) {
        if self.verbosity >= level {
            eprintln!("{}: {}", self.prog, crate::one_line(msg));
        }
    }
}
