//! Progress lines on stderr, `prog: message`, filtered by `-v/--verbosity`, folded onto one line
//! with control characters escaped ([`crate::one_line`]).
//! Callers never pass credentials: connection settings are shown with `Config::describe()`.

use std::time::{Duration, Instant};

pub mod format;

pub use format::{Field, Format, Level};

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

    /// A warning, shown at every verbosity but 0.
    pub fn warn(&self, msg: impl AsRef<str>) {
        if self.verbosity >= 1 {
            format::emit(self.prog, Level::Warn, "", msg.as_ref(), &[]);
        }
    }

    /// A line at verbosity `level` (1 info, 2 detail, 3 debug) with the event's fields, which
    /// `--log-format json` writes as the object's own keys (text shows only `msg`).
    pub fn event(&self, level: u8, msg: impl AsRef<str>, fields: &[Field<'_>]) {
        if self.verbosity >= level {
            let level = match level {
                0 | 1 => Level::Info,
                2 => Level::Debug,
                _ => Level::Trace,
            };
            format::emit(self.prog, level, "", msg.as_ref(), fields);
        }
    }

    /// One progress line for an event of `djinit_wait::retry` (every command that waits uses it),
    /// at verbosity `level` or above.
    pub fn retry_event<E: std::fmt::Display>(&self, level: u8, event: &djinit_wait::Event<'_, E>) {
        use djinit_wait::Event;
        if self.verbosity < level {
            return;
        }
        let elapsed = |d: &Duration| ("elapsed_s", round_ms(*d).into());
        match event {
            Event::Failed {
                attempt,
                elapsed: e,
                error,
            } => self.event(
                level,
                format!("attempt {attempt} at {:.1}s: {error}", e.as_secs_f64()),
                &[
                    ("event", "attempt_failed".into()),
                    ("attempt", (*attempt).into()),
                    elapsed(e),
                ],
            ),
            Event::WindowStarted { elapsed: e, window } => self.event(
                level,
                format!(
                    "ready at {:.1}s; checking it stays ready for {}s",
                    e.as_secs_f64(),
                    window.as_secs_f64()
                ),
                &[
                    ("event", "window_started".into()),
                    elapsed(e),
                    ("window_s", window.as_secs_f64().into()),
                ],
            ),
            Event::WindowReset { elapsed: e, error } => self.event(
                level,
                format!(
                    "failure at {:.1}s inside the stability window, starting over: {error}",
                    e.as_secs_f64()
                ),
                &[("event", "window_reset".into()), elapsed(e)],
            ),
        }
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
        self.event(level, msg, &[]);
    }
}

/// Seconds with millisecond precision, for the `elapsed_s` fields of JSON lines.
pub fn round_ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
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
