//! `just bench`: djinit against baselines on one throwaway cluster, printed as medians, p90s and
//! ratios, then the targets as PASS/MISS. A MISS is reported, not fatal; a section that cannot
//! run makes the process exit 1.
//!
//! Runs per command: `--runs N` or `BENCH_RUNS` (default 30). Naming sections runs only those
//! (`just bench ship`).
//!
//! Adding a section: write `src/bin/bench/<name>.rs` with `pub fn run(b: &mut Bench) ->
//! Result<(), String>` (see `wait4db.rs`; `stats::measure` times a command, `b.report.target`
//! records a PASS/MISS), add `mod <name>;` and one entry to `SECTIONS`.

mod dns_discover;
mod ensureadmin;
mod lockedmigrate;
mod pgbouncer;
mod real_apps;
mod report;
mod ship;
mod sizes;
mod stats;
mod tls;
mod wait4db;

use djinit_tests::{Auth, Cluster};
use report::Report;

/// What every section gets.
pub struct Bench {
    /// scram-sha-256 on 127.0.0.1, superuser `postgres` / `djinit_tests::PASSWORD`.
    pub pg: Cluster,
    pub runs: usize,
    pub report: Report,
}

type Section = (&'static str, fn(&mut Bench) -> Result<(), String>);

/// The sections, in order. Extension points for the other commands are marked.
const SECTIONS: &[Section] = &[
    ("wait4db", wait4db::run),
    ("ensureadmin", ensureadmin::run),
    ("lockedmigrate", lockedmigrate::run),
    ("pgbouncer", pgbouncer::run),
    ("real-apps", real_apps::run),
    ("dns-discover", dns_discover::run),
    ("tls", tls::run),
    ("sizes", sizes::run),
    ("ship", ship::run),
];

/// `--runs N` (or `BENCH_RUNS`, default 30) and the sections to run (all when none is named).
fn args() -> (usize, Vec<String>) {
    let mut args = std::env::args().skip(1);
    let mut runs = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok());
    let mut only = Vec::new();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()),
            "--only" => only.extend(args.next()),
            name if SECTIONS.iter().any(|(n, _)| *n == name) => only.push(name.to_string()),
            other => {
                let names: Vec<&str> = SECTIONS.iter().map(|(n, _)| *n).collect();
                eprintln!(
                    "bench: unknown argument {other:?} (usage: bench [--runs N] [SECTION...]; sections: {})",
                    names.join(" ")
                );
                std::process::exit(64);
            }
        }
    }
    (runs.unwrap_or(30).max(1), only)
}

fn main() {
    let (runs, only) = args();
    let pg = Cluster::start(Auth::Scram);
    println!(
        "djinit bench: {runs} runs per command, one throwaway cluster (PostgreSQL, scram-sha-256, {}:{})\n",
        pg.host(),
        pg.port()
    );
    let mut b = Bench {
        pg,
        runs,
        report: Report::default(),
    };
    for (name, section) in SECTIONS {
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        // A panicking section (e.g. a missing binary) is a section that could not run.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| section(&mut b)))
            .unwrap_or_else(|p| {
                Err(p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "panicked".into()))
            });
        if let Err(why) = result {
            println!("  ({name} could not run)\n");
            b.report.failures.push((name.to_string(), why));
        }
    }
    b.report.print();
    if !b.report.failures.is_empty() {
        std::process::exit(1);
    }
}
