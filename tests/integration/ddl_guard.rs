//! lockedmigrate's zero-downtime guards against a real long transaction: a session
//! ("long-report") holds a lock on `auth_user` while an "app" keeps querying that table, and the
//! migration `auth.0008_alter_user_username_max_length` wants to ALTER it.
//!
//! Without the guard (`--ddl-lock-timeout 0`) the app's query queues behind the waiting ALTER
//! (asserted from pg_stat_activity; the stall is measured and printed). With it the app's
//! queries keep completing while the migration times out, rolls back and retries, and the run
//! exits 75 naming the blocker; with `--cancel-blockers-after` the blocker's query is cancelled
//! and the migration applies.

use crate::harness::{djinit, run, spawn, Auth, Cluster, DjangoProject, Output, PASSWORD};
use crate::lockedmigrate::RUN_LIMIT;
use crate::pgbouncer::atomic_bundle;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const TARGET: &str = "auth.0008_alter_user_username_max_length";

fn psql(pg: &Cluster, app: &str, sql: &str) -> Command {
    let bin = djinit_tests::paths::pg_bindir().join("psql");
    let mut cmd = Command::new(if bin.is_file() { bin } else { "psql".into() });
    cmd.env_clear()
        .env("PGPASSWORD", PASSWORD)
        .env("PGAPPNAME", app)
        .args(["-X", "-q", "-A", "-t", "-h", "127.0.0.1", "-U", "postgres"])
        .args(["-p", &pg.port().to_string(), "-d", "app", "-c", sql]);
    cmd
}

/// The database at auth 0007 (fresh, migrated by lockedmigrate directly) and the bundle.
fn setup() -> (Cluster, DjangoProject, tempfile::TempDir) {
    let pg = Cluster::start(Auth::Scram);
    let (proj, bundle) = atomic_bundle();
    pg.create_database("app");
    lockedmigrate(&pg, bundle.path(), &["auth", "0007"]).assert_success();
    (pg, proj, bundle)
}

fn lockedmigrate_cmd(pg: &Cluster, bundle: &Path, args: &[&str]) -> Command {
    let mut cmd = djinit();
    cmd.args(["lockedmigrate", "--bundle"])
        .arg(bundle)
        .args(args)
        .env("DATABASE_URL", pg.url_for("postgres", PASSWORD, "app"));
    cmd
}

fn lockedmigrate(pg: &Cluster, bundle: &Path, args: &[&str]) -> Output {
    let out = run(lockedmigrate_cmd(pg, bundle, args), RUN_LIMIT);
    out.assert_no_secret(PASSWORD);
    out
}

/// A session in a transaction holding ACCESS SHARE on auth_user (running pg_sleep, so its
/// query can be cancelled), as a long report would. Killed (with its backend) on drop.
struct Blocker(Child);

impl Blocker {
    fn start(pg: &Cluster) -> Blocker {
        let child = psql(
            pg,
            "long-report",
            "BEGIN; SELECT count(*) FROM auth_user; SELECT pg_sleep(600)",
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
        wait_for(pg, "the blocker's lock", || {
            pg.psql_in(
                "app",
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) \
                 WHERE a.application_name = 'long-report' AND l.relation = 'auth_user'::regclass AND l.granted",
            ) == "1"
        });
        Blocker(child)
    }

