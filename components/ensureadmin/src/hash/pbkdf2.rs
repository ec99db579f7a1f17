//! PBKDF2-HMAC-SHA256 with a deadline: RustCrypto's `hmac` computes the first block, then a lean
//! loop over `sha2`'s compression function does the iterations.
//!
//! Why not the `pbkdf2` crate for all of it: (1) it runs every iteration in one call, and an
//! iteration count read from the database may be anything up to 4,294,967,295 (an hour of CPU);
//! here the clock is read every [`CHECK_EVERY`] iterations and the work stops once the deadline
//! has passed. (2) Per iteration it clones the keyed HMAC, copies the block into a buffer, pads
//! it and converts the state to bytes and back. Measured in the component (wasm32-wasip2 under
//! wasmtime 48, `examples/pbkdf2`): per iteration `pbkdf2::pbkdf2_hmac` runs 7,839 instructions
//! and the same loop over `hmac` 7,866, this loop 7,087 (callgrind, which a busy machine does not
//! disturb), i.e. 11 % more; in CPU time 0.75 and 0.72 µs against 0.63 µs (+15-19 %; 1,000,000
//! iterations: 630 ms here). The hand-written loop it replaced (HMAC, SHA-256 padding and base64
//! by hand too) ran 7,131. `just bench` prints the wall-clock comparison of the three.
//!
//! The loop: HMAC's inner (`key ^ ipad`) and outer (`key ^ opad`) blocks are compressed once;
//! each iteration is then exactly two SHA-256 compressions over pre-padded 64-byte blocks whose
//! first 32 bytes are overwritten in place: no allocation, no padding logic per iteration.

use hmac::{Hmac, KeyInit, Mac};
use sha2::block_api::compress256;
use sha2::{Digest, Sha256};
use std::time::Instant;

/// How often the loop reads the clock: every 16,384 iterations, about 10 ms of hashing in the
/// component (0.63 µs per iteration), so a deadline is overshot by at most that; one clock read
/// (a host call) per 10 ms costs nothing measurable.
pub const CHECK_EVERY: u32 = 16_384;

/// SHA-256 initial hash value (FIPS 180-4, 5.3.3); `sha2` keeps its own private.
const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// The deadline passed after `done` of `iterations` iterations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stopped after {done} of {iterations} PBKDF2 iterations: the deadline passed")]
pub struct Expired {
    pub done: u32,
    pub iterations: u32,
}

/// SHA-256 states after compressing HMAC's inner and outer key blocks (RFC 2104: a key longer
/// than the 64-byte block is hashed first).
fn key_states(key: &[u8]) -> ([u32; 8], [u32; 8]) {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let (mut inner, mut outer) = (IV, IV);
    compress256(&mut inner, &[k.map(|b| b ^ 0x36)]);
    compress256(&mut outer, &[k.map(|b| b ^ 0x5c)]);
    (inner, outer)
}

/// A 64-byte block holding a 32-byte message after one already-compressed 64-byte block:
/// 32 message bytes, 0x80, zeros, and the bit length (64 + 32) * 8 = 768.
fn padded_32() -> [u8; 64] {
    let mut b = [0u8; 64];
    b[32] = 0x80;
    b[56..].copy_from_slice(&768u64.to_be_bytes());
    b
}

/// The state `words` as big-endian bytes into the first 32 bytes of `out`.
#[inline(always)]
fn put_words(out: &mut [u8], words: &[u32; 8]) {
    for (o, w) in out[..32].chunks_exact_mut(4).zip(words) {
        o.copy_from_slice(&w.to_be_bytes());
    }
}

/// PBKDF2-HMAC-SHA256 with a 32-byte output (what Django stores: `dklen` = digest size).
/// `iterations` of 0 is treated as 1 (the first iteration of a block always runs). With a
/// `deadline`, gives up once it has passed (checked every [`CHECK_EVERY`] iterations).
pub fn pbkdf2_sha256(
    password: &[u8],
    salt: &[u8],
    iterations: u32,
    deadline: Option<Instant>,
) -> Result<[u8; 32], Expired> {
    // U1 = HMAC(P, S || INT(1)), a message of any length: the crate's job.
    let mut mac = Hmac::<Sha256>::new_from_slice(password).expect("HMAC takes keys of any length");
    mac.update(salt);
    mac.update(&1u32.to_be_bytes());
    let u1 = mac.finalize().into_bytes();
    let mut u = [0u32; 8];
    for (w, b) in u.iter_mut().zip(u1.chunks_exact(4)) {
        *w = u32::from_be_bytes(b.try_into().expect("4 bytes"));
    }
    // U2..Uc = HMAC(P, U(i-1)), 32-byte messages: two compressions each.
    let (key_inner, key_outer) = key_states(password);
    let mut acc = u;
    let mut inner_block = padded_32();
    let mut outer_block = padded_32();
    for i in 1..iterations {
        if i % CHECK_EVERY == 0 && deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Expired {
                done: i,
                iterations,
            });
        }
        put_words(&mut inner_block, &u);
        let mut s = key_inner;
        compress256(&mut s, core::slice::from_ref(&inner_block));
        put_words(&mut outer_block, &s);
        u = key_outer;
        compress256(&mut u, core::slice::from_ref(&outer_block));
        for (a, x) in acc.iter_mut().zip(&u) {
            *a ^= x;
        }
    }
    let mut out = [0u8; 32];
    put_words(&mut out, &acc);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn pbkdf2(p: &[u8], s: &[u8], n: u32) -> String {
        hex(&pbkdf2_sha256(p, s, n, None).unwrap())
    }

    #[test]
    fn pbkdf2_rfc7914_and_known_vectors() {
        // RFC 7914 section 11 (dkLen 64; the first 32 bytes are block 1).
        assert_eq!(
            pbkdf2(b"passwd", b"salt", 1),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        );
        assert_eq!(
            pbkdf2(b"Password", b"NaCl", 80000),
            "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56"
        );
        assert_eq!(
            pbkdf2(b"password", b"salt", 4096),
            "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"
        );
        // 0 iterations count as 1.
        assert_eq!(pbkdf2(b"passwd", b"salt", 0), pbkdf2(b"passwd", b"salt", 1));
    }

    #[test]
    fn equals_the_pbkdf2_crate_for_every_key_length() {
        // Keys around the 64-byte HMAC block (hashed first above it), salts of any length.
        for len in (0..=70).chain([128, 129, 200]) {
            let key: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let salt: Vec<u8> = (0..len % 23).map(|i| (i * 11) as u8).collect();
            for n in [1, 2, 3, 64] {
                let want = pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(&key, &salt, n);
                assert_eq!(pbkdf2_sha256(&key, &salt, n, None), Ok(want), "{len} {n}");
            }
        }
    }

    #[test]
    fn a_passed_deadline_stops_at_the_first_check() {
        let past = Instant::now();
        let e = pbkdf2_sha256(b"pw", b"salt", u32::MAX, Some(past)).unwrap_err();
        assert_eq!(
            e,
            Expired {
                done: CHECK_EVERY,
                iterations: u32::MAX
            }
        );
        // Fewer iterations than one check interval never look at the clock.
        assert!(pbkdf2_sha256(b"pw", b"salt", CHECK_EVERY, Some(past)).is_ok());
        // A future deadline changes nothing.
        let later = Instant::now() + Duration::from_secs(3600);
        assert_eq!(
            pbkdf2_sha256(b"Password", b"NaCl", 80000, Some(later)).map(|d| hex(&d)),
            Ok("4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56".into())
        );
    }
}
