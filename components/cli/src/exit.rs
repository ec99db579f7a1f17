//! The exit codes of every djinit command, and the one mapping from errors to them: an error's
//! [`Kind`] (which the library that made it decides, `djinit_wait::Classify`) becomes a code in
//! [`for_kind`]; nothing else in djinit names a code for an error.
//!
//! Codes follow BSD `sysexits.h` where one fits. "Retry may help" codes (1, 69, 75, 130, 143) and
//! "retrying is pointless" codes (64, 65, 66, 70, 71, 76, 77, 78) never overlap, so a Kubernetes
//! `podFailurePolicy` can fail a Job at once on the second group:
//!
//! ```yaml
//! podFailurePolicy:
//!   rules:
//!     - action: FailJob
//!       onExitCodes: { operator: In, values: [64, 65, 66, 70, 71, 76, 77, 78] }
//! ```

use djinit_wait::{kind_of, Classifier, Classify, GaveUp, Kind};
use std::fmt;

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    /// Done: the condition holds or the work is applied.
    Ok = 0,
    /// The checked condition does not hold yet (e.g. migrations pending). Retry may help.
    NotMet = 1,
    /// Invalid flag, argument or option value. Pointless to retry.
    Usage = 64,
    /// Input data rejected: a weak password, a malformed hash, an invalid bundle, or a statement the
    /// database refused (SQLSTATE printed). Pointless to retry.
    Data = 65,
    /// An input file is missing or unreadable (password file, bundle). Pointless to retry.
    NoInput = 66,
    /// The database is unreachable or not ready: connection refused or reset, host name not
    /// resolving yet, starting up, too many clients, schema not migrated yet. Retry may help.
    Unavailable = 69,
    /// Internal error: a bug in djinit. Pointless to retry; please report it.
    Software = 70,
    /// The runner stopped the component: memory limit or wall-clock limit exceeded. Pointless to
    /// retry with the same limits.
    Limit = 71,
    /// Timed out: the deadline passed first (`--timeout`, `--lock-timeout`). Retry may help.
    Timeout = 75,
    /// The peer is not a PostgreSQL server, or broke the protocol. Pointless to retry.
    Protocol = 76,
    /// Authentication failed or permission denied, by the server or the runner's network policy.
    /// Pointless to retry.
    NoPerm = 77,
    /// Configuration error: bad or missing DATABASE_URL, unknown database, unsupported setting.
    /// Pointless to retry.
    Config = 78,
    /// Stopped by SIGINT. Retry may help.
    Interrupted = 130,
    /// Stopped by SIGTERM. Retry may help.
    Terminated = 143,
}

impl ExitCode {
    pub const ALL: [ExitCode; 14] = [
        ExitCode::Ok,
        ExitCode::NotMet,
        ExitCode::Usage,
        ExitCode::Data,
        ExitCode::NoInput,
        ExitCode::Unavailable,
        ExitCode::Software,
        ExitCode::Limit,
        ExitCode::Timeout,
        ExitCode::Protocol,
        ExitCode::NoPerm,
        ExitCode::Config,
        ExitCode::Interrupted,
        ExitCode::Terminated,
    ];

    /// Whether running the command again later may succeed.
    pub fn retry_may_help(self) -> bool {
        matches!(
            self,
            ExitCode::NotMet
                | ExitCode::Unavailable
                | ExitCode::Timeout
                | ExitCode::Interrupted
                | ExitCode::Terminated
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            ExitCode::Ok => "ok",
            ExitCode::NotMet => "not met",
            ExitCode::Usage => "usage",
            ExitCode::Data => "data",
            ExitCode::NoInput => "no input",
            ExitCode::Unavailable => "unavailable",
            ExitCode::Software => "internal",
            ExitCode::Limit => "limit",
            ExitCode::Timeout => "timeout",
            ExitCode::Protocol => "protocol",
            ExitCode::NoPerm => "no permission",
            ExitCode::Config => "config",
            ExitCode::Interrupted => "interrupted",
            ExitCode::Terminated => "terminated",
        }
    }

