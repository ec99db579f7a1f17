//! Stopping a running component: SIGINT, SIGTERM and the `--timeout` wall-clock limit.
//!
//! A watcher thread receives the signals (signal-hook) and a timer thread waits for the limit.
//! Either records the first reason, bumps the engine epoch, which traps a guest busy computing
//! at its next epoch check, and wakes the runner's event loop, which abandons a guest blocked in
//! a host call (sleep, connect, socket read) at once. Threads, not the event loop, watch: a
//! CPU-bound guest never yields to the event loop. Signals after the first one are counted for
//! [`Stopper::signalled_again`] (`--exec` kills its command's group at once on a second one).

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use djinit_wait::Kind;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tokio::sync::Notify;
use wasmtime::Engine;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Interrupt,
    Terminate,
    Timeout(Duration),
}

impl Reason {
    pub fn kind(self) -> Kind {
        match self {
            Reason::Interrupt => Kind::Interrupted,
            Reason::Terminate => Kind::Terminated,
            Reason::Timeout(_) => Kind::Limit,
        }
    }

    /// One line, completing "`<command>` ...".
    pub fn describe(self) -> String {
        match self {
            Reason::Interrupt => "stopped by SIGINT".into(),
            Reason::Terminate => "stopped by SIGTERM".into(),
            Reason::Timeout(d) => format!(
                "stopped: wall-clock limit of {} s exceeded (--timeout)",
                d.as_secs_f64()
            ),
        }
    }
}

#[derive(Clone)]
pub struct Stopper(Arc<Inner>);

struct Inner {
    reason: OnceLock<Reason>,
    wake: Notify,
    /// Woken by each SIGINT/SIGTERM after the first stop request.
    again: Notify,
    engine: Engine,
}

impl Stopper {
    /// Start watching for SIGINT/SIGTERM (from now on they no longer kill the process) and, with
    /// `timeout`, for the wall-clock limit.
    pub fn start(engine: &Engine, timeout: Option<Duration>) -> anyhow::Result<Stopper> {
        let stopper = Stopper(Arc::new(Inner {
            reason: OnceLock::new(),
            wake: Notify::new(),
            again: Notify::new(),
            engine: engine.clone(),
        }));
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        let s = stopper.clone();
        std::thread::Builder::new()
            .name("djinit-signals".into())
            .spawn(move || {
                for sig in signals.forever() {
                    if s.reason().is_some() {
                        s.0.again.notify_one();
                        continue;
                    }
                    s.stop(if sig == SIGINT {
                        Reason::Interrupt
                    } else {
                        Reason::Terminate
                    });
                }
            })?;
        if let Some(limit) = timeout {
            let s = stopper.clone();
            std::thread::Builder::new()
                .name("djinit-timeout".into())
                .spawn(move || {
                    std::thread::sleep(limit);
                    s.stop(Reason::Timeout(limit));
                })?;
        }
        Ok(stopper)
    }

    /// Record `reason` (the first one wins), trap a computing guest, wake the event loop.
    pub fn stop(&self, reason: Reason) {
        if self.0.reason.set(reason).is_ok() {
            self.0.engine.increment_epoch();
            self.0.wake.notify_one();
        }
    }

    /// Why the component was stopped, if it was.
    pub fn reason(&self) -> Option<Reason> {
        self.0.reason.get().copied()
    }

    /// Resolves at the next SIGINT/SIGTERM after the stop request (one that came in before this
    /// is waited for counts as well).
    pub async fn signalled_again(&self) {
        self.0.again.notified().await;
    }

    /// Resolves once the component is to be stopped.
    pub async fn stopped(&self) -> Reason {
        loop {
            if let Some(r) = self.reason() {
                return r;
            }
            self.0.wake.notified().await;
        }
    }
}
