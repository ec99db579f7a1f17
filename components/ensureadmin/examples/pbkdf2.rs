//! Times the component's PBKDF2-SHA256 (Django's 1,000,000 iterations by default):
//! `cargo build --profile component --target wasm32-wasip2 -p ensureadmin --example pbkdf2`
//! then `wasmtime run target/wasm32-wasip2/component/examples/pbkdf2.wasm [ITERATIONS] [RUNS]`.

use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let iterations: u32 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let mut ms = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let h = ensureadmin::hash::make(
            "correct horse battery",
            "abcdefghijklmnopqrstuv",
            iterations,
        );
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(h);
    }
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "pbkdf2_sha256 {iterations} iterations: median {:.1} ms (min {:.1}, max {:.1})",
        ms[runs / 2],
        ms[0],
        ms[runs - 1]
    );
}
