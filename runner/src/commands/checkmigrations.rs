//! `checkmigrations`: are all migrations of the bundle recorded?
//!
//! Grants: as `lockedmigrate` (database variables and TCP, `DJINIT_MIGRATIONS`, the bundle
//! directory read-only). Nothing writable, no UDP.

use super::{lockedmigrate, Command};

pub const COMMAND: Command = Command {
    name: "checkmigrations",
    summary:
        "exit 0 when every migration of the bundle is applied, 1 when some are pending (--wait)",
    grants: lockedmigrate::bundle_grants,
};
