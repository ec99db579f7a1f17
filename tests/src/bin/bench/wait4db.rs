//! wait4db: time to "database ready" (connect + authenticate + SELECT 1) against baselines, and
//! the runner's peak RSS while doing it.

use crate::stats::{measure, mib, ms, print_table};
use crate::Bench;
use djinit_tests::{djinit, python, workspace_root, DjangoProject, PASSWORD};
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

pub fn run(b: &mut Bench) -> Result<(), String> {
    println!(
        "== wait4db: connect + authenticate (scram-sha-256) + SELECT 1, {} runs each",
        b.runs
    );
    let url = b.pg.url();
    let port = b.pg.port().to_string();

    let djinit_s = measure("djinit wait4db -s 0", 2, b.runs, LIMIT, || {
        let mut c = djinit();
        c.args(["wait4db", "-s", "0"]).env("DATABASE_URL", &url);
        c
    })?;
    let isready = measure("pg_isready -h 127.0.0.1 -p PORT", 2, b.runs, LIMIT, || {
        let mut c = Command::new("pg_isready");
        c.args(["-q", "-h", "127.0.0.1", "-p", &port]);
        c
    })?;
    let psql = measure("psql -c 'select 1'", 2, b.runs, LIMIT, || {
        let mut c = Command::new("psql");
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("PGPASSWORD", PASSWORD)
            .args(["-X", "-q", "-h", "127.0.0.1", "-p", &port, "-U", "postgres"])
            .args(["-d", "postgres", "-c", "select 1"]);
        c
    })?;
    let psql_median = psql.median();
    let mut rows = vec![isready, psql];

    // django-kubernetes' wait4db, when the venv has it. Its CLI refuses `-s 0` (stable must be
    // > 0, whole seconds, so the CLI always sleeps >= 1 s): time its wait_for_database(stable=0)
    // through `manage.py shell -c` for a like-for-like number, and the CLI at `-s 1` for the record.
    let venv_has_djk8s = workspace_root().join(".venv/bin/python").exists()
        && djinit_tests::run(
            {
                let mut c = Command::new(python());
                c.args(["-c", "import djk8s, django"]);
                c
            },
            LIMIT,
        )
        .code
            == Some(0);
    if venv_has_djk8s {
        let proj = DjangoProject::create(&["djk8s"]);
        let python_runs = b.runs.clamp(1, 10);
        let call = "from djk8s.management.commands.wait4db import wait_for_database; \
                    wait_for_database(stable=0)";
        rows.push(measure(
            "python manage.py shell (djk8s stable=0)",
            1,
            python_runs,
            LIMIT,
            || {
                let mut c = proj.manage(&["shell", "--no-imports", "-c", call]);
                c.env("DATABASE_URL", &url);
                c
            },
        )?);
        rows.push(measure(
            "python manage.py wait4db -s 1 (CLI minimum)",
            1,
            python_runs.min(5),
            LIMIT,
            || {
                let mut c = proj.manage(&["wait4db", "-s", "1", "-i", "1"]);
                c.env("DATABASE_URL", &url);
                c
            },
        )?);
    } else {
        println!("  (no django-kubernetes in the venv: run `just venv` for the Python baseline)");
    }

    let refs: Vec<_> = rows.iter().collect();
    print_table(&djinit_s, &refs);
    println!(
        "  peak RSS of djinit wait4db: {}",
        mib(djinit_s.max_rss_kib)
    );
    println!();

    b.report.target(
        "wait4db faster than psql -c 'select 1'",
        djinit_s.median() < psql_median,
        format!("{} vs {}", ms(djinit_s.median()), ms(psql_median)),
    );
    b.report.target(
        "runner peak RSS < 30 MiB",
        djinit_s.max_rss_kib < 30 * 1024,
        format!("{} running wait4db", mib(djinit_s.max_rss_kib)),
    );
    Ok(())
}
