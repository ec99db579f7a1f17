//! The migration bundle: what `manage.py djinit_export DIR` writes and the djinit migration
//! commands read, with no Python at deploy time.
//!
//! - [`manifest`]: `DIR/manifest.json` (format `djinit-migrations`, version 1), parsed and
//!   verified (every migration's checksum and the whole manifest's). A bundle whose checksums do
//!   not match is rejected (exit 65), a missing one is "no input" (exit 66).
//! - [`graph`]: Django's migration graph rebuilt from the manifest, with `forwards_plan` /
//!   `backwards_plan` in Django's order.
//! - [`state`]: what the database has recorded in `django_migrations`, and what is pending.
//! - [`variant`]: which of a migration's SQL variants Django would run, given what is applied.
//!
//! ```no_run
//! # fn f(client: &mut djinit_pg::Client) -> Result<(), Box<dyn std::error::Error>> {
//! let bundle = djinit_bundle::Bundle::load("/migrations".as_ref())?;
//! let pending = djinit_bundle::state::pending(client, &bundle)?;
//! println!("{} migrations pending", pending.len());
//! # Ok(()) }
//! ```
//!
//! Security posture: the bundle is trusted input written at image build time (it holds SQL that
//! is executed as is); it is read-only at run time and its checksums catch corruption, not an
//! attacker who can write it.

pub mod graph;
pub mod manifest;
pub mod state;
pub mod variant;
pub mod wait;

pub use manifest::{Bundle, BundleError, Guard, Key, Migration, Row, Step, Variant};

/// The variable naming the bundle directory when `--bundle` is not given.
pub const DIR_VAR: &str = "DJINIT_MIGRATIONS";

/// The bundle directory a command uses: `--bundle DIR`, else `$DJINIT_MIGRATIONS` (empty counts
/// as unset). The one place this is decided: the commands that read bundles and, through their
/// `needs`, the runner's read-only mount use it.
pub fn dir(
    flag: Option<String>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<std::path::PathBuf> {
    flag.or_else(|| env(DIR_VAR).filter(|v| !v.is_empty()))
        .map(std::path::PathBuf::from)
}

/// The kind of an error of this crate, or of the PostgreSQL client under it, found in a chain (a
/// `djinit_wait::Classifier` for the commands that read bundles).
pub fn classify(e: &(dyn std::error::Error + 'static)) -> Option<djinit_wait::Kind> {
    use djinit_wait::kind_of;
    kind_of::<BundleError>(e)
        .or_else(|| kind_of::<state::StateError>(e))
        .or_else(|| kind_of::<wait::NotMigrated>(e))
        .or_else(|| djinit_pg::classify(e))
}
