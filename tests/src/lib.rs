//! Test harness for djinit: throwaway PostgreSQL clusters, the built binaries, a process runner
//! that never hangs, and fake servers that misbehave on purpose.
//!
//! Shared by the integration tests (`tests/integration`), `demo` and `bench`.
//!
//! ```no_run
//! use djinit_tests::{djinit, run, Auth, Cluster};
//! use std::time::Duration;
//!
//! let pg = Cluster::start(Auth::Scram);
//! let out = run(
//!     djinit().args(["wait4db", "-s", "0"]).env("DATABASE_URL", pg.url()),
//!     Duration::from_secs(30),
//! );
//! out.assert_code(0);
//! ```
//!
//! Everything here panics on harness failures (a missing binary, a cluster that will not start):
//! in a test that is a failure with a readable message, which is what we want.

pub mod cluster;
pub mod django;
pub mod dns_server;
pub mod fakes;
pub mod hostile;
pub mod memcached;
pub mod paths;
pub mod pgbouncer;
pub mod process;
pub mod secret;
pub mod ship;
pub mod tls;
pub mod urlenc;
pub mod wasi_hosts;

pub use cluster::{Auth, Builder, Cluster};
pub use django::DjangoProject;
pub use fakes::{free_port, Fake};
pub use paths::{component, djinit, precompiled, python, target_dir, workspace_root};
pub use process::{describe, run, run_with_input, spawn, spawn_with_input, Output, Running};
pub use secret::{redact, PASSWORD, WRONG_PASSWORD};
pub use urlenc::encode as percent_encode;

/// The same items under the name the integration tests use (`harness::Cluster`, ...).
pub mod harness {
    pub use crate::cluster::{self, Auth, Builder, Cluster};
    pub use crate::django::{self, DjangoProject};
    pub use crate::dns_server::{DnsServer, Malformation};
    pub use crate::fakes::{self, free_port, Fake};
    pub use crate::memcached::{common_free_port, Memcached};
    pub use crate::paths::{component, djinit, precompiled, python, target_dir, workspace_root};
    pub use crate::pgbouncer::{PgBouncer, PoolMode};
    pub use crate::process::{
        describe, run, run_with_input, spawn, spawn_with_input, Output, Running,
    };
    pub use crate::secret::{redact, PASSWORD, WRONG_PASSWORD};
    pub use crate::ship;
    pub use crate::tls::{self, Pki, ServerCert};
    pub use crate::urlenc::encode as percent_encode;
    pub use crate::wasi_hosts::{self, Host, Recipe};
}
