//! Django's common-passwords list (20,000 entries from Royce Williams' list, lower-cased and
//! deduplicated; Django 5.2's `common-passwords.txt.gz`, BSD-3-Clause, see
//! `data/LICENSE.django`), embedded front-coded by `build.rs` (~93 KB instead of ~160 KB plain,
//! and no decompressor in the component).
//!
//! Layout: `u32` block count, one `u32` offset per block, then blocks of 16 sorted words; a
//! block's first word is stored whole, each following word as (shared-prefix length byte,
//! remaining bytes); every word ends with a NUL byte.

static TABLE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/common-passwords.fc"));

/// How many words the list holds.
pub const COUNT: &str = env!("DJINIT_COMMON_PASSWORDS");

fn u32_at(i: usize) -> usize {
    u32::from_le_bytes(TABLE[i..i + 4].try_into().expect("4 bytes")) as usize
}

fn blocks() -> usize {
    u32_at(0)
}

fn block_start(b: usize) -> usize {
    4 + 4 * blocks() + u32_at(4 + 4 * b)
}

fn head(b: usize) -> &'static [u8] {
    let s = &TABLE[block_start(b)..];
    &s[..s.iter().position(|&c| c == 0).expect("NUL-terminated")]
}

/// Whether `word` (already lower-cased and stripped, as Django compares) is on the list.
pub fn contains(word: &str) -> bool {
    let w = word.as_bytes();
    // The last block whose head is <= word.
    let (mut lo, mut hi) = (0, blocks());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if head(mid) <= w {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if lo == 0 {
        return false;
    }
    let b = lo - 1;
    let end = if b + 1 < blocks() {
        block_start(b + 1)
    } else {
        TABLE.len()
    };
    let mut pos = block_start(b);
    let mut cur: Vec<u8> = Vec::with_capacity(40);
    let mut first = true;
    while pos < end {
        if first {
            first = false;
        } else {
            let shared = TABLE[pos] as usize;
            cur.truncate(shared);
            pos += 1;
        }
        let len = TABLE[pos..]
            .iter()
            .position(|&c| c == 0)
            .expect("NUL-terminated");
        cur.extend_from_slice(&TABLE[pos..pos + len]);
        pos += len + 1;
        if cur.as_slice() == w {
            return true;
        }
        if cur.as_slice() > w {
            return false;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        assert_eq!(COUNT, "19640");
        for w in [
            "123456", "password", "qwerty", "111111", "zxcvbnm", "iloveyou", "000000",
        ] {
            assert!(contains(w), "{w}");
        }
        for w in [
            "",
            "correct-horse-battery-staple",
            "tr0ub4dor&3-ünï",
            "zzzzzzzzzzzzzzzzzzz",
            "\u{1}",
        ] {
            assert!(!contains(w), "{w}");
        }
    }

    #[test]
    fn every_block_head_and_tail_is_found() {
        // Walk the whole table: every stored word must be found by lookup.
        let mut n = 0;
        for b in 0..blocks() {
            let end = if b + 1 < blocks() {
                block_start(b + 1)
            } else {
                TABLE.len()
            };
            let mut pos = block_start(b);
            let mut cur = Vec::new();
            let mut first = true;
            while pos < end {
                if !first {
                    cur.truncate(TABLE[pos] as usize);
                    pos += 1;
                }
                first = false;
                let len = TABLE[pos..].iter().position(|&c| c == 0).unwrap();
                cur.extend_from_slice(&TABLE[pos..pos + len]);
                pos += len + 1;
                assert!(contains(std::str::from_utf8(&cur).unwrap()));
                n += 1;
            }
        }
        assert_eq!(n.to_string(), COUNT);
    }
}
