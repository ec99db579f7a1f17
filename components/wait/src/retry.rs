//! Retrying transient failures, and only those, under a deadline.
//!
//! [`retry`] runs an operation until it succeeds, fails permanently, or the deadline passes.
//! [`wait_stable`] additionally requires the operation to keep succeeding for a whole window
//! (`wait4db -s`): any failure resets the window and waiting resumes.
//! Both are generic over the error type through [`Transient`], so non-PostgreSQL commands (DNS
//! discovery) use the same loop.

use crate::deadline::Deadline;
use crate::kind::Classify;
use std::fmt;
use std::time::{Duration, Instant};

/// An error that knows whether trying again may help (its [`Classify`] kind), and how to become
/// "gave up".
pub trait Transient: Classify + std::error::Error + Send + Sync + Sized + 'static {
    fn gave_up(g: GaveUp) -> Self;
}

/// The deadline passed before the operation succeeded (or stayed stable). Kind `Timeout`.
#[derive(Debug)]
pub struct GaveUp {
    pub elapsed: Duration,
    pub attempts: u32,
    /// Why the last attempt failed, if it did.
    pub last: Option<Box<dyn std::error::Error + Send + Sync>>,
    /// What was being waited for, e.g. "ready", "stable for 5s".
    pub waiting_for: String,
}

