//! Standard base64 (RFC 4648 alphabet), as Python's `base64.b64encode`/`b64decode` use it.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encode with `=` padding.
pub fn encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn value(c: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u32)
}

/// Decode strictly: `padded` demands `=` padding to a multiple of 4, otherwise padding must be
/// absent (argon2's PHC strings). Unused trailing bits must be zero (canonical encoding).
pub fn decode(s: &str, padded: bool) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let body = if padded {
        if bytes.len() % 4 != 0 {
            return None;
        }
        let pad = bytes.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 {
            return None;
        }
        &bytes[..bytes.len() - pad]
    } else {
        bytes
    };
    if body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    for chunk in body.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        let full = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        let keep = chunk.len() - 1;
        out.extend_from_slice(&full[..keep]);
        if full[keep..].iter().any(|&b| b != 0) {
            return None;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_strictness() {
        assert_eq!(encode(b""), "");
        assert_eq!(encode(b"f"), "Zg==");
        assert_eq!(encode(b"fo"), "Zm8=");
        assert_eq!(encode(b"foobar"), "Zm9vYmFy");
        for n in 0..40u8 {
            let v: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(decode(&encode(&v), true).as_deref(), Some(&v[..]));
            assert_eq!(
                decode(encode(&v).trim_end_matches('='), false).as_deref(),
                Some(&v[..])
            );
        }
        assert_eq!(decode("Zg=", true), None);
        assert_eq!(decode("Zh==", true), None); // non-zero trailing bits
        assert_eq!(decode("Z$==", true), None);
        assert_eq!(decode("Zg==", false), None);
    }
}
