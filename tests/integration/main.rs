//! djinit integration tests: the built binaries (`just build`) against throwaway PostgreSQL
//! clusters. One module per command; `harness` is the shared test harness.

mod checkmigrations;
mod dns_discover;
mod ensureadmin;
mod exporter;
mod harness;
mod harness_selftest;
mod hostile;
mod lockedmigrate;
mod real_apps;
mod runner;
mod settings;
mod tls;
mod wait4db;
