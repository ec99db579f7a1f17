//! Turns Django's `common-passwords.txt.gz` (committed unchanged in `data/`) into a compact
//! front-coded table embedded in the component (see `src/validate/common.rs` for the format).

use std::io::Read;
use std::path::PathBuf;

/// Words per block; each block starts with a full word, so lookups binary-search block heads.
const BLOCK: usize = 16;

fn main() {
    let src = "data/common-passwords.txt.gz";
    println!("cargo:rerun-if-changed={src}");
    let gz = std::fs::read(src).expect("read common-passwords.txt.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .expect("gunzip common-passwords.txt.gz");
    // Django: `{x.strip() for x in f}`; compared with `password.lower().strip()`.
    let mut words: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .collect();
    words.sort_unstable();
    words.dedup();

    // Layout: [u32 LE block count][u32 LE offset of each block][blocks]
    // block: head word + 0x00, then per word: shared-prefix length byte, suffix bytes, 0x00.
    let mut offsets = Vec::new();
    let mut blocks = Vec::new();
    for chunk in words.chunks(BLOCK) {
        offsets.push(blocks.len() as u32);
        let mut prev: &[u8] = b"";
        for (i, w) in chunk.iter().enumerate() {
            let w = w.as_bytes();
            assert!(!w.contains(&0), "NUL in a common password");
            if i == 0 {
                blocks.extend_from_slice(w);
            } else {
                let shared = prev
                    .iter()
                    .zip(w)
                    .take_while(|(a, b)| a == b)
                    .count()
                    .min(255);
                blocks.push(shared as u8);
                blocks.extend_from_slice(&w[shared..]);
            }
            blocks.push(0);
            prev = w;
        }
    }
    let mut out = Vec::new();
    out.extend_from_slice(&(offsets.len() as u32).to_le_bytes());
    for o in &offsets {
        out.extend_from_slice(&o.to_le_bytes());
    }
    out.extend_from_slice(&blocks);
    let dest = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("common-passwords.fc");
    std::fs::write(dest, out).expect("write table");
    println!("cargo:rustc-env=DJINIT_COMMON_PASSWORDS={}", words.len());
}
