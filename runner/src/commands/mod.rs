//! The per-command policy table: what each embedded command is granted by default.
//!
//! One module per command, each exporting `COMMAND`. Adding a command:
//!
//! 1. write `commands/<name>.rs` with `pub const COMMAND: Command = Command { name, summary,
//!    grants }` (see `wait4db.rs`: database environment variables and TCP to the database);
//! 2. add `mod <name>;` and `<name>::COMMAND` to [`ALL`] below.
//!
//! Helpers for what several commands share live in [`database`] (the database alias from
//! `-d/--database`, its environment variables and TCP targets). A command embedded without an
//! entry here runs with nothing granted but the runner options.
//!
//! A policy is computed from the command's arguments and the environment the component will see
//! (`--env` values over the host's). It never fails: a bad or missing setting just grants less,
//! and the component itself reports the problem with its usual message and exit code.

mod checkmigrations;
pub mod database;
mod dns_discover;
mod ensureadmin;
mod lockedmigrate;
mod wait4db;

use crate::policy::{EnvView, Grants};

/// One command's default grants.
pub struct Command {
    pub name: &'static str,
    /// One line for `djinit --help`.
    pub summary: &'static str,
    /// What the command may use when run with `args` in environment `env`.
    pub grants: fn(args: &[String], env: &EnvView) -> Grants,
}

/// Every command with a policy.
pub const ALL: &[Command] = &[
    wait4db::COMMAND,
    dns_discover::COMMAND,
    ensureadmin::COMMAND,
    lockedmigrate::COMMAND,
    checkmigrations::COMMAND,
];

pub fn find(name: &str) -> Option<&'static Command> {
    ALL.iter().find(|c| c.name == name)
}
