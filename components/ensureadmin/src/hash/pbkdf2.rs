//! PBKDF2-HMAC-SHA256 with a lean inner loop.
//!
//! HMAC's inner and outer key blocks are compressed once ([`HmacKey`]); each PBKDF2 iteration is
//! then exactly two SHA-256 compressions over pre-padded 64-byte blocks whose first 32 bytes are
//! overwritten in place: no allocation, no hashing state objects, no padding logic per iteration.

use sha2::block_api::compress256;

/// SHA-256 initial hash value (FIPS 180-4, 5.3.3).
const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// SHA-256 of `data`, continuing from `state` after `prefix_blocks` already-compressed blocks.
fn finish(mut state: [u32; 8], prefix_blocks: u64, data: &[u8]) -> [u8; 32] {
    let mut chunks = data.chunks_exact(64);
    for block in &mut chunks {
        compress256(&mut state, &[block.try_into().expect("64 bytes")]);
    }
    let rest = chunks.remainder();
    let bits = (prefix_blocks * 64 + data.len() as u64) * 8;
    let mut tail = [[0u8; 64]; 2];
    let flat = tail.as_flattened_mut();
    flat[..rest.len()].copy_from_slice(rest);
    flat[rest.len()] = 0x80;
    let n = if rest.len() < 56 { 1 } else { 2 };
    flat[n * 64 - 8..n * 64].copy_from_slice(&bits.to_be_bytes());
    compress256(&mut state, &tail[..n]);
    words_to_bytes(&state)
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    finish(IV, 0, data)
}

fn words_to_bytes(words: &[u32; 8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (o, w) in out.chunks_exact_mut(4).zip(words) {
        o.copy_from_slice(&w.to_be_bytes());
    }
    out
}

/// An HMAC-SHA256 key with its inner (`key ^ ipad`) and outer (`key ^ opad`) blocks already
/// compressed.
#[derive(Clone)]
pub struct HmacKey {
    inner: [u32; 8],
    outer: [u32; 8],
}

impl HmacKey {
    pub fn new(key: &[u8]) -> Self {
        let mut k = [0u8; 64];
        if key.len() > 64 {
            k[..32].copy_from_slice(&sha256(key));
        } else {
            k[..key.len()].copy_from_slice(key);
        }
        let mut ipad = [0x36u8; 64];
        let mut opad = [0x5cu8; 64];
        for i in 0..64 {
            ipad[i] ^= k[i];
            opad[i] ^= k[i];
        }
        let mut inner = IV;
        let mut outer = IV;
        compress256(&mut inner, &[ipad]);
        compress256(&mut outer, &[opad]);
        HmacKey { inner, outer }
    }

    /// HMAC-SHA256(key, msg) for any message.
    pub fn mac(&self, msg: &[u8]) -> [u8; 32] {
        let inner = finish(self.inner, 1, msg);
        finish(self.outer, 1, &inner)
    }
}

/// A 64-byte block holding a 32-byte message after one already-compressed 64-byte block:
/// 32 message bytes, 0x80, zeros, and the bit length (64 + 32) * 8 = 768.
fn padded_32() -> [u8; 64] {
    let mut b = [0u8; 64];
    b[32] = 0x80;
    b[56..].copy_from_slice(&768u64.to_be_bytes());
    b
}

#[inline(always)]
fn put_words(block: &mut [u8; 64], words: &[u32; 8]) {
    for (o, w) in block[..32].chunks_exact_mut(4).zip(words) {
        o.copy_from_slice(&w.to_be_bytes());
    }
}

/// PBKDF2-HMAC-SHA256 with a 32-byte output (what Django stores: `dklen` = digest size).
/// `iterations` of 0 is treated as 1, as in a single-block PBKDF2 the first iteration always runs.
pub fn pbkdf2_sha256(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let key = HmacKey::new(password);
    // U1 = HMAC(P, S || INT(1))
    let mut first = Vec::with_capacity(salt.len() + 4);
    first.extend_from_slice(salt);
    first.extend_from_slice(&1u32.to_be_bytes());
    let u1 = key.mac(&first);
    let mut u = [0u32; 8];
    for (w, b) in u.iter_mut().zip(u1.chunks_exact(4)) {
        *w = u32::from_be_bytes(b.try_into().expect("4 bytes"));
    }
    let mut acc = u;
    let mut inner_block = padded_32();
    let mut outer_block = padded_32();
    for _ in 1..iterations {
        put_words(&mut inner_block, &u);
        let mut s = key.inner;
        compress256(&mut s, core::slice::from_ref(&inner_block));
        put_words(&mut outer_block, &s);
        u = key.outer;
        compress256(&mut u, core::slice::from_ref(&outer_block));
        for (a, x) in acc.iter_mut().zip(&u) {
            *a ^= x;
        }
    }
    words_to_bytes(&acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn sha256_vectors() {
        assert_eq!(
            hex(&sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // 56 bytes: padding spills into a second block.
        assert_eq!(
            hex(&sha256(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
    }

    #[test]
    fn hmac_rfc4231() {
        // Test case 2 and 6 (key longer than a block).
        assert_eq!(
            hex(&HmacKey::new(b"Jefe").mac(b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(&HmacKey::new(&[0xaa; 131])
                .mac(b"Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn pbkdf2_rfc7914_and_known_vectors() {
        // RFC 7914 section 11 (dkLen 64; the first 32 bytes are block 1).
        assert_eq!(
            hex(&pbkdf2_sha256(b"passwd", b"salt", 1)),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        );
        assert_eq!(
            hex(&pbkdf2_sha256(b"Password", b"NaCl", 80000)),
            "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56"
        );
        assert_eq!(
            hex(&pbkdf2_sha256(b"password", b"salt", 4096)),
            "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"
        );
    }
}
