//! `lockedmigrate`'s command line and what it needs from its host; the migrating is in
//! `main.rs` and its modules.

pub mod options;

pub use options::Options;
