//! TLS: `wait4db -s 0` with `sslmode=verify-full` (handshake, certificate and host name checks,
//! SCRAM-SHA-256-PLUS) beside `psql "sslmode=verify-full ..." -c 'select 1'`, on a cluster with
//! `ssl = on` and a generated CA; and the component sizes with TLS inside.

use crate::stats::{measure, ms, size};
use crate::Bench;
use djinit_tests::tls::{Pki, ServerCert};
use djinit_tests::{djinit, percent_encode, target_dir, Cluster, PASSWORD};
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

pub fn run(b: &mut Bench) -> Result<(), String> {
    println!(
        "== tls: connect + TLS 1.3 + verify-full + scram-sha-256-plus + SELECT 1, {} runs each",
        b.runs
    );
    let pki = Pki::generate();
    let pg = Cluster::builder().ssl(&pki, ServerCert::Good).start();
    let ca = pki.ca().display().to_string();
    let url = format!(
        "postgres://postgres:{}@localhost:{}/postgres?sslmode=verify-full&sslrootcert={ca}",
        percent_encode(PASSWORD),
        pg.port()
    );
    let djinit_s = measure(
        "djinit wait4db -s 0 (verify-full)",
        2,
        b.runs,
        LIMIT,
        || {
            let mut c = djinit();
            c.args(["wait4db", "-s", "0"]).env("DATABASE_URL", &url);
            c
        },
    )?;
    let conninfo = format!(
        "host=localhost port={} user=postgres dbname=postgres sslmode=verify-full sslrootcert={ca}",
        pg.port()
    );
    let psql = measure(
        "psql \"sslmode=verify-full ...\" -c 'select 1'",
        2,
        b.runs,
        LIMIT,
        || {
            let mut c = Command::new("psql");
            c.env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .env("PGPASSWORD", PASSWORD)
                .args(["-X", "-q", &conninfo, "-c", "select 1"]);
            c
        },
    )?;
    let psql_median = psql.median();
    crate::stats::print_table(&djinit_s, &[&psql]);
    b.report.target(
        "wait4db over TLS (verify-full) faster than psql over TLS",
        djinit_s.median() < psql_median,
        format!("{} vs {}", ms(djinit_s.median()), ms(psql_median)),
    );

    let dir = target_dir().join("components");
    for name in ["wait4db", "ensureadmin", "lockedmigrate", "checkmigrations"] {
        let Ok(m) = std::fs::metadata(dir.join(format!("{name}.wasm"))) else {
            continue;
        };
        b.report.target(
            format!("{name}.wasm with TLS < 1.5 MiB"),
            m.len() < 1536 * 1024,
            size(m.len()),
        );
    }
    println!();
    Ok(())
}
