//! What a command needs from its host, computed by the command's own code from its parsed options
//! and the environment it will see (`needs(&Options, env)` in each command library). The djinit
//! runner turns it into grants (`runner/src/commands`); nothing else is granted to an embedded
//! command but what the runner's own options add. Pure: no I/O, no clock.

use std::net::SocketAddr;
use std::path::PathBuf;

/// A TCP peer the command connects to, other than the database and nameservers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peer {
    /// A host name or IP literal, and a port.
    Host(String, u16),
    /// Any address on this port (`0`: any port): for peers only a DNS answer the host cannot
    /// see names (dns-discover `--probe` with its own DNS client). The weakest grant.
    AnyHost(u16),
}

/// A native command the host runs for the component (see [`Needs::host_command`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCommand {
    /// The program and its arguments.
    pub argv: Vec<String>,
    pub when: HostRun,
}

/// When the host runs a [`HostCommand`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostRun {
    /// Once, as the whole job, while the component holds the lock (`--exec`); its exit code is
    /// the run's.
    Once,
    /// For each step the component hands back, with the step's arguments appended
    /// (`--python CMD`: Django's `migrate APP NAME` for each Python migration).
    PerStep,
}

/// Everything a command may touch besides stdio, clocks and random.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// The database alias (`-d/--database`) whose settings the command reads: its variables,
    /// TCP to the hosts they name, the TLS files they name (read-only).
    pub database: Option<String>,
    /// Environment variables the command reads, besides the database's.
    pub env: Vec<String>,
    /// A migration bundle directory, read-only.
    pub bundle: Option<PathBuf>,
    /// Files read, read-only (their directory is mounted; see the runner's `files`).
    pub files: Vec<String>,
    /// A directory the command writes to (a file is written as a temporary and renamed there).
    pub output_dir: Option<PathBuf>,
    /// DNS servers asked over UDP (and TCP after a truncated reply).
    pub nameservers: Vec<SocketAddr>,
    /// Other TCP peers.
    pub connect: Vec<Peer>,
    /// The command reads the host's resolver configuration from this variable when it is not
    /// set: the host hands `/etc/resolv.conf`'s content over (the command reads no host file).
    pub resolv_conf_var: Option<&'static str>,
    /// A command line the host runs natively, outside the sandbox, while the component holds
    /// what it acquired for it (lockedmigrate `--exec -- CMD` and `--python CMD`: the advisory
    /// lock, through its `lock-session` export).
    pub host_command: Option<HostCommand>,
    /// SIGTERM is how this run normally ends (`dns-discover --watch`: a sidecar, stopped with
    /// every Pod stop): the host reports it as success (one line, exit 0), not as exit 143.
    pub sigterm_is_shutdown: bool,
}

impl Needs {
    /// The needs of a command line: `needs(options)` when it parses; nothing for help and
    /// version (the command only prints); for a bad command line, only `parser_env`, the
    /// variables the command's parser reads, so the command sees what the host saw and reports
    /// the same usage error.
    pub fn of<T>(
        parsed: Result<crate::Parsed<T>, crate::UsageError>,
        parser_env: &[&str],
        needs: impl FnOnce(T) -> Needs,
    ) -> Needs {
        match parsed {
            Ok(crate::Parsed::Run(options)) => needs(options),
            Ok(_) => Needs::default(),
            Err(_) => Needs {
                env: parser_env.iter().map(|v| v.to_string()).collect(),
                ..Needs::default()
            },
        }
    }
}
