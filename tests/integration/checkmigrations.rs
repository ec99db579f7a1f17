//! `djinit checkmigrations` against real clusters: it agrees with Django's `migrate --check` on
//! fresh, partially and completely migrated databases; exit 1 pending, 0 complete, 69 / 75 when
//! the database is unreachable (without / with --wait).

use crate::harness::{free_port, run, Auth, Cluster, Output, PASSWORD};
use crate::lockedmigrate::{django_check, djinit_cmd, export, lockedmigrate, RUN_LIMIT};

fn checkmigrations(pg: &Cluster, db: &str, bundle: &std::path::Path, args: &[&str]) -> Output {
    let out = run(
        djinit_cmd("checkmigrations", pg, db, bundle, args),
        RUN_LIMIT,
    );
    out.assert_no_secret(PASSWORD);
    out
}

#[test]
fn agrees_with_django_migrate_check() {
    let pg = Cluster::start(Auth::Scram);
    let bundle = export("django_project");
    pg.create_database("app");
    let agree = |stage: &str| {
        let ours = checkmigrations(&pg, "app", bundle.path(), &["-v", "2"]);
        let django = django_check(&pg, "django_project", "app");
        assert_eq!(
            ours.code,
            django,
            "{stage}: djinit vs Django\n{}",
            ours.report()
        );
        ours
    };
    let fresh = agree("fresh");
    fresh
        .assert_code(1)
        .assert_stderr_contains("pending: library.0001_initial");
    lockedmigrate(&pg, "app", bundle.path(), &["library", "0002"]).assert_success();
    let partial = agree("partial");
    partial.assert_code(1);
    assert!(
        !partial.stderr.contains("pending: library.0001_initial"),
        "{}",
        partial.report()
    );
    lockedmigrate(&pg, "app", bundle.path(), &[]).assert_success();
    let done = agree("complete");
    done.assert_code(0);
    assert!(done.stdout.contains("Migrations complete."));
}

#[test]
fn wait_is_bounded_and_retries_connection_errors() {
    let pg = Cluster::start(Auth::Scram);
    let bundle = export("django_project");
    // Pending until the deadline: 1, as without --wait.
    checkmigrations(
        &pg,
        "postgres",
        bundle.path(),
        &["--wait", "-t", "5", "-i", "0.2"],
    )
    .assert_code(1);
    // Nothing listening: 69 at once, 75 after --wait.
    let mut cmd = djinit_cmd("checkmigrations", &pg, "postgres", bundle.path(), &[]);
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", free_port());
    cmd.env("DATABASE_URL", &url);
    run(cmd, RUN_LIMIT).assert_code(69);
    let mut cmd = djinit_cmd(
        "checkmigrations",
        &pg,
        "postgres",
        bundle.path(),
        &["--wait", "-t", "1", "-i", "0.2"],
    );
    cmd.env("DATABASE_URL", &url);
    run(cmd, RUN_LIMIT).assert_code(75);
    // Completed by another process while waiting: 0.
    let waiter = std::thread::scope(|s| {
        let h = s.spawn(|| {
            checkmigrations(
                &pg,
                "postgres",
                bundle.path(),
                &["--wait", "-t", "60", "-i", "0.2"],
            )
        });
        std::thread::sleep(std::time::Duration::from_millis(500));
        lockedmigrate(&pg, "postgres", bundle.path(), &[]).assert_success();
        h.join().unwrap()
    });
    waiter.assert_success();
}

#[test]
fn wait4db_migrated_waits_for_the_bundle() {
    let pg = Cluster::start(Auth::Scram);
    let bundle = export("django_project");
    let args = ["--migrated", "-s", "0", "-t", "3", "-i", "0.2"];
    let out = run(
        djinit_cmd("wait4db", &pg, "postgres", bundle.path(), &args),
        RUN_LIMIT,
    );
    out.assert_code(75)
        .assert_stderr_contains("migrations pending");
    lockedmigrate(&pg, "postgres", bundle.path(), &[]).assert_success();
    run(
        djinit_cmd("wait4db", &pg, "postgres", bundle.path(), &args),
        RUN_LIMIT,
    )
    .assert_success();
}
