use std::time::{Duration, Instant};

/// A point in time after which an operation must give up. `Deadline::never()` has no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    at: Option<Instant>,
}

impl Deadline {
    /// No limit.
    pub fn never() -> Self {
        Deadline { at: None }
    }

    /// `d` from now.
    pub fn after(d: Duration) -> Self {
        Deadline {
            at: Instant::now().checked_add(d),
        }
    }

    pub fn at(at: Instant) -> Self {
        Deadline { at: Some(at) }
    }

    pub fn instant(&self) -> Option<Instant> {
        self.at
    }

    /// Time left; `None` when unlimited, `Some(ZERO)` when passed.
    pub fn remaining(&self) -> Option<Duration> {
        self.at
            .map(|at| at.saturating_duration_since(Instant::now()))
    }

    pub fn passed(&self) -> bool {
        self.remaining() == Some(Duration::ZERO)
    }

    /// The earlier of the two.
    pub fn min(self, other: Deadline) -> Deadline {
        match (self.at, other.at) {
            (Some(a), Some(b)) => Deadline { at: Some(a.min(b)) },
            (Some(_), None) => self,
            _ => other,
        }
    }

    /// Sleep for `d`, or until the deadline if that comes first. Returns false if the deadline cut
    /// the sleep short (or had already passed).
    pub fn sleep(&self, d: Duration) -> bool {
        match self.remaining() {
            Some(left) if left <= d => {
                std::thread::sleep(left);
                false
            }
            _ => {
                std::thread::sleep(d);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_and_remaining() {
        let never = Deadline::never();
        assert_eq!(never.remaining(), None);
        assert!(!never.passed());
        let soon = Deadline::after(Duration::from_millis(50));
        assert_eq!(never.min(soon), soon);
        assert_eq!(soon.min(never), soon);
        let past = Deadline::after(Duration::ZERO);
        assert!(past.passed());
        assert_eq!(soon.min(past), past);
        assert!(!past.sleep(Duration::from_secs(5)));
    }
}
