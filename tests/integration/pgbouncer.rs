//! djinit behind a real PgBouncer (Debian's `pgbouncer`, started by the harness:
//! `djinit_tests::pgbouncer`) in transaction and in session pooling mode.
//!
//! lockedmigrate detects transaction pooling before touching anything and then takes the lock in
//! each migration's own transaction (`pg_advisory_xact_lock`, django_migrations re-read inside),
//! so concurrent runs apply each migration once and leave no lock held; a non-atomic migration
//! is refused there (exit 78) with the remedy. In session mode it works as on a direct
//! connection. wait4db, ensureadmin and checkmigrations work through transaction pooling too.

use crate::harness::{djinit, run, Auth, Cluster, Output, PgBouncer, PoolMode, PASSWORD};
use crate::lockedmigrate::{export, RUN_LIMIT};
use std::path::Path;
use std::process::Command;

pub(crate) use djinit_tests::django::atomic_bundle;

fn djinit_via(url: &str, command: &str, bundle: Option<&Path>, args: &[&str]) -> Output {
    let mut cmd: Command = djinit();
    cmd.arg(command);
    if let Some(b) = bundle {
        cmd.arg("--bundle").arg(b);
    }
    cmd.args(args).env("DATABASE_URL", url);
    let out = run(cmd, RUN_LIMIT);
    out.assert_no_secret(PASSWORD);
    out
}

/// Advisory locks held in the cluster (any database), seen directly, not through PgBouncer.
fn advisory_locks(pg: &Cluster) -> String {
    pg.psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
}

/// 8 concurrent runs on a fresh database, then a 9th; asserts what the issue asks.
fn eight_concurrent_runs(pg: &Cluster, bouncer: &PgBouncer, bundle: &Path, expect_pooled: bool) {
    pg.create_database("app");
    let url = bouncer.url("app");
    let outs: Vec<Output> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| s.spawn(|| djinit_via(&url, "lockedmigrate", Some(bundle), &["-v", "2"])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for out in &outs {
        out.assert_success();
        assert_eq!(
            out.stderr.contains("pooled per transaction"),
            expect_pooled,
            "pooling detected wrongly\n{}",
            out.report()
        );
    }
    let counts = pg.psql_in(
        "app",
        "SELECT count(*), count(DISTINCT (app, name)) FROM django_migrations",
    );
    let (all, distinct) = counts.split_once('|').unwrap();
    assert_eq!(all, distinct, "a migration was recorded twice");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("manifest.json")).unwrap()).unwrap();
    let in_bundle = manifest["migrations"].as_array().map_or(0, |m| m.len());
    assert_eq!(all, in_bundle.to_string(), "every migration recorded");
    // post_migrate rows once each (unique constraints would have failed a run otherwise).
    let cts = pg.psql_in(
        "app",
        "SELECT count(*) = count(DISTINCT (app_label, model)) AND count(*) > 0 FROM django_content_type",
    );
    assert_eq!(cts, "t");
    assert_eq!(advisory_locks(pg), "0", "an advisory lock is left held");
    // The 9th run right after: nothing to do, no wait for a lock.
    let ninth = djinit_via(&url, "lockedmigrate", Some(bundle), &["-v", "1"]);
    ninth.assert_success();
    assert!(
        ninth.stdout.contains("No migrations to apply.") && !ninth.stderr.contains("waiting"),
        "{}",
        ninth.report()
    );
    assert_eq!(advisory_locks(pg), "0", "an advisory lock is left held");
    // checkmigrations through the same pooler agrees.
    djinit_via(&url, "checkmigrations", Some(bundle), &[]).assert_success();
}

#[test]
fn transaction_pooling_eight_concurrent_runs_apply_each_migration_once() {
    let pg = Cluster::builder().auth(Auth::Scram).start();
    let bouncer = PgBouncer::start(&pg, PoolMode::Transaction);
    let (_proj, bundle) = atomic_bundle();
    eight_concurrent_runs(&pg, &bouncer, bundle.path(), true);
}