    fn end(&mut self, pg: &Cluster) {
        pg.psql_in(
            "app",
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'long-report'",
        );
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(_pg: &Cluster, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what} never happened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn recorded(pg: &Cluster, name: &str) -> String {
    pg.psql_in(
        "app",
        &format!("SELECT count(*) FROM django_migrations WHERE app = 'auth' AND name = '{name}'"),
    )
}

#[test]
fn without_the_guard_app_queries_queue_behind_the_waiting_alter() {
    let (pg, _proj, bundle) = setup();
    let mut blocker = Blocker::start(&pg);
    let migrating = spawn(lockedmigrate_cmd(
        &pg,
        bundle.path(),
        &["--ddl-lock-timeout", "0"],
    ));
    wait_for(&pg, "lockedmigrate waiting for its lock", || {
        pg.psql_in(
            "app",
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'djinit lockedmigrate' AND wait_event_type = 'Lock'",
        ) == "1"
    });
    let started = Instant::now();
    let mut app = psql(&pg, "app", "SELECT count(*) FROM auth_user")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // The app's plain SELECT queues behind the ALTER, which waits behind the long transaction.
    wait_for(&pg, "the app's query queueing behind the ALTER", || {
        pg.psql_in(
            "app",
            "SELECT count(*) FROM pg_stat_activity a WHERE a.application_name = 'app' AND a.wait_event_type = 'Lock' \
             AND EXISTS (SELECT 1 FROM pg_stat_activity m WHERE m.application_name = 'djinit lockedmigrate' \
                         AND m.pid = ANY (pg_blocking_pids(a.pid)))",
        ) == "1"
    });
    std::thread::sleep(Duration::from_secs(1));
    blocker.end(&pg);
    let status = app.wait().unwrap();
    let stall = started.elapsed();
    assert!(status.success());
    println!(
        "without --ddl-lock-timeout an app query stalled {:.2}s behind the waiting ALTER (until the long transaction ended)",
        stall.as_secs_f64()
    );
    migrating.wait(RUN_LIMIT).assert_success();
    assert_eq!(recorded(&pg, "0008_alter_user_username_max_length"), "1");
}

/// Runs the app's query in a loop on another thread; counts completions.
fn with_app_traffic<T>(pg: &Cluster, f: impl FnOnce() -> T) -> (T, usize, Duration) {
    let stop = AtomicBool::new(false);
    let done = AtomicUsize::new(0);
    let slowest = std::sync::Mutex::new(Duration::ZERO);
    let r = std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let out = run(psql(pg, "app", "SELECT count(*) FROM auth_user"), RUN_LIMIT);
                if out.code == Some(0) {
                    done.fetch_add(1, Ordering::Relaxed);
                    let mut w = slowest.lock().unwrap();
                    *w = (*w).max(t.elapsed());
                }
            }
        });
        let r = f();
        stop.store(true, Ordering::Relaxed);
        r
    });
    let slowest = *slowest.lock().unwrap();
    (r, done.into_inner(), slowest)
}

#[test]
fn with_the_guard_app_queries_flow_and_the_run_exits_75_naming_the_blocker() {
    let (pg, _proj, bundle) = setup();
    let mut blocker = Blocker::start(&pg);
    let (out, queries, slowest) = with_app_traffic(&pg, || {
        lockedmigrate(
            &pg,
            bundle.path(),
            &["--ddl-lock-timeout", "0.5", "--ddl-retries", "2"],
        )
    });
    println!(
        "with --ddl-lock-timeout 0.5: {queries} app queries completed during the run, the slowest in {:.2}s",
        slowest.as_secs_f64()
    );
    out.assert_code(75)
        .assert_stderr_contains(TARGET)
        .assert_stderr_contains("could not get its locks")
        .assert_stderr_contains("\"long-report\"");
    assert!(
        out.stderr.contains("retry 1/2") && out.stderr.contains("blocked by pid"),
        "{}",
        out.report()
    );
    assert!(
        queries >= 3,
        "the app made no progress: {queries} queries\n{}",
        out.report()
    );
    // Rolled back: 0008 not recorded, and the column unchanged.
    assert_eq!(recorded(&pg, "0008_alter_user_username_max_length"), "0");
    blocker.end(&pg);
    // Nothing held or left behind: the next run applies.
    lockedmigrate(&pg, bundle.path(), &[]).assert_success();
    assert_eq!(recorded(&pg, "0008_alter_user_username_max_length"), "1");
}

#[test]
fn cancel_blockers_after_cancels_the_blocking_query_and_the_migration_applies() {
    let (pg, _proj, bundle) = setup();
    let blocker = Blocker::start(&pg);
    let out = lockedmigrate(
        &pg,
        bundle.path(),
        &[
            "--ddl-lock-timeout",
            "0.5",
            "--cancel-blockers-after",
            "0.5",
        ],
    );
    out.assert_success()
        .assert_stderr_contains("cancelled the query of blocker")
        .assert_stderr_contains("\"long-report\"");
    assert_eq!(recorded(&pg, "0008_alter_user_username_max_length"), "1");
    // Cancelled, not terminated: the blocker's psql saw its statement cancelled.
    let said = blocker.0.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&said.stderr);
    assert!(
        said.contains("canceling statement due to user request") && !said.contains("terminating"),
        "{said}"
    );
}
