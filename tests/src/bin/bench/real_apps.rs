//! lockedmigrate on what users actually run: `tests/fixtures/real_app_project` (Django's contrib
//! apps, django-allauth, django-taggit, django-oauth-toolkit, django-celery-beat, django-guardian,
//! django-axes and an own app; 101 migrations, 8 with RunPython), each run on a fresh
//! database, beside Django's own `migrate` of the same project.
//!
//! - SQL only: up to just before the first Python data migration (`account 0005`), which plain
//!   lockedmigrate applies alone. Target (issue 11): at most 0.3x Django's time.
//! - Everything: the hybrid mode (`--python "PYTHON manage.py"`: djinit applies the SQL migrations
//!   and one Django process runs `migrate APP NAME` for each Python one, under the same lock) against the
//!   whole `migrate` under the lock (`--exec`), and Django alone. Target: hybrid faster than `--exec`.
//! - Nothing pending (the usual deploy): hybrid starts no Python, `--exec` starts Django every
//!   time. Target: hybrid at most 0.1x `--exec`.
//!
//! The commands take turns within each run, so load from elsewhere on the machine falls on all of
//! them alike. After every djinit run its `django_migrations` must hold no row twice and as many
//! rows as Django's run recorded: a wrong result is an error, not a slow run.

use crate::stats::{measure, ms, print_table, Samples};
use crate::Bench;
use djinit_tests::django::{export_fixture, fixture, fixture_manage};
use djinit_tests::{djinit, python, run as run_cmd, PASSWORD};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const PROJECT: &str = "real_app_project";

/// Per command: Django's whole `migrate` of this project takes seconds, not milliseconds.
const LIMIT: Duration = Duration::from_secs(300);

/// The last migration before the first Python data migration (`account.0006_emailaddress_lower`).
const SQL_ONLY: [&str; 2] = ["account", "0005"];

/// The libpq variables for database `db`: how the fixture's settings find the database.
fn pg_env(c: &mut Command, b: &Bench, db: &str) {
    for (k, v) in b.pg.pg_env() {
        c.env(k, if k == "PGDATABASE" { db } else { &v });
    }
}

/// `python manage.py migrate --noinput -v 0 <args>` on `db`.
fn django_migrate(b: &Bench, db: &str, args: &[&str]) -> Command {
    let mut all = vec!["migrate", "--noinput", "-v", "0"];
    all.extend_from_slice(args);
    let mut c = fixture_manage(PROJECT, &all);
    pg_env(&mut c, b, db);
    c
}

