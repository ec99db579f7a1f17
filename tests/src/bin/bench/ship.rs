//! What ships: sizes of the static djinit, the image and the wheel, and what start-up costs —
//! the embedded (LZ4-compressed) component against the same `.cwasm` loaded raw from a file by
//! the same binary, the older glibc build when one is around, and the image under `podman run`
//! against the binary directly.

use crate::stats::{measure, measure_interleaved, print_table, size, Contender};
use crate::Bench;
use djinit_tests::paths::{djinit_path, precompiled};
use djinit_tests::{djinit, run as run_process, ship, target_dir};
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);
const MIB: u64 = 1024 * 1024;

fn file_size(path: &std::path::Path) -> Result<u64, String> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| format!("{}: {e}", path.display()))
}

pub fn run(b: &mut Bench) -> Result<(), String> {
    println!("== what ships: sizes");
    let runner = djinit_path();
    let static_len = file_size(&runner)?;
    let ldd = run_process(
        {
            let mut c = Command::new("ldd");
            c.arg(&runner);
            c
        },
        LIMIT,
    );
    // A static PIE (what the dist build is: no interpreter, no shared libraries, but randomised
    // placement) is "statically linked" to ldd; a non-PIE static binary "not a dynamic executable".
    let said = format!("{}{}", ldd.stdout, ldd.stderr);
    let linkage = if said.contains("not a dynamic executable") {
        "not a dynamic executable"
    } else if said.contains("statically linked") {
        "statically linked (static PIE)"
    } else {
        "DYNAMIC"
    };
    println!(
        "  {:<48} {:>10}   (ldd: {linkage})",
        "static djinit (musl, dist, 5 commands embedded)",
        size(static_len),
    );
    let mut raw = 0;
    for name in [
        "checkmigrations",
        "dns-discover",
        "ensureadmin",
        "lockedmigrate",
        "wait4db",
    ] {
        raw += file_size(&precompiled(name))?;
    }
    println!(
        "  {:<48} {:>10}",
        "the five .cwasm uncompressed (sum)",
        size(raw)
    );
    let glibc = target_dir().join("release/djinit");
    if let Ok(len) = file_size(&glibc) {
        println!(
            "  {:<48} {:>10}   (when last built: cargo test builds it)",
            "glibc release djinit (no LTO), for comparison",
            size(len)
        );
    }
    b.report.target(
        "static djinit <= 10 MiB (at most 14 MiB)",
        static_len <= 10 * MIB,
        size(static_len),
    );
    b.report.target(
        "static djinit has no dynamic dependencies",
        linkage != "DYNAMIC",
        format!("ldd: {linkage}"),
    );

    let image = ship::image();
    let mut inspect = ship::podman();
    inspect.args(["image", "inspect", "--format", "{{.Size}}", image]);
    let out = run_process(inspect, LIMIT);
    if out.code != Some(0) {
        return Err(format!("podman image inspect failed\n{}", out.report()));
    }
    let image_len: u64 = out
        .stdout
        .trim()
        .parse()
        .map_err(|e| format!("image size: {e}"))?;
    println!("  {:<48} {:>10}", format!("image {image}"), size(image_len));
    let wheel = ship::wheel();
    let wheel_len = file_size(wheel)?;
    println!(
        "  {:<48} {:>10}",
        format!("wheel {}", wheel.file_name().unwrap().to_string_lossy()),
        size(wheel_len)
    );
    b.report.target(
        "image no bigger than the binary + 1 MiB (FROM scratch)",
        image_len <= static_len + MIB,
        size(image_len),
    );
    println!();

    println!("== start-up: embedded (LZ4) vs raw .cwasm, static vs glibc, podman vs direct");
    // `wait4db --help`: load + instantiate + run the component, no network: pure start-up.
    let cwasm = precompiled("wait4db");
    let embedded_cmd = || {
        let mut c = djinit();
        c.args(["wait4db", "--help"]);
        c
    };
    let raw_cmd = || {
        let mut c = djinit();
        c.arg("run").arg(&cwasm).arg("--help");
        c
    };
    let glibc_cmd = || {
        let mut c = Command::new(&glibc);
        c.env_clear().args(["wait4db", "--help"]);
        c
    };
    let mut contenders: Vec<Contender> = vec![
        ("djinit wait4db --help (embedded, LZ4)", &embedded_cmd),
        ("djinit run wait4db.cwasm --help (raw file)", &raw_cmd),
    ];
    if glibc.is_file() {
        contenders.push(("glibc djinit wait4db --help (release, no LTO)", &glibc_cmd));
    }
    let mut rows = measure_interleaved(&contenders, 3, b.runs, LIMIT)?;
    let embedded = rows.remove(0);
    let raw_median = rows[0].median();
    let glibc_median = rows.get(1).map(|s| s.median());
    let refs: Vec<&_> = rows.iter().collect();
    print_table(&embedded, &refs);
    let ms1 = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1e3);
    b.report.target(
        "embedded LZ4 start-up not slower than the raw .cwasm (+1 ms)",
        embedded.median() <= raw_median + Duration::from_millis(1),
        format!("{} vs {}", ms1(embedded.median()), ms1(raw_median)),
    );
    if let Some(before) = glibc_median {
        b.report.target(
            "static start-up not slower than the glibc build",
            embedded.median() <= before,
            format!("{} vs {}", ms1(embedded.median()), ms1(before)),
        );
    }

    let url = b.pg.url();
    let direct = measure("djinit wait4db -s 0 (binary)", 2, b.runs, LIMIT, || {
        let mut c = djinit();
        c.args(["wait4db", "-s", "0"]).env("DATABASE_URL", &url);
        c
    })?;
    let container_runs = b.runs.clamp(1, 10);
    let podman = measure(
        "podman run --rm djinit wait4db -s 0 (cold container)",
        1,
        container_runs,
        LIMIT,
        || {
            let mut c = ship::podman_run(&[("DATABASE_URL", url.clone())]);
            c.args(["wait4db", "-s", "0"]);
            c
        },
    )?;
    print_table(&direct, &[&podman]);
    println!();
    Ok(())
}