impl fmt::Display for GaveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "timed out after {:.1}s and {} attempt{} waiting to be {}",
            self.elapsed.as_secs_f64(),
            self.attempts,
            if self.attempts == 1 { "" } else { "s" },
            self.waiting_for
        )?;
        if let Some(e) = &self.last {
            write!(f, "; last error: {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for GaveUp {}

/// What happened, for progress lines.
#[derive(Debug)]
pub enum Event<'a, E> {
    /// Attempt `attempt` failed transiently at `elapsed`; the next comes after the interval.
    Failed {
        attempt: u32,
        elapsed: Duration,
        error: &'a E,
    },
    /// The first success: the stability window starts now.
    WindowStarted { elapsed: Duration, window: Duration },
    /// A failure inside the window: it starts again at the next success.
    WindowReset { elapsed: Duration, error: &'a E },
}

/// Run `op` until it succeeds, fails with a permanent error (returned as is), or `deadline`
/// passes (a [`GaveUp`] carrying the last error). `op` gets the deadline to bound its own I/O.
/// Attempts start `interval` apart (an attempt that took longer is followed at once).
pub fn retry<T, E: Transient>(
    deadline: Deadline,
    interval: Duration,
    mut on_event: impl FnMut(Event<'_, E>),
    mut op: impl FnMut(Deadline) -> Result<T, E>,
) -> Result<T, E> {
    let start = Instant::now();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let began = Instant::now();
        match op(deadline) {
            Ok(v) => return Ok(v),
            Err(e) if !e.is_transient() => return Err(e),
            Err(e) => {
                on_event(Event::Failed {
                    attempt,
                    elapsed: start.elapsed(),
                    error: &e,
                });
                let pause = interval.saturating_sub(began.elapsed());
                if deadline.passed() || !deadline.sleep(pause) {
                    return Err(E::gave_up(GaveUp {
                        elapsed: start.elapsed(),
                        attempts: attempt,
                        last: Some(Box::new(e)),
                        waiting_for: "ready".into(),
                    }));
                }
            }
        }
    }
}

/// Wait until `op` succeeds at every attempt for `window` (probing every `interval`, and once
/// more at the end of the window). A transient failure resets the window; a permanent one is
/// returned at once. `window == 0` returns at the first success.
pub fn wait_stable<E: Transient>(
    deadline: Deadline,
    interval: Duration,
    window: Duration,
    mut on_event: impl FnMut(Event<'_, E>),
    mut op: impl FnMut(Deadline) -> Result<(), E>,
) -> Result<(), E> {
    let start = Instant::now();
    let mut attempts = 0u32;
    loop {
        retry(deadline, interval, &mut on_event, |d| {
            attempts += 1;
            op(d)
        })?;
        if window.is_zero() {
            return Ok(());
        }
        let window_start = Instant::now();
        on_event(Event::WindowStarted {
            elapsed: start.elapsed(),
            window,
        });
        loop {
            let in_window = window_start.elapsed();
            if in_window >= window {
                return Ok(());
            }
            let pause = interval.min(window - in_window);
            if !deadline.sleep(pause) {
                return Err(E::gave_up(GaveUp {
                    elapsed: start.elapsed(),
                    attempts,
                    last: None,
                    waiting_for: format!("stable for {}s", window.as_secs_f64()),
                }));
            }
            attempts += 1;
            match op(deadline) {
                Ok(()) => {}
                Err(e) if !e.is_transient() => return Err(e),
                Err(e) => {
                    on_event(Event::WindowReset {
                        elapsed: start.elapsed(),
                        error: &e,
                    });
                    if !deadline.sleep(interval) {
                        return Err(E::gave_up(GaveUp {
                            elapsed: start.elapsed(),
                            attempts,
                            last: Some(Box::new(e)),
                            waiting_for: format!("stable for {}s", window.as_secs_f64()),
                        }));
                    }
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Kind;
    use std::cell::Cell;

    /// A stand-in for a client error: refused (transient), bad settings (permanent), gave up.
    #[derive(Debug)]
    enum Error {
        Refused,
        Config,
        GaveUp(GaveUp),
    }

    impl fmt::Display for Error {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match self {
                Error::Refused => f.write_str("connection refused"),
                Error::Config => f.write_str("bad"),
                Error::GaveUp(g) => write!(f, "{g}"),
            }
        }
    }

    impl std::error::Error for Error {}

    impl Classify for Error {
        fn kind(&self) -> Kind {
            match self {
                Error::Refused => Kind::Unavailable,
                Error::Config => Kind::Config,
                Error::GaveUp(g) => g.kind(),
            }
        }
    }

    impl Transient for Error {
        fn gave_up(g: GaveUp) -> Self {
            Error::GaveUp(g)
        }
    }

    fn refused() -> Error {
        Error::Refused
    }
    #[test]
    fn retries_transient_until_success() {
        let n = Cell::new(0);
        let mut failures = 0;
        let r = retry(
            Deadline::after(Duration::from_secs(5)),
            Duration::from_millis(1),
            |_| failures += 1,
            |_| {
                n.set(n.get() + 1);
                if n.get() < 3 {
                    Err(refused())
                } else {
                    Ok(7)
                }
            },
        );
        assert_eq!(r.unwrap(), 7);
        assert_eq!(failures, 2);
    }

    #[test]
    fn permanent_errors_are_not_retried() {
        let n = Cell::new(0);
        let r: Result<(), Error> = retry(
            Deadline::after(Duration::from_secs(5)),
            Duration::from_millis(1),
            |_| {},
            |_| {
                n.set(n.get() + 1);
                Err(Error::Config)
            },
        );
        assert!(matches!(r, Err(Error::Config)));
        assert_eq!(n.get(), 1);
    }

    #[test]
    fn gives_up_at_deadline_with_last_error() {
        let t = Instant::now();
        let r: Result<(), Error> = retry(
            Deadline::after(Duration::from_millis(100)),
            Duration::from_millis(30),
            |_| {},
            |_| Err(refused()),
        );
        let e = r.unwrap_err();
        assert!(t.elapsed() < Duration::from_millis(300));
        assert!(e.is_transient());
        assert!(e.to_string().contains("connection refused"), "{e}");
    }

    #[test]
    fn stable_window_resets_on_failure() {
        // Succeeds, fails once inside the window, then succeeds for good.
        let n = Cell::new(0);
        let mut resets = 0;
        let r = wait_stable(
            Deadline::after(Duration::from_secs(5)),
            Duration::from_millis(10),
            Duration::from_millis(50),
            |e| {
                if let Event::WindowReset { .. } = e {
                    resets += 1
                }
            },
            |_| {
                n.set(n.get() + 1);
                if n.get() == 2 {
                    Err(refused())
                } else {
                    Ok(())
                }
            },
        );
        r.unwrap();
        assert_eq!(resets, 1);
        // success, failure (reset), success (window restarts), and at least the probe that closes
        // the new window: however slow the machine, the window was started over.
        assert!(n.get() >= 4, "window restarted: {}", n.get());
    }

    #[test]
    fn window_longer_than_deadline_gives_up() {
        let r: Result<(), Error> = wait_stable(
            Deadline::after(Duration::from_millis(60)),
            Duration::from_millis(10),
            Duration::from_secs(10),
            |_| {},
            |_| Ok(()),
        );
        let e = r.unwrap_err();
        assert!(e.to_string().contains("stable for 10s"), "{e}");
    }
}
