//! `checkmigrations`' command line and what it needs from its host; the check is in `main.rs`.

pub mod options;

pub use options::Options;
