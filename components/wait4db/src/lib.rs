//! `wait4db`'s command line and what it needs from its host; the waiting is in `main.rs`.

pub mod options;

pub use options::Options;