    pub fn meaning(self) -> &'static str {
        match self {
            ExitCode::Ok => "done: the condition holds or the work is applied",
            ExitCode::NotMet => "the checked condition does not hold yet (e.g. migrations pending)",
            ExitCode::Usage => "invalid flag, argument or option value",
            ExitCode::Data => "input rejected: weak password, malformed hash, bad bundle, or SQL the database refused",
            ExitCode::NoInput => "an input file is missing or unreadable",
            ExitCode::Unavailable => "database unreachable or not ready (refused, starting up, schema not migrated yet)",
            ExitCode::Software => "internal error in djinit (please report)",
            ExitCode::Limit => "stopped by the runner: memory or wall-clock limit exceeded",
            ExitCode::Timeout => "timed out: the deadline passed first",
            ExitCode::Protocol => "the peer is not a PostgreSQL server or broke the protocol",
            ExitCode::NoPerm => "authentication failed or permission denied (server or network policy)",
            ExitCode::Config => "configuration error: bad or missing DATABASE_URL, unknown database",
            ExitCode::Interrupted => "stopped by SIGINT",
            ExitCode::Terminated => "stopped by SIGTERM",
        }
    }

    pub fn from_code(code: i32) -> Option<ExitCode> {
        Self::ALL.into_iter().find(|c| *c as i32 == code)
    }
}

impl fmt::Display for ExitCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", *self as u8, self.name())
    }
}

/// The table as printed at the end of every `--help` and in the README.
pub fn table() -> String {
    let mut s = String::from("Exit codes (same for every djinit command):\n");
    for c in ExitCode::ALL {
        let retry = if c == ExitCode::Ok {
            "        "
        } else if c.retry_may_help() {
            "retry   "
        } else {
            "no-retry"
        };
        s.push_str(&format!("  {:>3}  {retry}  {}\n", c as u8, c.meaning()));
    }
    s
}

/// An outcome that is not a library error, with its kind (like "3 migrations pending": kind
/// `NotMet`, or "the user table does not exist yet": kind `Unavailable`).
#[derive(Debug)]
pub struct Failure {
    pub kind: Kind,
    pub message: String,
    /// Print nothing (the command already reported).
    pub quiet: bool,
}

