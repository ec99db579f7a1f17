//! What kind of failure happened: the classification every library error of djinit gives, and the
//! only thing the command-line layer looks at to choose an exit code (`djinit_cli::exit`).

use std::error::Error;

/// The kind of a failure. Five are transient ([`Kind::is_transient`]): retrying later may help,
/// and [`crate::retry()`] retries exactly those.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The checked condition does not hold yet (migrations pending, fewer endpoints than asked).
    /// Transient.
    NotMet,
    /// A bad command line: flag, argument or option value. Permanent.
    Usage,
    /// Input data rejected: a weak password, a malformed hash, an invalid bundle, a statement the
    /// database refused. Permanent.
    Data,
    /// An input file is missing or unreadable. Permanent.
    NoInput,
    /// The service cannot be reached or is not ready now. Transient.
    Unavailable,
    /// A bug: something that cannot happen did. Permanent.
    Internal,
    /// A deadline passed. Transient.
    Timeout,
    /// The peer broke the protocol it should speak. Permanent.
    Protocol,
    /// Authentication failed or permission denied (by a server, or the host's policy). Permanent.
    Denied,
    /// Settings are wrong or incomplete. Permanent.
    Config,
    /// A resource limit (memory, wall-clock) stopped the work. Permanent with the same limits.
    Limit,
    /// Stopped by an interrupt (SIGINT). Transient.
    Interrupted,
    /// Stopped by a termination request (SIGTERM). Transient.
    Terminated,
}

impl Kind {
    pub const ALL: [Kind; 13] = [
        Kind::NotMet,
        Kind::Usage,
        Kind::Data,
        Kind::NoInput,
        Kind::Unavailable,
        Kind::Internal,
        Kind::Timeout,
        Kind::Protocol,
        Kind::Denied,
        Kind::Config,
        Kind::Limit,
        Kind::Interrupted,
        Kind::Terminated,
    ];

    /// Whether trying again later may succeed.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Kind::NotMet | Kind::Unavailable | Kind::Timeout | Kind::Interrupted | Kind::Terminated
        )
    }
}

/// An error that knows its [`Kind`].
pub trait Classify {
    fn kind(&self) -> Kind;

    fn is_transient(&self) -> bool {
        self.kind().is_transient()
    }
}

/// Finds the kind of one error of a chain, if it is of a type the classifier knows. Each library
/// exports one for its error types (`djinit_pg::classify`, ...); a command hands its classifier to
/// `djinit_cli::main`, which walks the error chain with it.
pub type Classifier = fn(&(dyn Error + 'static)) -> Option<Kind>;

/// The kind of `e` if it is an `E`: the building block of a [`Classifier`].
pub fn kind_of<E: Classify + Error + 'static>(e: &(dyn Error + 'static)) -> Option<Kind> {
    e.downcast_ref::<E>().map(Classify::kind)
}

impl Classify for crate::GaveUp {
    fn kind(&self) -> Kind {
        Kind::Timeout
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_kinds() {
        let transient: Vec<Kind> = Kind::ALL.into_iter().filter(|k| k.is_transient()).collect();
        assert_eq!(
            transient,
            [
                Kind::NotMet,
                Kind::Unavailable,
                Kind::Timeout,
                Kind::Interrupted,
                Kind::Terminated
            ]
        );
    }
}
