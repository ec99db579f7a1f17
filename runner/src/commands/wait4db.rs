//! `wait4db`: waits until the database accepts connections.
//!
//! Grants: the environment variables of the database alias (`DATABASE_URL[_ALIAS]`, and for
//! `default` the libpq `PG*` variables), outbound TCP to the hosts that configuration names.
//! With `--migrated`, also `DJINIT_MIGRATIONS` and the bundle directory (`--bundle DIR`, else
//! `$DJINIT_MIGRATIONS`) read-only. Nothing else: no other directories, no UDP.

use super::{database, Command};
use crate::policy::{EnvView, Grants};

pub const COMMAND: Command = Command {
    name: "wait4db",
    summary: "wait until the database accepts connections (-t SECS, -d ALIAS)",
    grants,
};

fn grants(args: &[String], env: &EnvView) -> Grants {
    // `--migrated`: also the migration bundle, read-only, and DJINIT_MIGRATIONS (as lockedmigrate).
    if args
        .iter()
        .take_while(|a| *a != "--")
        .any(|a| a == "--migrated")
    {
        return super::lockedmigrate::bundle_grants(args, env);
    }
    database::grants(&database::alias(args), env)
}
