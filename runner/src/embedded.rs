//! The command components built into this binary (see `build.rs`), precompiled by
//! `djinit-compile` with the same engine configuration.

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// The precompiled component of command `name`, if this build embeds it.
pub fn get(name: &str) -> Option<&'static [u8]> {
    EMBEDDED.iter().find(|(n, _)| *n == name).map(|(_, b)| *b)
}

/// The names of all embedded commands, sorted.
pub fn names() -> impl Iterator<Item = &'static str> {
    EMBEDDED.iter().map(|(n, _)| *n)
}

pub fn is_empty() -> bool {
    EMBEDDED.is_empty()
}
