//! Timing a command N times and summarising it (median, p90).

use djinit_tests::{run, Output};
use std::process::Command;
use std::time::Duration;

/// Samples of one command.
pub struct Samples {
    pub label: String,
    pub times: Vec<Duration>,
    /// Highest peak RSS over all runs, KiB.
    pub max_rss_kib: u64,
}

impl Samples {
    /// Nearest-rank percentile, `p` in (0, 1].
    pub fn percentile(&self, p: f64) -> Duration {
        let mut t = self.times.clone();
        t.sort();
        let rank = ((p * t.len() as f64).ceil() as usize).clamp(1, t.len());
        t[rank - 1]
    }

    pub fn median(&self) -> Duration {
        self.percentile(0.5)
    }

    pub fn p90(&self) -> Duration {
        self.percentile(0.9)
    }
}

/// Runs `make()` `warmup + runs` times (each killed after `limit`); every run must exit 0, else
/// the benchmark cannot run and this says why (with the failing run's output).
pub fn measure(
    label: &str,
    warmup: usize,
    runs: usize,
    limit: Duration,
    make: impl Fn() -> Command,
) -> Result<Samples, String> {
    let mut one = measure_interleaved(&[(label, &make)], warmup, runs, limit)?;
    Ok(one.remove(0))
}

/// A command to time: its label, and how to make it.
pub type Contender<'a> = (&'a str, &'a dyn Fn() -> Command);

/// As [`measure`], for several commands taking turns run by run, so that drift in the machine's
/// load falls on all of them alike: where the figure compared is a millisecond of start-up, one
/// command measured after another picked up more drift than that.
pub fn measure_interleaved(
    contenders: &[Contender<'_>],
    warmup: usize,
    runs: usize,
    limit: Duration,
) -> Result<Vec<Samples>, String> {
    let mut all: Vec<Samples> = contenders
        .iter()
        .map(|(label, _)| Samples {
            label: label.to_string(),
            times: Vec::with_capacity(runs),
            max_rss_kib: 0,
        })
        .collect();
    for i in 0..warmup + runs {
        for ((label, make), s) in contenders.iter().zip(all.iter_mut()) {
            let out: Output = run(make(), limit);
            if out.code != Some(0) {
                return Err(format!("{label}: run {} failed\n{}", i + 1, out.report()));
            }
            if i >= warmup {
                s.times.push(out.elapsed);
                s.max_rss_kib = s.max_rss_kib.max(out.max_rss_kib);
            }
        }
    }
    Ok(all)
}

pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

pub fn size(bytes: u64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{:.0} KiB", bytes as f64 / 1024.0)
    }
}

/// Prints a table: label, median, p90, and djinit's median as a fraction of each row's.
pub fn print_table(djinit: &Samples, rows: &[&Samples]) {
    println!(
        "  {:<48} {:>10} {:>10} {:>14}",
        "command", "median", "p90", "djinit/this"
    );
    for r in std::iter::once(djinit).chain(rows.iter().copied()) {
        let ratio = if std::ptr::eq(r, djinit) {
            String::new()
        } else {
            format!(
                "{:.2}",
                djinit.median().as_secs_f64() / r.median().as_secs_f64()
            )
        };
        println!(
            "  {:<48} {:>10} {:>10} {:>14}",
            r.label,
            ms(r.median()),
            ms(r.p90()),
            ratio
        );
    }
}