/// `djinit lockedmigrate -v 0 <args>` on `db`, in the project dir with Django's database
/// variables too (the Python it runs, hybrid or `--exec`, inherits them).
fn lockedmigrate(b: &Bench, db: &str, args: &[String]) -> Command {
    let mut c = djinit();
    c.current_dir(fixture(PROJECT))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("DATABASE_URL", b.pg.url_for("postgres", PASSWORD, db))
        .args(["lockedmigrate", "-v", "0"])
        .args(args);
    pg_env(&mut c, b, db);
    c
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// How a contender runs on a database.
type Make<'a> = Box<dyn Fn(&Bench, &str) -> Command + 'a>;

/// The number of `django_migrations` rows in `db`, after checking none is there twice.
fn recorded(b: &Bench, label: &str, db: &str) -> Result<usize, String> {
    let counts = b.pg.psql_in(
        db,
        "SELECT count(*), count(*) - count(DISTINCT (app, name)) FROM django_migrations",
    );
    let (rows, dup) = counts.split_once('|').unwrap_or((&counts, "?"));
    if dup != "0" {
        return Err(format!(
            "{label}: {dup} duplicate django_migrations rows in {db}"
        ));
    }
    rows.parse()
        .map_err(|_| format!("{label}: django_migrations in {db}: {counts:?}"))
}

/// `b.runs` (1 to 5) rounds; in each, every contender on a new database of its own
/// (`bench_<tag>_<k>_<i>`), timed. The first is Django's `migrate`: every other must record as
/// many migrations as it did in the same round.
fn rounds(b: &mut Bench, tag: &str, contenders: &[(&str, Make)]) -> Result<Vec<Samples>, String> {
    let mut samples: Vec<Samples> = contenders
        .iter()
        .map(|(label, _)| Samples {
            label: label.to_string(),
            times: vec![],
            max_rss_kib: 0,
        })
        .collect();
    for i in 0..b.runs.clamp(1, 5) {
        let mut django_rows = None;
        for (k, ((label, make), s)) in contenders.iter().zip(samples.iter_mut()).enumerate() {
            let db = format!("bench_{tag}_{k}_{i}");
            b.pg.create_database(&db);
            let out = run_cmd(make(b, &db), LIMIT);
            if out.code != Some(0) {
                return Err(format!("{label}: run {} failed\n{}", i + 1, out.report()));
            }
            s.times.push(out.elapsed);
            s.max_rss_kib = s.max_rss_kib.max(out.max_rss_kib);
            let rows = recorded(b, label, &db)?;
            let d = *django_rows.get_or_insert(rows);
            if rows != d {
                return Err(format!(
                    "{label}: {rows} django_migrations rows in {db}, Django's migrate recorded {d}"
                ));
            }
        }
    }
    Ok(samples)
}

fn ratio(a: &Samples, b: &Samples) -> f64 {
    a.median().as_secs_f64() / b.median().as_secs_f64()
}

fn sql_only(b: &mut Bench, bundle: &Path) -> Result<(), String> {
    let target = SQL_ONLY.join(" ");
    let args = strings(&["--bundle", &bundle.display().to_string()]);
    let args = [args, strings(&SQL_ONLY)].concat();
    let django_label = format!("python manage.py migrate {target}");
    let djinit_label = format!("djinit lockedmigrate {target} (SQL only)");
    let s = rounds(
        b,
        "ra_sql",
        &[
            (
                &django_label,
                Box::new(|b, db| django_migrate(b, db, &SQL_ONLY)),
            ),
            (&djinit_label, Box::new(|b, db| lockedmigrate(b, db, &args))),
        ],
    )?;
    let (django, ours) = (&s[0], &s[1]);
    println!("  up to {target} (before the first Python migration):");
    print_table(ours, &[django]);
    println!();
    let r = ratio(ours, django);
    b.report.target(
        format!("real apps, SQL only ({target}): lockedmigrate <= 0.3x Django's migrate"),
        r <= 0.3,
        format!("{} vs {} ({r:.2}x)", ms(ours.median()), ms(django.median())),
    );
    Ok(())
}

fn full(b: &mut Bench, bundle: &Path) -> Result<(), String> {
    let py = python().display().to_string();
    let bundle = bundle.display().to_string();
    let hybrid_args = strings(&["--bundle", &bundle, "--python", &format!("{py} manage.py")]);
    let exec_args = strings(&[
        "--exec",
        "--",
        &py,
        "manage.py",
        "migrate",
        "--noinput",
        "-v",
        "0",
    ]);
    let s = rounds(
        b,
        "ra_full",
        &[
            (
                "python manage.py migrate",
                Box::new(|b, db| django_migrate(b, db, &[])),
            ),
            (
                "djinit lockedmigrate --python (hybrid)",
                Box::new(|b, db| lockedmigrate(b, db, &hybrid_args)),
            ),
            (
                "djinit lockedmigrate --exec -- manage.py migrate",
                Box::new(|b, db| lockedmigrate(b, db, &exec_args)),
            ),
        ],
    )?;
    let (django, hybrid, exec) = (&s[0], &s[1], &s[2]);
    println!("  everything (SQL by djinit, what needs Python by Django):");
    print_table(hybrid, &[exec, django]);
    let (vs_exec, vs_django) = (ratio(hybrid, exec), ratio(hybrid, django));
    println!("  hybrid / --exec: {vs_exec:.2}x, hybrid / Django's migrate: {vs_django:.2}x\n");
    b.report.target(
        "real apps, everything: hybrid (--python) faster than --exec",
        vs_exec < 1.0,
        format!(
            "{} vs {} ({vs_exec:.2}x; Django's migrate {}, hybrid {vs_django:.2}x of it)",
            ms(hybrid.median()),
            ms(exec.median()),
            ms(django.median())
        ),
    );
    // The usual deploy: nothing pending (every replica, every restart). The databases the
    // rounds above migrated: hybrid starts no Python then, `--exec` always starts Django.
    let runs = b.runs.clamp(1, 10);
    let noop_hybrid = measure(
        "djinit lockedmigrate --python, nothing pending",
        1,
        runs,
        LIMIT,
        || lockedmigrate(b, "bench_ra_full_1_0", &hybrid_args),
    )?;
    let noop_exec = measure(
        "djinit lockedmigrate --exec, nothing pending",
        1,
        runs,
        LIMIT,
        || lockedmigrate(b, "bench_ra_full_2_0", &exec_args),
    )?;
    println!("  nothing pending (a deploy with no new migration):");
    print_table(&noop_hybrid, &[&noop_exec]);
    println!();
    let r = ratio(&noop_hybrid, &noop_exec);
    b.report.target(
        "real apps, nothing pending: hybrid (--python) <= 0.1x --exec (no Python started)",
        r <= 0.1,
        format!(
            "{} vs {} ({r:.2}x)",
            ms(noop_hybrid.median()),
            ms(noop_exec.median())
        ),
    );
    Ok(())
}

pub fn run(b: &mut Bench) -> Result<(), String> {
    println!(
        "== lockedmigrate on the real-app project (allauth, taggit, oauth2, celery-beat, ...)"
    );
    let bundle = export_fixture(PROJECT);
    sql_only(b, bundle.path())?;
    full(b, bundle.path())
}
