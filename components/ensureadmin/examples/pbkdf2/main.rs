//! Times PBKDF2-SHA256 (Django's 1,000,000 iterations by default) in the component, three ways in
//! one run, interleaved so drift affects all alike:
//! - `ensureadmin`: what ensureadmin uses (`ensureadmin::hash::pbkdf2`: `hmac` for the first
//!   block, then two `sha2` compressions per iteration over pre-padded blocks, with a deadline);
//! - `pbkdf2 crate`: RustCrypto's `pbkdf2_hmac::<Sha256>` (one call, cannot be stopped);
//! - `hmac loop`: the crate's loop written over `hmac` so a deadline could stop it (what
//!   ensureadmin would use if the crates were as fast).
//!
//! `just bench` builds and runs it: `cargo build --profile component --target wasm32-wasip2
//! -p ensureadmin --example pbkdf2`, then `wasmtime run
//! target/wasm32-wasip2/component/examples/pbkdf2.wasm [ITERATIONS] [RUNS] [ONLY]`. Prints one
//! line per implementation: `<name>: median <ms> ms (min <ms>, max <ms>)`. `ONLY` (a name's first
//! word: `ensureadmin`, `pbkdf2`, `hmac`) runs just that one, e.g. under
//! `valgrind --tool=callgrind` to count its instructions on a busy machine.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::time::Instant;

const PASSWORD: &[u8] = b"correct horse battery";
const SALT: &[u8] = b"abcdefghijklmnopqrstuv";

fn ensureadmin(iterations: u32) -> [u8; 32] {
    ensureadmin::hash::pbkdf2::pbkdf2_sha256(PASSWORD, SALT, iterations, None).expect("no deadline")
}

fn pbkdf2_crate(iterations: u32) -> [u8; 32] {
    pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(PASSWORD, SALT, iterations)
}

/// `pbkdf2_body` of the `pbkdf2` crate over `hmac`, where a deadline check would go.
fn hmac_loop(iterations: u32) -> [u8; 32] {
    let key = Hmac::<Sha256>::new_from_slice(PASSWORD).expect("any key length");
    let mut mac = key.clone();
    mac.update(SALT);
    mac.update(&1u32.to_be_bytes());
    let mut u: [u8; 32] = mac.finalize().into_bytes().into();
    let mut acc = u;
    for _ in 1..iterations {
        let mut mac = key.clone();
        mac.update(&u);
        u = mac.finalize().into_bytes().into();
        for (a, x) in acc.iter_mut().zip(&u) {
            *a ^= x;
        }
    }
    acc
}

type Impl = (&'static str, fn(u32) -> [u8; 32]);

const IMPLS: [Impl; 3] = [
    ("ensureadmin", ensureadmin),
    ("pbkdf2 crate", pbkdf2_crate),
    ("hmac loop", hmac_loop),
];

fn main() {
    let mut args = std::env::args().skip(1);
    let iterations: u32 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5).max(1);
    let only = args.next();
    let impls: Vec<Impl> = IMPLS
        .into_iter()
        .filter(|(name, _)| {
            only.as_deref()
                .is_none_or(|o| name.split(' ').next() == Some(o))
        })
        .collect();
    assert!(
        !impls.is_empty(),
        "ONLY is one of ensureadmin, pbkdf2, hmac"
    );
    // All must agree, or the timing compares different work.
    let want = ensureadmin(iterations.min(1000));
    for (name, f) in IMPLS {
        assert_eq!(f(iterations.min(1000)), want, "{name} disagrees");
    }
    let mut ms = vec![Vec::new(); impls.len()];
    for _ in 0..runs {
        for (i, (_, f)) in impls.iter().enumerate() {
            let t = Instant::now();
            std::hint::black_box(f(std::hint::black_box(iterations)));
            ms[i].push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    println!("pbkdf2_sha256, {iterations} iterations, {runs} runs each:");
    for ((name, _), mut v) in impls.iter().zip(ms) {
        v.sort_by(|a, b| a.total_cmp(b));
        println!(
            "{name}: median {:.1} ms (min {:.1}, max {:.1})",
            v[runs / 2],
            v[0],
            v[runs - 1]
        );
    }
}