impl Failure {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
            quiet: false,
        }
    }

    /// Exit with `kind`'s code, printing nothing more.
    pub fn quiet(kind: Kind) -> Self {
        Failure {
            kind,
            message: String::new(),
            quiet: true,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

impl Classify for Failure {
    fn kind(&self) -> Kind {
        self.kind
    }
}

/// The exit code of a kind of failure: the table's one mapping.
pub fn for_kind(kind: Kind) -> ExitCode {
    match kind {
        Kind::NotMet => ExitCode::NotMet,
        Kind::Usage => ExitCode::Usage,
        Kind::Data => ExitCode::Data,
        Kind::NoInput => ExitCode::NoInput,
        Kind::Unavailable => ExitCode::Unavailable,
        Kind::Internal => ExitCode::Software,
        Kind::Timeout => ExitCode::Timeout,
        Kind::Protocol => ExitCode::Protocol,
        Kind::Denied => ExitCode::NoPerm,
        Kind::Config => ExitCode::Config,
        Kind::Limit => ExitCode::Limit,
        Kind::Interrupted => ExitCode::Interrupted,
        Kind::Terminated => ExitCode::Terminated,
    }
}

/// The kind whose code is `code` (`None` for [`ExitCode::Ok`]): for a code reported by a
/// component, to be passed on as the runner's own failure.
pub fn kind_for_code(code: ExitCode) -> Option<Kind> {
    Kind::ALL.into_iter().find(|k| for_kind(*k) == code)
}

/// The kind of a file or socket error that reached a command unclassified: a missing or
/// unreadable file is "no input".
fn io_kind(e: &std::io::Error) -> Kind {
    match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied => Kind::NoInput,
        std::io::ErrorKind::TimedOut => Kind::Timeout,
        _ => Kind::Unavailable,
    }
}

/// The kind of any error a command returns: the first error in the chain that this crate,
/// `djinit-wait` or the command's `classify` (its libraries' classifier) knows decides; unknown
/// errors are internal errors.
pub fn kind_of_error(err: &anyhow::Error, classify: Classifier) -> Kind {
    for cause in err.chain() {
        let kind = kind_of::<Failure>(cause)
            .or_else(|| kind_of::<crate::UsageError>(cause))
            .or_else(|| kind_of::<GaveUp>(cause))
            .or_else(|| classify(cause))
            .or_else(|| cause.downcast_ref::<std::io::Error>().map(io_kind));
        if let Some(kind) = kind {
            return kind;
        }
    }
    Kind::Internal
}

/// The exit code for any error a command returns ([`kind_of_error`], [`for_kind`]).
pub fn for_error(err: &anyhow::Error, classify: Classifier) -> ExitCode {
    for_kind(kind_of_error(err, classify))
}

/// A classifier that knows no library's errors (for commands whose errors are all of this crate,
/// `djinit-wait` or std).
pub fn no_library(_: &(dyn std::error::Error + 'static)) -> Option<Kind> {
    None
}

pub(crate) fn is_quiet(err: &anyhow::Error) -> bool {
    err.downcast_ref::<Failure>().is_some_and(|f| f.quiet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_groups_do_not_overlap_and_codes_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for c in ExitCode::ALL {
            assert!(seen.insert(c as u8), "duplicate {c}");
            assert_eq!(ExitCode::from_code(c as i32), Some(c));
        }
        assert!(ExitCode::Timeout.retry_may_help());
        assert!(!ExitCode::Usage.retry_may_help());
        assert!(!ExitCode::NoPerm.retry_may_help());
        assert!(table().contains(" 75  retry"));
    }

    #[test]
    fn readme_prints_this_table() {
        let readme =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
                .expect("README.md at the workspace root");
        assert!(
            readme.contains(&table()),
            "README.md must contain exit::table() verbatim:\n{}",
            table()
        );
    }

    /// A library error, classified by its library's classifier only.
    #[derive(Debug, thiserror::Error)]
    #[error("auth failed")]
    struct AuthFailed;

    impl Classify for AuthFailed {
        fn kind(&self) -> Kind {
            Kind::Denied
        }
    }

    fn library(e: &(dyn std::error::Error + 'static)) -> Option<Kind> {
        kind_of::<AuthFailed>(e)
    }

    #[test]
    fn errors_map_through_context() {
        let e = anyhow::Error::new(AuthFailed).context("connecting");
        assert_eq!(for_error(&e, library), ExitCode::NoPerm);
        assert_eq!(for_error(&e, no_library), ExitCode::Software);
        let e = anyhow::Error::new(crate::UsageError("bad flag".into()));
        assert_eq!(for_error(&e, library), ExitCode::Usage);
        let e = anyhow::anyhow!("mystery");
        assert_eq!(for_error(&e, library), ExitCode::Software);
        let e = anyhow::Error::new(Failure::new(Kind::NotMet, "2 pending"));
        assert_eq!(for_error(&e, no_library), ExitCode::NotMet);
        let e = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::NotFound));
        assert_eq!(for_error(&e, no_library), ExitCode::NoInput);
    }

    /// Transient kinds, and only those, map to "retry may help" codes.
    #[test]
    fn kinds_keep_their_retry_group() {
        let mut codes = std::collections::HashSet::new();
        for k in Kind::ALL {
            assert_eq!(for_kind(k).retry_may_help(), k.is_transient(), "{k:?}");
            assert_eq!(kind_for_code(for_kind(k)), Some(k));
            codes.insert(for_kind(k) as u8);
        }
        // Every code but 0 is some kind's.
        assert_eq!(codes.len(), ExitCode::ALL.len() - 1);
    }
}
