//! lockedmigrate and checkmigrations on the fixture project (24 migrations: contrib apps,
//! `library`, `shop`), beside django-kubernetes' `lockedmigrate` and django-k8s'
//! `checkmigrations` on the same project and cluster.
//!
//! Targets (issue 4): no-op run and check under 50 ms; 8 simultaneous runs on a fresh database
//! within 1.5x the time of one fresh run.

use crate::stats::{measure, ms, print_table, Samples};
use crate::Bench;
use djinit_tests::{djinit, python, run as run_cmd, workspace_root, Output, PASSWORD};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(120);

fn fixture() -> std::path::PathBuf {
    workspace_root().join("tests/fixtures/django_project")
}

fn manage(b: &Bench, db: &str, extra_apps: &str, args: &[&str]) -> Command {
    let mut c = Command::new(python());
    c.current_dir(fixture())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("DJINIT_FIXTURE_EXTRA_APPS", extra_apps)
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", b.pg.port().to_string())
        .env("PGUSER", "postgres")
        .env("PGPASSWORD", PASSWORD)
        .env("PGDATABASE", db)
        .arg("manage.py")
        .args(args);
    c
}

fn djinit_on(b: &Bench, cmd: &str, db: &str, bundle: &Path, args: &[&str]) -> Command {
    let mut c = djinit();
    c.arg(cmd)
        .arg("--bundle")
        .arg(bundle)
        .args(args)
        .env("DATABASE_URL", b.pg.url_for("postgres", PASSWORD, db));
    c
}

fn ok(out: Output, what: &str) -> Result<Output, String> {
    if out.code == Some(0) {
        Ok(out)
    } else {
        Err(format!("{what} failed\n{}", out.report()))
    }
}

/// `runs` times: a new database, then `make(db)` timed.
fn fresh(
    b: &mut Bench,
    label: &str,
    runs: usize,
    tag: &str,
    make: impl Fn(&Bench, &str) -> Command,
) -> Result<Samples, String> {
    let mut s = Samples {
        label: label.into(),
        times: vec![],
        max_rss_kib: 0,
    };
    for i in 0..runs {
        let db = format!("bench_{tag}_{i}");
        b.pg.create_database(&db);
        let out = ok(run_cmd(make(b, &db), LIMIT), label)?;
        s.times.push(out.elapsed);
        s.max_rss_kib = s.max_rss_kib.max(out.max_rss_kib);
    }
    Ok(s)
}

/// `runs` times: a new database, then 8 copies of `make(db)` at once; the wall time of all 8.
/// `strict`: every copy must exit 0; otherwise failures are counted and printed (django-kubernetes'
/// lockedmigrate deadlocks (40P01) when a waiter blocks the holder's CREATE INDEX CONCURRENTLY).
pub(crate) fn eight(
    b: &mut Bench,
    label: &str,
    runs: usize,
    tag: &str,
    strict: bool,
    make: impl Fn(&Bench, &str) -> Command + Sync,
) -> Result<Samples, String> {
    let mut failed = 0;
    let mut s = Samples {
        label: label.into(),
        times: vec![],
        max_rss_kib: 0,
    };
    for i in 0..runs {
        let db = format!("bench_{tag}_{i}");
        b.pg.create_database(&db);
        let start = Instant::now();
        let bref: &Bench = b;
        let outs: Vec<Output> = std::thread::scope(|sc| {
            let hs: Vec<_> = (0..8)
                .map(|_| sc.spawn(|| run_cmd(make(bref, &db), LIMIT)))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        s.times.push(start.elapsed());
        for o in outs {
            if strict {
                ok(o, label)?;
            } else if o.code != Some(0) {
                failed += 1;
            }
        }
    }
    if failed > 0 {
        println!("  {label}: {failed} of {} runs failed", 8 * runs);
        s.label = format!("{label} [{failed}/{} failed]", 8 * runs);
    }
    Ok(s)
}

pub fn run(b: &mut Bench) -> Result<(), String> {
    println!("== lockedmigrate / checkmigrations: fixture project, 24 migrations");
    let bundle = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = bundle.path().to_str().unwrap().to_string();
    let mut export = manage(b, "postgres", "", &["djinit_export", &dir]);
    export.env("PGPORT", "1"); // the exporter needs no database
    ok(run_cmd(export, LIMIT), "djinit_export")?;
    let bp = bundle.path().to_path_buf();
    let runs = b.runs.clamp(1, 10);

    let one = fresh(
        b,
        "djinit lockedmigrate (fresh DB)",
        runs,
        "fresh",
        |b, db| djinit_on(b, "lockedmigrate", db, &bp, &["-v", "0"]),
    )?;
    let many = eight(
        b,
        "8 x djinit lockedmigrate at once (fresh DB)",
        runs.min(5),
        "eight",
        true,
        |b, db| djinit_on(b, "lockedmigrate", db, &bp, &["-v", "0"]),
    )?;
    let url_db = "bench_fresh_0";
    let noop = measure("djinit lockedmigrate (no-op)", 2, b.runs, LIMIT, || {
        djinit_on(b, "lockedmigrate", url_db, &bp, &["-v", "0"])
    })?;
    let check = measure("djinit checkmigrations", 2, b.runs, LIMIT, || {
        djinit_on(b, "checkmigrations", url_db, &bp, &["-v", "0"])
    })?;

    let has = |module: &str| {
        run_cmd(
            {
                let mut c = Command::new(python());
                c.args(["-c", &format!("import {module}")]);
                c
            },
            LIMIT,
        )
        .code
            == Some(0)
    };
    let mut rows: Vec<Samples> = vec![];
    let py_runs = runs.min(5);
    if has("djk8s") {
        rows.push(fresh(
            b,
            "python manage.py lockedmigrate (fresh DB)",
            py_runs,
            "pyfresh",
            |b, db| manage(b, db, "djk8s", &["lockedmigrate", "--noinput", "-v", "0"]),
        )?);
        rows.push(measure(
            "python manage.py lockedmigrate (no-op)",
            1,
            py_runs,
            LIMIT,
            || {
                manage(
                    b,
                    url_db,
                    "djk8s",
                    &["lockedmigrate", "--noinput", "-v", "0"],
                )
            },
        )?);
        rows.push(eight(
            b,
            "8 x python manage.py lockedmigrate at once",
            py_runs.min(3),
            "pyeight",
            false,
            |b, db| manage(b, db, "djk8s", &["lockedmigrate", "--noinput", "-v", "0"]),
        )?);
    } else {
        println!("  (no django-kubernetes in the venv: run `just venv` for the Python baseline)");
    }
    if has("django_k8s") {
        rows.push(measure(
            "python manage.py checkmigrations (django-k8s)",
            1,
            py_runs,
            LIMIT,
            || manage(b, url_db, "django_k8s", &["checkmigrations"]),
        )?);
    }
    let refs: Vec<&Samples> = [&many, &noop, &check]
        .into_iter()
        .chain(rows.iter())
        .collect();
    print_table(&one, &refs);
    println!();

    b.report.target(
        "lockedmigrate no-op < 50 ms",
        noop.median() < Duration::from_millis(50),
        ms(noop.median()),
    );
    b.report.target(
        "checkmigrations < 50 ms",
        check.median() < Duration::from_millis(50),
        ms(check.median()),
    );
    b.report.target(
        "8 simultaneous lockedmigrate within 1.5x of one",
        many.median().as_secs_f64() <= 1.5 * one.median().as_secs_f64(),
        format!("{} vs {}", ms(many.median()), ms(one.median())),
    );
    Ok(())
}
