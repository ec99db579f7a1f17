//! ensureadmin: end to end with the user present and absent, against django-kubernetes'
//! `manage.py ensureadmin`, the PBKDF2 hashing (1,000,000 iterations) inside the component
//! beside Django's in-process `make_password`, and ensureadmin's PBKDF2 loop against the
//! `pbkdf2` crate, all in wasm in one run.

use crate::stats::{measure, ms, print_table, Samples};
use crate::Bench;
use djinit_tests::{djinit, python, run as run_cmd, target_dir, workspace_root, DjangoProject};
use std::cell::Cell;
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);
/// Distinctive, valid under Django's default validators.
const ADMIN_PW: &str = "Bench#Quartz-Velvet/Tundra!41";
const DB: &str = "ensureadmin_bench";

fn has_django_kubernetes() -> bool {
    workspace_root().join(".venv/bin/python").exists()
        && run_cmd(
            {
                let mut c = Command::new(python());
                c.args(["-c", "import djk8s, django"]);
                c
            },
            LIMIT,
        )
        .code
            == Some(0)
}

fn median_of(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

pub fn run(b: &mut Bench) -> Result<(), String> {
    println!(
        "== ensureadmin: user present / absent end to end (scram-sha-256), {} runs each",
        b.runs
    );
    b.pg.create_database(DB);
    let url = b.pg.url_for("postgres", djinit_tests::PASSWORD, DB);
    let python_ok = has_django_kubernetes();
    let proj = python_ok.then(|| DjangoProject::create(&["djk8s"]));
    match &proj {
        Some(p) => {
            let mut c = p.manage(&["migrate", "-v", "0"]);
            c.env("DATABASE_URL", &url);
            let out = run_cmd(c, LIMIT);
            if out.code != Some(0) {
                return Err(format!("manage.py migrate failed\n{}", out.report()));
            }
        }
        None => {
            let ddl = std::fs::read_to_string(
                workspace_root().join("tests/fixtures/ensureadmin_auth_user.sql"),
            )
            .map_err(|e| format!("auth_user DDL: {e}"))?;
            b.pg.psql_in(DB, &ddl);
        }
    }
    let env = |c: &mut Command, user: &str| {
        c.env("DATABASE_URL", &url)
            .env("DJANGO_ADMIN_USERNAME", user)
            .env("DJANGO_ADMIN_PASSWORD", ADMIN_PW)
            .env("DJANGO_ADMIN_EMAIL", "bench@example.com");
    };
    let ensure = |user: &str| {
        let mut c = djinit();
        c.arg("ensureadmin");
        env(&mut c, user);
        c
    };

    // Present: "admin" exists after the first (warm-up) run.
    let present = measure("djinit ensureadmin (present)", 2, b.runs, LIMIT, || {
        ensure("admin")
    })?;
    // Absent: a new username every run (hashing included).
    let n = Cell::new(0u32);
    let fresh = |prefix: &str| {
        n.set(n.get() + 1);
        format!("{prefix}{}", n.get())
    };
    let absent = measure("djinit ensureadmin (absent)", 1, b.runs, LIMIT, || {
        ensure(&fresh("new"))
    })?;

    let mut py_rows: Vec<Samples> = Vec::new();
    if let Some(p) = &proj {
        let runs = b.runs.clamp(1, 10);
        py_rows.push(measure(
            "python manage.py ensureadmin (present)",
            1,
            runs,
            LIMIT,
            || {
                let mut c = p.manage(&["ensureadmin"]);
                env(&mut c, "admin");
                c
            },
        )?);
        py_rows.push(measure(
            "python manage.py ensureadmin (absent)",
            1,
            runs,
            LIMIT,
            || {
                let mut c = p.manage(&["ensureadmin"]);
                env(&mut c, &fresh("py"));
                c
            },
        )?);
    } else {
        println!("  (no django-kubernetes in the venv: run `just venv` for the Python baseline)");
    }
    println!("  present:");
    print_table(&present, &py_rows.iter().take(1).collect::<Vec<_>>());
    println!("  absent:");
    print_table(&absent, &py_rows.iter().skip(1).collect::<Vec<_>>());

    // PBKDF2 inside the component: its own -v 2 line "hashed the password (...) in X ms".
    let mut wasm_ms = Vec::new();
    for _ in 0..5 {
        let mut c = ensure(&fresh("hash"));
        c.args(["-v", "2"]);
        let out = run_cmd(c, LIMIT);
        let t = out
            .stderr
            .lines()
            .find_map(|l| l.split("iterations) in ").nth(1))
            .and_then(|r| r.trim_end_matches(" ms").parse::<f64>().ok())
            .ok_or_else(|| format!("no hashing time in the output\n{}", out.report()))?;
        wasm_ms.push(t);
    }
    let wasm = median_of(wasm_ms);
    let django_ms = if python_ok {
        let code = "import time, django; from django.conf import settings; settings.configure(); django.setup()\n\
                    from django.contrib.auth.hashers import make_password\n\
                    ts = []\n\
                    for _ in range(5):\n    t = time.perf_counter(); make_password('x' * 20); ts.append(time.perf_counter() - t)\n\
                    print(sorted(ts)[2] * 1000)";
        let mut c = Command::new(python());
        c.args(["-c", code]);
        let out = run_cmd(c, LIMIT);
        out.stdout.trim().parse::<f64>().ok()
    } else {
        None
    };
    match django_ms {
        Some(d) => println!(
            "  PBKDF2-SHA256, 1,000,000 iterations: component {wasm:.0} ms, Django in-process {d:.0} ms (component/Django {:.2})",
            wasm / d
        ),
        None => println!("  PBKDF2-SHA256, 1,000,000 iterations: component {wasm:.0} ms (no Django for comparison)"),
    }
    println!();

    compare_pbkdf2_implementations(b)?;

    b.report.target(
        "ensureadmin user present under 30 ms",
        present.median() < Duration::from_millis(30),
        ms(present.median()),
    );
    if let Some(py_absent) = py_rows.get(1) {
        b.report.target(
            "ensureadmin user absent faster than django-kubernetes",
            absent.median() < py_absent.median(),
            format!("{} vs {}", ms(absent.median()), ms(py_absent.median())),
        );
    }
    Ok(())
}

/// Builds `examples/pbkdf2` for wasm32-wasip2 (the component profile, so the same code as
/// ensureadmin.wasm) and runs it under the wasmtime CLI: ensureadmin's PBKDF2 (`hmac` for the
/// first block, a loop over `sha2::compress256` with a deadline), the `pbkdf2` crate, and the
/// crate's loop over `hmac`; interleaved, 1,000,000 iterations each. The target checks the
/// decision in `components/ensureadmin/src/hash/pbkdf2.rs`: keep the own loop only while it is
/// faster than the crate (issue 10 item 5).
fn compare_pbkdf2_implementations(b: &mut Bench) -> Result<(), String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .current_dir(workspace_root())
        .env("CARGO_TARGET_DIR", target_dir())
        .args([
            "build",
            "-q",
            "--profile",
            "component",
            "--target",
            "wasm32-wasip2",
            "-p",
            "ensureadmin",
            "--example",
            "pbkdf2",
        ]);
    let out = run_cmd(build, Duration::from_secs(600));
    if out.code != Some(0) {
        return Err(format!("building examples/pbkdf2 failed\n{}", out.report()));
    }
    let wasm = target_dir().join("wasm32-wasip2/component/examples/pbkdf2.wasm");
    let mut c = Command::new("wasmtime");
    c.arg("run").arg(&wasm).args(["1000000", "5"]);
    let out = run_cmd(c, LIMIT);
    if out.code != Some(0) {
        return Err(format!(
            "the PBKDF2 comparison needs the wasmtime CLI 48 (`.ci/setup` installs it)\n{}",
            out.report()
        ));
    }
    let median = |name: &str| -> Result<f64, String> {
        out.stdout
            .lines()
            .find_map(|l| {
                l.strip_prefix(name)?
                    .strip_prefix(": median ")?
                    .split(' ')
                    .next()
            })
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no median for {name:?}\n{}", out.report()))
    };
    let ours = median("ensureadmin")?;
    let krate = median("pbkdf2 crate")?;
    let hmac = median("hmac loop")?;
    println!("  PBKDF2-SHA256 in wasm, one run, interleaved (examples/pbkdf2, medians of 5):");
    for l in out.stdout.lines().skip(1) {
        println!("    {l}");
    }
    println!(
        "    pbkdf2 crate / ensureadmin {:.2}, hmac loop / ensureadmin {:.2}",
        krate / ours,
        hmac / ours
    );
    println!();
    b.report.target(
        "ensureadmin's PBKDF2 loop faster than the pbkdf2 crate (else use the crate)",
        ours <= krate,
        format!(
            "{ours:.0} ms vs {krate:.0} ms, crate/own {:.2}",
            krate / ours
        ),
    );
    Ok(())
}
