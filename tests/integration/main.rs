//! djinit integration tests: the built binaries (`just build`) against throwaway PostgreSQL
//! clusters. One module per command; `harness` is the shared test harness.

mod checkmigrations;
mod ddl_guard;
mod demo;
mod dns_discover;
mod ensureadmin;
mod exporter;
mod harness;
mod harness_selftest;
mod hostile;
mod image;
mod jco;
mod kubernetes;
mod lockedmigrate;
mod pgbouncer;
mod readme_recipes;
mod real_apps;
mod runner;
mod settings;
mod tls;
mod wait4db;
mod wasmtime_cli;
mod wheel;
