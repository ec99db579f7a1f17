//! Salts as Django makes them: `get_random_string(22)` over `a-zA-Z0-9`, here drawn from the WASI
//! CSPRNG (`wasi:random/random`; the OS generator natively). 22 characters of 62 give 131 bits,
//! above Django's 128-bit `salt_entropy`, so Django never asks for a salt upgrade.

use std::fmt;

/// Django's `RANDOM_STRING_CHARS`.
pub const ALPHABET: &[u8; 62] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
/// Django's salt length for PBKDF2 (`BasePasswordHasher.salt()`).
pub const LEN: usize = 22;

/// The random source failed (the host denied `wasi:random`). Not retryable.
#[derive(Debug)]
pub struct NoRandom(String);

impl fmt::Display for NoRandom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot read the system random generator: {}", self.0)
    }
}

impl std::error::Error for NoRandom {}

/// A fresh 22-character salt. Rejection sampling keeps every character equally likely.
pub fn generate() -> Result<String, NoRandom> {
    from_source(|buf| getrandom::fill(buf).map_err(|e| NoRandom(e.to_string())))
}

fn from_source(
    mut fill: impl FnMut(&mut [u8]) -> Result<(), NoRandom>,
) -> Result<String, NoRandom> {
    let mut out = String::with_capacity(LEN);
    let mut buf = [0u8; 32];
    while out.len() < LEN {
        fill(&mut buf)?;
        for &b in &buf {
            // 248 = 4 * 62: bytes at or above it would bias the first characters.
            if b < 248 && out.len() < LEN {
                out.push(ALPHABET[(b % 62) as usize] as char);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_and_uniqueness() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_eq!(a.len(), LEN);
        assert!(a.bytes().all(|c| ALPHABET.contains(&c)));
        assert_ne!(a, b);
    }

    #[test]
    fn rejects_biased_bytes() {
        // A source of only 255s never yields a character; 0..=247 map uniformly.
        let mut calls = 0;
        let s = from_source(|buf| {
            calls += 1;
            buf.fill(if calls < 3 { 255 } else { 61 });
            Ok(())
        })
        .unwrap();
        assert_eq!(s, "9".repeat(LEN));
        assert_eq!(calls, 3);
    }
}