#[test]
fn session_pooling_eight_concurrent_runs_apply_each_migration_once() {
    let pg = Cluster::builder().auth(Auth::Scram).start();
    let bouncer = PgBouncer::start(&pg, PoolMode::Session);
    // The full fixture, with its non-atomic CREATE INDEX CONCURRENTLY migration: fine here.
    let bundle = export("django_project");
    eight_concurrent_runs(&pg, &bouncer, bundle.path(), false);
}

#[test]
fn non_atomic_migration_through_transaction_pooling_is_refused_with_the_remedy() {
    let pg = Cluster::builder().auth(Auth::Scram).start();
    let bouncer = PgBouncer::start(&pg, PoolMode::Transaction);
    let bundle = export("django_project");
    pg.create_database("app");
    let out = djinit_via(
        &bouncer.url("app"),
        "lockedmigrate",
        Some(bundle.path()),
        &[],
    );
    out.assert_code(78)
        .assert_stderr_contains("library.0003_book_isbn_concurrent")
        .assert_stderr_contains("DATABASE_URL_MIGRATE");
    let errors: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("non-atomic"))
        .collect();
    assert_eq!(errors.len(), 1, "one clear line\n{}", out.report());
    // Nothing touched: not even django_migrations was created.
    assert_eq!(
        pg.psql_in(
            "app",
            "SELECT count(*) FROM pg_class WHERE relname = 'django_migrations'"
        ),
        "0"
    );
    // The remedy works: the same run on a direct URL under the alias `migrate`.
    let mut cmd = djinit();
    cmd.args(["lockedmigrate", "-d", "migrate", "--bundle"])
        .arg(bundle.path())
        .env("DATABASE_URL", bouncer.url("app"))
        .env(
            "DATABASE_URL_MIGRATE",
            pg.url_for("postgres", PASSWORD, "app"),
        );
    run(cmd, RUN_LIMIT).assert_success();
    djinit_via(
        &bouncer.url("app"),
        "checkmigrations",
        Some(bundle.path()),
        &[],
    )
    .assert_success();
    // `--python` must hold the lock while Django runs: refused the same way, nothing run.
    pg.create_database("python");
    let out = djinit_via(
        &bouncer.url("python"),
        "lockedmigrate",
        Some(bundle.path()),
        &["--python", "false"],
    );
    out.assert_code(78)
        .assert_stderr_contains("--python needs a session")
        .assert_stderr_contains("DATABASE_URL_MIGRATE");
    assert_eq!(
        pg.psql_in(
            "python",
            "SELECT count(*) FROM pg_class WHERE relname = 'django_migrations'"
        ),
        "0"
    );
}

#[test]
fn wait4db_ensureadmin_checkmigrations_through_transaction_pooling() {
    let pg = Cluster::builder().auth(Auth::Scram).start();
    let bouncer = PgBouncer::start(&pg, PoolMode::Transaction);
    let (_proj, bundle) = atomic_bundle();
    pg.create_database("app");
    let url = bouncer.url("app");
    djinit_via(&url, "wait4db", None, &["-s", "0", "-t", "20"]).assert_success();
    djinit_via(&url, "checkmigrations", Some(bundle.path()), &[]).assert_code(1);
    djinit_via(&url, "lockedmigrate", Some(bundle.path()), &[]).assert_success();
    djinit_via(&url, "checkmigrations", Some(bundle.path()), &[]).assert_success();
    djinit_via(
        &url,
        "wait4db",
        Some(bundle.path()),
        &["--migrated", "-s", "0", "-t", "20"],
    )
    .assert_success();
    // 8 concurrent ensureadmin runs through the pooler: one user.
    let outs: Vec<Output> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    let mut cmd = djinit();
                    cmd.arg("ensureadmin")
                        .env("DATABASE_URL", &url)
                        .env("DJANGO_ADMIN_USERNAME", "admin")
                        .env("DJANGO_ADMIN_PASSWORD", "a-long-Unusual-pw-4711")
                        .env("DJANGO_ADMIN_EMAIL", "ops@example.com");
                    run(cmd, RUN_LIMIT)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for out in &outs {
        out.assert_success();
    }
    assert_eq!(
        pg.psql_in(
            "app",
            "SELECT count(*) FROM auth_user WHERE username = 'admin' AND is_superuser"
        ),
        "1"
    );
    assert_eq!(advisory_locks(&pg), "0");
}
