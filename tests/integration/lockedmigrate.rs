//! `djinit lockedmigrate` against real clusters, with real Django 5.2 as the oracle.
//!
//! The bundle is exported from the fixture project (`tests/fixtures/django_project`: contrib
//! admin/auth/contenttypes/sessions, `library` with a FK, indexes, a non-atomic
//! `AddIndexConcurrently` migration and a reversible one, `shop` with an irreversible one) with
//! no database in the environment at all. Django's `manage.py migrate` on a second database of
//! the same cluster is the reference.
//!
//! Exit codes (djinit-cli's table): 0 applied, 1 pending (--check), 65 refused (needs Python,
//! irreversible, SQL error), 75 lock not acquired within --lock-timeout.

use crate::harness::{djinit, python, run, Auth, Cluster, Output, PASSWORD};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) const RUN_LIMIT: Duration = Duration::from_secs(120);

pub(crate) use djinit_tests::django::fixture;

/// `python manage.py <args>` in fixture `project`, against database `db` of `pg`
/// (`pg == None`: no database settings at all in the environment).
pub(crate) fn manage(project: &str, pg: Option<(&Cluster, &str)>, args: &[&str]) -> Command {
    let mut cmd = djinit_tests::django::fixture_manage(project, args);
    match pg {
        Some((pg, db)) => {
            cmd.env("PGHOST", "127.0.0.1")
                .env("PGPORT", pg.port().to_string())
                .env("PGUSER", "postgres")
                .env("PGPASSWORD", PASSWORD)
                .env("PGDATABASE", db);
        }
        // Nothing listens here: an exporter that tried to connect would fail.
        None => {
            cmd.env("PGHOST", "127.0.0.1").env("PGPORT", "1");
        }
    }
    cmd
}

/// Export the fixture's bundle into a fresh temp dir (no database reachable while exporting).
pub(crate) fn export(project: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("djinit-bundle-")
        .tempdir()
        .unwrap();
    let out = run(
        manage(
            project,
            None,
            &["djinit_export", dir.path().to_str().unwrap()],
        ),
        RUN_LIMIT,
    );
    out.assert_success();
    assert!(dir.path().join("manifest.json").is_file());
    dir
}

/// `djinit <command> --bundle DIR <args>` against database `db`.
pub(crate) fn djinit_cmd(
    command: &str,
    pg: &Cluster,
    db: &str,
    bundle: &Path,
    args: &[&str],
) -> Command {
    let mut cmd = djinit();
    cmd.arg(command)
        .arg("--bundle")
        .arg(bundle)
        .args(args)
        .env("DATABASE_URL", pg.url_for("postgres", PASSWORD, db));
    cmd
}

pub(crate) fn lockedmigrate(pg: &Cluster, db: &str, bundle: &Path, args: &[&str]) -> Output {
    let out = run(djinit_cmd("lockedmigrate", pg, db, bundle, args), RUN_LIMIT);
    out.assert_no_secret(PASSWORD);
    out
}

/// A database migrated by Django itself.
pub(crate) fn reference(pg: &Cluster, project: &str, db: &str) {
    pg.create_database(db);
    run(
        manage(project, Some((pg, db)), &["migrate", "-v", "0"]),
        RUN_LIMIT,
    )
    .assert_success();
}

/// `pg_dump --schema-only`, without comments and the per-dump `\restrict` key.
pub(crate) fn schema(pg: &Cluster, db: &str) -> String {
    let dump = djinit_tests::paths::pg_bindir().join("pg_dump");
    let dump = if dump.is_file() {
        dump
    } else {
        "pg_dump".into()
    };
    let mut cmd = Command::new(dump);
    cmd.env_clear().env("PGPASSWORD", PASSWORD).args([
        "--schema-only",
        "-h",
        "127.0.0.1",
        "-U",
        "postgres",
        "-p",
        &pg.port().to_string(),
        db,
    ]);
    let out = run(cmd, RUN_LIMIT);
    out.assert_success();
    out.stdout
        .lines()
        .filter(|l| {
            !l.starts_with("--") && !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Content types, permissions (with ids) and the recorded migrations in id order.
pub(crate) fn rows(pg: &Cluster, db: &str) -> String {
    pg.psql_in(
        db,
        "SELECT 'ct', id, app_label, model FROM django_content_type ORDER BY id; \
         SELECT 'perm', id, name, content_type_id, codename FROM auth_permission ORDER BY id; \
         SELECT 'mig', app, name FROM django_migrations ORDER BY id",
    )
}

/// Django's `migrate --check`: 0 when nothing is pending.
pub(crate) fn django_check(pg: &Cluster, project: &str, db: &str) -> Option<i32> {
    run(
        manage(project, Some((pg, db)), &["migrate", "--check"]),
        RUN_LIMIT,
    )
    .code
}

/// Django's `showmigrations` (the `[X]`/`[ ]` list) for `app`.
fn showmigrations(pg: &Cluster, db: &str, app: &str) -> String {
    let out = run(
        manage("django_project", Some((pg, db)), &["showmigrations", app]),
        RUN_LIMIT,
    );
    out.assert_success();
    out.stdout
}

#[test]
fn fresh_database_equals_manage_py_migrate() {
    let pg = Cluster::start(Auth::Scram);
    let bundle = export("django_project");
    reference(&pg, "django_project", "reference");
    pg.create_database("app");
    lockedmigrate(&pg, "app", bundle.path(), &[]).assert_success();
    assert_eq!(
        django_check(&pg, "django_project", "app"),
        Some(0),
        "Django sees pending migrations"
    );
    assert_eq!(schema(&pg, "app"), schema(&pg, "reference"));
    let reference_rows = rows(&pg, "reference");
    assert_eq!(rows(&pg, "app"), reference_rows);
    assert!(reference_rows.contains("perm|") && reference_rows.contains("ct|"));
    // A second run is a no-op: nothing applied, no row added.
    let out = lockedmigrate(&pg, "app", bundle.path(), &[]);
    out.assert_success();
    assert!(
        out.stdout.contains("No migrations to apply."),
        "{}",
        out.report()
    );
    assert_eq!(rows(&pg, "app"), reference_rows);
}

#[test]
fn sixteen_simultaneous_runs_apply_each_migration_once() {
    let pg = Cluster::builder().conf("max_connections = 100").start();
    let bundle = export("django_project");
    reference(&pg, "django_project", "reference");
    pg.create_database("app");
    let outs: Vec<Output> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|_| s.spawn(|| lockedmigrate(&pg, "app", bundle.path(), &["-v", "0"])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for out in &outs {
        out.assert_success();
    }
    let counts = pg.psql_in(
        "app",
        "SELECT count(*), count(DISTINCT (app, name)) FROM django_migrations",
    );
    let (all, distinct) = counts.split_once('|').unwrap();
    assert_eq!(all, distinct, "duplicate django_migrations rows");
    let expected = pg.psql_in("reference", "SELECT count(*) FROM django_migrations");
    assert_eq!(all, expected);
    assert_eq!(schema(&pg, "app"), schema(&pg, "reference"));
    assert_eq!(rows(&pg, "app"), rows(&pg, "reference"));
}

/// A session holding `pg_advisory_lock(1000)` until killed, with a recognizable application_name.
struct Holder(std::process::Child);

impl Holder {
    fn start(pg: &Cluster, db: &str) -> Holder {
        let psql = djinit_tests::paths::pg_bindir().join("psql");
        let psql = if psql.is_file() { psql } else { "psql".into() };
        let child = Command::new(psql)
            .env_clear()
            .env("PGPASSWORD", PASSWORD)
            .env("PGAPPNAME", "lock-holder-test")
            .args([
                "-X",
                "-q",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-p",
                &pg.port().to_string(),
                "-d",
                db,
            ])
            .args([
                "-c",
                "SELECT pg_advisory_lock(1000)",
                "-c",
                "SELECT pg_sleep(600)",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while pg.psql_in(db, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 1000 AND granted") != "1" {
            assert!(start.elapsed() < Duration::from_secs(30), "the holder never got the lock");
            std::thread::sleep(Duration::from_millis(50));
        }
        Holder(child)
    }
}

impl Holder {
    /// End the holding session (killing psql alone would leave the server in pg_sleep).
    fn release(mut self, pg: &Cluster, db: &str) {
        pg.psql_in(
            db,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'lock-holder-test'",
        );
        let _ = self.0.wait();
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn lock_held_elsewhere_times_out_naming_the_holder() {
    let pg = Cluster::start(Auth::Scram);
    let bundle = export("django_project");
    pg.create_database("app");
    let holder = Holder::start(&pg, "app");
    let out = lockedmigrate(&pg, "app", bundle.path(), &["--lock-timeout", "2"]);
    out.assert_code(75);
    out.assert_stderr_contains("lock-holder-test")
        .assert_stderr_contains("held by pid");
    assert!(
        out.elapsed < Duration::from_secs(3 + 10),
        "{}",
        out.report()
    );
    // Nothing was applied meanwhile.
    assert_eq!(
        pg.psql_in(
            "app",
            "SELECT count(*) FROM pg_class WHERE relname = 'django_migrations'"
        ),
        "0"
    );
    holder.release(&pg, "app");
    lockedmigrate(&pg, "app", bundle.path(), &[]).assert_success();
}

#[test]
fn killed_mid_migration_leaves_nothing_partial() {
    let pg = Cluster::start(Auth::Scram);
    let bundle = export("django_project");
    reference(&pg, "django_project", "reference");
    pg.create_database("app");
    lockedmigrate(&pg, "app", bundle.path(), &["library", "0001"]).assert_success();
    // A session locking library_author makes 0002 (ALTER TABLE library_author) block mid-migration.
    let blocker = {
        let psql = djinit_tests::paths::pg_bindir().join("psql");
        Command::new(if psql.is_file() { psql } else { "psql".into() })
            .env_clear()
            .env("PGPASSWORD", PASSWORD)
            .env("PGAPPNAME", "blocker")
            .args([
                "-X",
                "-q",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-p",
                &pg.port().to_string(),
                "-d",
                "app",
            ])
            .args([
                "-c",
                "BEGIN; LOCK TABLE library_author IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(600);",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let wait_for = |sql: &str, what: &str| {
        let start = Instant::now();
        while pg.psql_in("app", sql) != "1" {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{what} never happened"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for(
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'library_author' AND l.mode = 'AccessExclusiveLock' AND l.granted",
        "the blocker's table lock",
    );
    // --ddl-lock-timeout 0: killed while it waits, not between guarded attempts.
    let mut victim = djinit_cmd(
        "lockedmigrate",
        &pg,
        "app",
        bundle.path(),
        &["--ddl-lock-timeout", "0"],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    wait_for(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'djinit lockedmigrate' AND wait_event_type = 'Lock'",
        "lockedmigrate blocking inside library.0002",
    );
    victim.kill().unwrap(); // SIGKILL
    victim.wait().unwrap();
    pg.psql_in("app", "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'blocker'");
    let mut blocker = blocker;
    let _ = blocker.wait();
    // The orphaned server session ends at its next read; then its transaction is rolled back.
    wait_for(
        "SELECT (count(*) = 0)::int FROM pg_stat_activity WHERE application_name = 'djinit lockedmigrate'",
        "the killed run's session ending",
    );
    assert_eq!(
        pg.psql_in(
            "app",
            "SELECT count(*) FROM django_migrations WHERE app = 'library' AND name LIKE '0002%'"
        ),
        "0"
    );
    assert_eq!(pg.psql_in("app", "SELECT count(*) FROM information_schema.columns WHERE table_name = 'library_author' AND column_name = 'email'"), "0");
    assert_eq!(
        pg.psql_in(
            "app",
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
        ),
        "0"
    );
    lockedmigrate(&pg, "app", bundle.path(), &[]).assert_success();
    assert_eq!(schema(&pg, "app"), schema(&pg, "reference"));
    let counts = pg.psql_in(
        "app",
        "SELECT count(*) = count(DISTINCT (app, name)) FROM django_migrations",
    );
    assert_eq!(counts, "t");
}

#[test]
fn flags_agree_with_django() {
    let pg = Cluster::start(Auth::Scram);
    let bundle = export("django_project");
    pg.create_database("app");

    // --plan: every migration, in the order of Django's `showmigrations --plan`.
    let out = lockedmigrate(&pg, "app", bundle.path(), &["--plan"]);
    out.assert_success();
    let django_plan = run(
        manage(
            "django_project",
            Some((&pg, "app")),
            &["showmigrations", "--plan"],
        ),
        RUN_LIMIT,
    );
    django_plan.assert_success();
    let expected: Vec<String> = django_plan
        .stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("[ ]").map(|s| s.trim().to_string()))
        .collect();
    // Each line marked with what it takes: `[sql]` here, `[python]` for an unguarded RunPython.
    let ours: Vec<(String, String)> = out
        .stdout
        .lines()
        .filter(|l| !l.starts_with(' ') && l.contains('.'))
        .map(|l| {
            let (label, mark) = l
                .split_once("  [")
                .unwrap_or_else(|| panic!("no mark: {l}"));
            (label.to_string(), mark.trim_end_matches(']').to_string())
        })
        .collect();
    assert_eq!(
        ours.iter().map(|(l, _)| l.clone()).collect::<Vec<_>>(),
        expected
    );
    assert!(
        ours.iter().all(|(_, m)| m == "sql" || m == "python"),
        "{ours:?}"
    );
    assert_eq!(
        pg.psql_in(
            "app",
            "SELECT count(*) FROM pg_class WHERE relname = 'django_migrations'"
        ),
        "0"
    );

    // --check: 1 while pending, like `migrate --check`.
    lockedmigrate(&pg, "app", bundle.path(), &["--check"]).assert_code(1);

    // A target migration, then zero (backwards SQL), each as Django's showmigrations sees it.
    lockedmigrate(&pg, "app", bundle.path(), &["library", "0002"]).assert_success();
    let shown = showmigrations(&pg, "app", "library");
    assert!(
        shown.contains("[X] 0001_initial") && shown.contains("[X] 0002_author_email_published_idx"),
        "{shown}"
    );
    assert!(shown.contains("[ ] 0003_book_isbn_concurrent"), "{shown}");
    lockedmigrate(&pg, "app", bundle.path(), &["library", "0001"]).assert_success();
    assert!(showmigrations(&pg, "app", "library").contains("[ ] 0002_author_email_published_idx"));
    assert_eq!(pg.psql_in("app", "SELECT count(*) FROM information_schema.columns WHERE table_name = 'library_author' AND column_name = 'email'"), "0");
    lockedmigrate(&pg, "app", bundle.path(), &["library", "zero"]).assert_success();
    assert!(!showmigrations(&pg, "app", "library").contains("[X]"));
    assert_eq!(
        pg.psql_in(
            "app",
            "SELECT count(*) FROM pg_class WHERE relname = 'library_book'"
        ),
        "0"
    );

    // --fake: recorded, nothing created.
    lockedmigrate(&pg, "app", bundle.path(), &["--fake", "sessions"]).assert_success();
    assert!(showmigrations(&pg, "app", "sessions").contains("[X] 0001_initial"));
    assert_eq!(
        pg.psql_in(
            "app",
            "SELECT count(*) FROM pg_class WHERE relname = 'django_session'"
        ),
        "0"
    );

    // --fake-initial: an initial migration whose tables exist is recorded, not run.
    lockedmigrate(&pg, "app", bundle.path(), &["library", "0001"]).assert_success();
    pg.psql_in("app", "DELETE FROM django_migrations WHERE app = 'library'");
    let out = lockedmigrate(
        &pg,
        "app",
        bundle.path(),
        &["--fake-initial", "library", "0001"],
    );
    out.assert_success();
    assert!(
        out.stdout.contains("library.0001_initial... FAKED"),
        "{}",
        out.report()
    );
    assert!(showmigrations(&pg, "app", "library").contains("[X] 0001_initial"));

    // --prune: rows of migrations that no longer exist go.
    pg.psql_in(
        "app",
        "INSERT INTO django_migrations (app, name, applied) VALUES ('library', '0099_gone', now())",
    );
    lockedmigrate(&pg, "app", bundle.path(), &["--prune", "library"]).assert_success();
    assert_eq!(
        pg.psql_in(
            "app",
            "SELECT count(*) FROM django_migrations WHERE name = '0099_gone'"
        ),
        "0"
    );

    // Complete it (sessions stays faked, as with Django), then irreversible shop.0002 refuses.
    lockedmigrate(&pg, "app", bundle.path(), &[]).assert_success();
    lockedmigrate(&pg, "app", bundle.path(), &["--check"]).assert_success();
    let out = lockedmigrate(&pg, "app", bundle.path(), &["shop", "0001"]);
    out.assert_code(65).assert_stderr_contains("not reversible");
    assert!(showmigrations(&pg, "app", "shop").contains("[X] 0002_order_note_irreversible"));

    // Usage errors.
    lockedmigrate(&pg, "app", bundle.path(), &["nosuchapp"]).assert_code(64);
    lockedmigrate(&pg, "app", bundle.path(), &["--prune"]).assert_code(64);
}

#[test]
fn bad_bundles_are_refused() {
    let pg = Cluster::start(Auth::Scram);
    let bundle = export("django_project");
    let missing = bundle.path().join("nope");
    lockedmigrate(&pg, "postgres", &missing, &[]).assert_code(66);
    let manifest = bundle.path().join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replacen("CREATE TABLE", "CREATE  TABLE", 1)).unwrap();
    lockedmigrate(&pg, "postgres", bundle.path(), &[])
        .assert_code(65)
        .assert_stderr_contains("checksum");
}

#[test]
fn runpython_migration_is_refused_without_exec() {
    let pg = Cluster::start(Auth::Scram);
    let bundle = export("django_project_runpython");
    pg.create_database("app");
    // --plan says which step needs Python before anything is tried.
    let plan = lockedmigrate(&pg, "app", bundle.path(), &["--plan"]);
    plan.assert_success();
    assert!(
        plan.stdout.contains("notes.0002_welcome_note  [python]")
            && plan.stdout.contains("notes.0001_initial  [sql]"),
        "{}",
        plan.report()
    );
    let out = lockedmigrate(&pg, "app", bundle.path(), &[]);
    out.assert_code(65);
    out.assert_stderr_contains("notes.0002_welcome_note")
        .assert_stderr_contains("--python \"python manage.py\"")
        .assert_stderr_contains("--exec");
    // Refused before anything was applied.
    assert_eq!(
        pg.psql_in(
            "app",
            "SELECT count(*) FROM pg_class WHERE relname = 'django_migrations'"
        ),
        "0"
    );
}

#[test]
fn exec_runs_django_under_the_lock_while_another_run_waits() {
    let pg = Cluster::start(Auth::Scram);
    let bundle = export("django_project_runpython");
    pg.create_database("app");
    // CMD runs natively with the runner's environment: Django reads PG*, the component DATABASE_URL.
    let mut exec = djinit_cmd(
        "lockedmigrate",
        &pg,
        "app",
        bundle.path(),
        &["--exec", "--"],
    );
    exec.arg(python())
        .args(["manage.py", "migrate", "--noinput"])
        .current_dir(fixture("django_project_runpython"))
        .env("NOTES_MIGRATION_SLEEP", "3");
    with_django_env(&mut exec, NOTES, &pg, "app");
    let (first, second) = std::thread::scope(|s| {
        let first = s.spawn(|| run(exec, RUN_LIMIT));
        wait_for_holder(&pg, "app", "djinit lockedmigrate --exec");
        let second = lockedmigrate(&pg, "app", bundle.path(), &[]);
        (first.join().unwrap(), second)
    });
    first.assert_success();
    assert!(
        first
            .stdout
            .contains("Applying notes.0002_welcome_note... OK"),
        "{}",
        first.report()
    );
    second.assert_success();
    second
        .assert_stderr_contains("waiting for advisory lock 1000")
        .assert_stderr_contains("djinit lockedmigrate --exec");
    assert!(
        second.stdout.contains("No migrations to apply."),
        "{}",
        second.report()
    );
    assert_welcome_once(&pg, "app");
    assert_eq!(
        django_check(&pg, "django_project_runpython", "app"),
        Some(0)
    );
}

// ---- --python: SQL natively, each Python migration by Django under the same lock -------------

const NOTES: &str = "django_project_runpython";

/// `djinit lockedmigrate --bundle B --python "PYTHON manage.py" ARGS` on `db`, in fixture
/// `project`'s directory with Django's database settings (PG*) beside the component's
/// DATABASE_URL.
pub(crate) fn python_mode_in(
    project: &str,
    pg: &Cluster,
    db: &str,
    bundle: &Path,
    args: &[&str],
) -> Command {
    let cmd_line = format!("{} manage.py", python().display());
    let mut cmd = djinit_cmd("lockedmigrate", pg, db, bundle, &["--python", &cmd_line]);
    cmd.args(args).current_dir(fixture(project));
    with_django_env(&mut cmd, project, pg, db);
    cmd
}

/// `cmd` also gets the environment Django's `manage.py` gets in [`manage`] (a command the
/// runner starts natively: `--exec`, `--python`).
fn with_django_env(cmd: &mut Command, project: &str, pg: &Cluster, db: &str) {
    for (k, v) in manage(project, Some((pg, db)), &[]).get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
}

fn python_mode(pg: &Cluster, db: &str, bundle: &Path, args: &[&str]) -> Command {
    python_mode_in(NOTES, pg, db, bundle, args)
}

/// Wait until a session with `application_name` holds advisory lock 1000 on `db`.
fn wait_for_holder(pg: &Cluster, db: &str, application_name: &str) {
    let start = Instant::now();
    while pg.psql_in(
        db,
        &format!(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid) \
             WHERE l.locktype = 'advisory' AND l.objid = 1000 AND l.granted \
             AND a.application_name = '{application_name}'"
        ),
    ) != "1"
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{application_name} never took the lock"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Advisory locks held on `db` (granted), by anyone.
fn advisory_locks(pg: &Cluster, db: &str) -> String {
    pg.psql_in(
        db,
        "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
         WHERE l.locktype = 'advisory' AND l.granted AND d.datname = current_database()",
    )
}

fn recorded_notes(pg: &Cluster, db: &str) -> String {
    pg.psql_in(
        db,
        "SELECT string_agg(name, ',' ORDER BY name) FROM django_migrations WHERE app = 'notes'",
    )
}

#[test]
fn python_mode_applies_sql_itself_and_hands_python_to_django_once() {
    let pg = Cluster::start(Auth::Scram);
    let bundle = export(NOTES);
    pg.create_database("app");
    // --plan needs no runner and no Django: it only reads.
    let plan = lockedmigrate(
        &pg,
        "app",
        bundle.path(),
        &["--plan", "--python", "python manage.py"],
    );
    plan.assert_success();
    assert!(
        plan.stdout.contains("notes.0002_welcome_note  [python]"),
        "{}",
        plan.report()
    );
    let mut first = python_mode(&pg, "app", bundle.path(), &[]);
    first.env("NOTES_MIGRATION_SLEEP", "3");
    let (first, second) = std::thread::scope(|s| {
        let first = s.spawn(|| run(first, RUN_LIMIT));
        // The second starts while the first holds the lock (Django is sleeping in 0002).
        wait_for_holder(&pg, "app", "djinit lockedmigrate --python");
        let second = run(python_mode(&pg, "app", bundle.path(), &[]), RUN_LIMIT);
        (first.join().unwrap(), second)
    });
    first.assert_success();
    first.assert_no_secret(PASSWORD);
    // SQL natively before and after; the data migration by Django.
    for line in [
        "Applying notes.0001_initial... OK\n",
        "Applying notes.0002_welcome_note... OK (Django)\n",
        "Applying notes.0003_note_pinned... OK\n",
    ] {
        assert!(first.stdout.contains(line), "{line:?}\n{}", first.report());
    }
    assert_eq!(
        first.stdout.matches("Operations to perform:").count(),
        1,
        "{}",
        first.report()
    );
    second.assert_success();
    second.assert_stderr_contains("waiting for advisory lock 1000");
    assert!(
        second.stdout.contains("No migrations to apply.") && !second.stdout.contains("(Django)"),
        "{}",
        second.report()
    );
    // Exactly once: one welcome row, every migration recorded once, nothing left locked.
    assert_welcome_once(&pg, "app");
    assert_eq!(
        pg.psql_in(
            "app",
            "SELECT count(*) - count(DISTINCT (app, name)) FROM django_migrations"
        ),
        "0"
    );
    assert_eq!(advisory_locks(&pg, "app"), "0");
    assert_eq!(django_check(&pg, NOTES, "app"), Some(0));
    reference(&pg, NOTES, "django");
    assert_eq!(schema(&pg, "app"), schema(&pg, "django"));

    // Backwards through the data migration: Django unapplies 0002 (`migrate notes 0001`), djinit
    // unapplies 0003 before it.
    let out = run(
        python_mode(&pg, "app", bundle.path(), &["notes", "0001"]),
        RUN_LIMIT,
    );
    out.assert_success();
    for line in [
        "Unapplying notes.0003_note_pinned... OK\n",
        "Unapplying notes.0002_welcome_note... OK (Django)\n",
    ] {
        assert!(out.stdout.contains(line), "{line:?}\n{}", out.report());
    }
    assert_eq!(recorded_notes(&pg, "app"), "0001_initial");
    assert_eq!(pg.psql_in("app", "SELECT count(*) FROM notes_note"), "0");
    assert_eq!(advisory_locks(&pg, "app"), "0");
}

#[test]
fn python_mode_stops_at_a_failing_django_step_and_on_sigterm() {
    let pg = Cluster::start(Auth::Scram);
    let bundle = export(NOTES);
    // Django fails: 65, named, what came before stays, nothing after, the lock released.
    pg.create_database("fails");
    let mut cmd = python_mode(&pg, "fails", bundle.path(), &[]);
    cmd.env("NOTES_MIGRATION_FAIL", "1");
    let out = run(cmd, RUN_LIMIT);
    out.assert_code(65)
        .assert_stderr_contains("Django failed applying notes.0002_welcome_note")
        .assert_stderr_contains("exited with code 1");
    one_line_messages_from_djinit(&out);
    assert_eq!(recorded_notes(&pg, "fails"), "0001_initial");
    assert_eq!(advisory_locks(&pg, "fails"), "0");

    // SIGTERM while Django runs a step: Django's process group is stopped, the lock released,
    // exit 143, the step not recorded (Django's transaction rolled back).
    pg.create_database("stopped");
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("django.pid");
    let mut cmd = python_mode(&pg, "stopped", bundle.path(), &[]);
    cmd.env("NOTES_MIGRATION_SLEEP", "60")
        .env("NOTES_MIGRATION_PIDFILE", &pidfile)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let django = pid_in(&pidfile);
    let start = Instant::now();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(12),
        "{:?}",
        start.elapsed()
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    assert!(
        stderr.contains("while Django was applying notes.0002_welcome_note"),
        "{stderr}"
    );
    assert!(gone(django), "Django (pid {django}) outlived djinit");
    assert_eq!(recorded_notes(&pg, "stopped"), "0001_initial");
    assert_eq!(advisory_locks(&pg, "stopped"), "0");
}

/// djinit's own lines are one line each; Django's traceback (its own stderr) may be above them.
fn one_line_messages_from_djinit(out: &Output) {
    for bad in ["panicked", "wasm backtrace"] {
        assert!(!out.stderr.contains(bad), "{bad:?}\n{}", out.report());
    }
    let ours: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("lockedmigrate:") || l.starts_with("djinit:"))
        .collect();
    assert!(!ours.is_empty(), "{}", out.report());
}

/// The data migration ran exactly once on `db`: one welcome note.
fn assert_welcome_once(pg: &Cluster, db: &str) {
    assert_eq!(
        pg.psql_in(db, "SELECT count(*) FROM notes_note WHERE text = 'welcome'"),
        "1"
    );
}

// ---- --exec: signals, --timeout, the command's process group ------------------------------------

/// `djinit [runner_args] lockedmigrate --exec -- sh -c SCRIPT` holding the lock on `postgres`.
fn exec_sh(pg: &Cluster, runner_args: &[&str], script: &str) -> Command {
    let mut cmd = djinit();
    cmd.args(runner_args)
        .args(["lockedmigrate", "--exec", "--", "sh", "-c", script])
        .env("DATABASE_URL", pg.url_for("postgres", PASSWORD, "postgres"));
    cmd
}

/// The pid a test command wrote to `path`, waiting for it to appear.
fn pid_in(path: &Path) -> i32 {
    let start = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Ok(pid) = text.trim().parse() {
                return pid;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{} never written",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether process `pid` is gone (or a zombie nobody reaped yet), waiting up to 5 s for it.
fn gone(pid: i32) -> bool {
    let start = Instant::now();
    loop {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim().to_string()));
        match state {
            None => return true,
            Some(s) if s.starts_with('Z') => return true,
            Some(_) if start.elapsed() > Duration::from_secs(5) => return false,
            Some(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// One line per message: no wasm backtrace, no panic.
fn one_line_messages(out: &Output) {
    for bad in ["backtrace", "panicked", "\n    0:"] {
        assert!(
            !out.stderr.contains(bad),
            "{bad:?} in stderr\n{}",
            out.report()
        );
    }
}

#[test]
fn exec_forwards_sigterm_and_sigint_to_the_command_and_what_it_started() {
    let pg = Cluster::start(Auth::Scram);
    for (signal, code, name) in [
        (libc::SIGTERM, 143, "SIGTERM"),
        (libc::SIGINT, 130, "SIGINT"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        // The grandchild runs in the foreground: a non-interactive shell's `&` jobs ignore SIGINT.
        let script = format!(
            "echo $$ > {d}/child; sh -c 'echo $$ > {d}/grandchild; exec sleep 60'; echo after"
        );
        let running = djinit_tests::spawn(exec_sh(&pg, &[], &script));
        let child = pid_in(&dir.path().join("child"));
        let grandchild = pid_in(&dir.path().join("grandchild"));
        running.signal(signal);
        let sent = Instant::now();
        let out = running.wait(RUN_LIMIT);
        out.assert_code(code)
            .assert_stderr_contains(&format!("stopped by {name}"))
            .assert_stderr_contains("advisory lock released");
        one_line_messages(&out);
        // Forwarded at once, not killed after the grace period.
        assert!(
            sent.elapsed() < Duration::from_secs(8),
            "{name}: {:?}\n{}",
            sent.elapsed(),
            out.report()
        );
        assert!(!out.stdout.contains("after"), "{}", out.report());
        assert!(gone(child), "{name}: the command survived");
        assert!(gone(grandchild), "{name}: its child survived");
        assert_eq!(
            pg.psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"),
            "0"
        );
    }
}

#[test]
fn exec_honours_the_runner_timeout() {
    let pg = Cluster::start(Auth::Scram);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let script = format!("echo $$ > {d}/child; sleep 30 & echo $! > {d}/grandchild; wait");
    let out = run(exec_sh(&pg, &["--timeout", "3"], &script), RUN_LIMIT);
    out.assert_code(71)
        .assert_stderr_contains("wall-clock limit of 3 s")
        .assert_stderr_contains("advisory lock released");
    one_line_messages(&out);
    assert!(out.elapsed < Duration::from_secs(20), "{}", out.report());
    assert!(gone(pid_in(&dir.path().join("child"))));
    assert!(gone(pid_in(&dir.path().join("grandchild"))));
}

#[test]
fn exec_kills_a_command_that_ignores_sigterm_after_the_grace_period() {
    let pg = Cluster::start(Auth::Scram);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    // Ignored signals stay ignored in children: sleep ignores SIGTERM too.
    let script = format!(
        "trap '' TERM; echo $$ > {d}/child; sleep 60 & echo $! > {d}/grandchild; wait; wait"
    );
    let running = djinit_tests::spawn(exec_sh(&pg, &[], &script));
    let child = pid_in(&dir.path().join("child"));
    let grandchild = pid_in(&dir.path().join("grandchild"));
    running.signal(libc::SIGTERM);
    let sent = Instant::now();
    let out = running.wait(RUN_LIMIT);
    out.assert_code(143)
        .assert_stderr_contains("SIGKILL")
        .assert_stderr_contains("advisory lock released");
    one_line_messages(&out);
    let took = sent.elapsed();
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(30),
        "{took:?}\n{}",
        out.report()
    );
    assert!(gone(child) && gone(grandchild), "{}", out.report());
}

#[test]
fn exec_leaves_no_process_behind_when_the_command_exits() {
    let pg = Cluster::start(Auth::Scram);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    // The command exits at once, leaving a background job that would run on without the lock.
    let script = format!("sleep 60 & echo $! > {d}/grandchild; exit 3");
    let out = run(exec_sh(&pg, &[], &script), RUN_LIMIT);
    out.assert_code(3)
        .assert_stderr_contains("left running")
        .assert_stderr_contains("advisory lock released");
    assert!(out.elapsed < Duration::from_secs(9), "{}", out.report());
    assert!(gone(pid_in(&dir.path().join("grandchild"))));
}

// ---- transaction control inside an atomic migration's SQL -----------------------------------

/// Change migration `app.name`'s forward SQL statements with `edit`, then re-checksum the
/// manifest (as if the exporter had written it).
fn edit_forward_sql(bundle: &Path, app: &str, name: &str, edit: impl FnOnce(&mut Vec<String>)) {
    let path = bundle.join("manifest.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let m = v["migrations"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|m| m["app"] == app && m["name"] == name)
        .expect("migration in the bundle");
    let sql = &mut m["forward"][0]["sql"];
    let mut stmts: Vec<String> = serde_json::from_value(sql.take()).unwrap();
    edit(&mut stmts);
    *sql = serde_json::to_value(stmts).unwrap();
    let sum = djinit_bundle::manifest::checksum_of(m);
    m["checksum"] = sum.into();
    let sum = djinit_bundle::manifest::checksum_of(&v);
    v["checksum"] = sum.into();
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
}

/// A fresh database `app` migrated with the fixture's bundle whose `library.0002` forward SQL
/// was changed by `edit`.
fn migrate_with_edited_0002(edit: impl FnOnce(&mut Vec<String>)) -> (Cluster, Output) {
    let pg = Cluster::start(Auth::Scram);
    let bundle = export("django_project");
    edit_forward_sql(
        bundle.path(),
        "library",
        "0002_author_email_published_idx",
        edit,
    );
    pg.create_database("app");
    let out = lockedmigrate(&pg, "app", bundle.path(), &[]);
    (pg, out)
}

fn email_column(pg: &Cluster) -> String {
    pg.psql_in(
        "app",
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'library_author' AND column_name = 'email'",
    )
}

#[test]
fn commit_inside_an_atomic_migration_is_refused_before_anything_is_applied() {
    let (pg, out) = migrate_with_edited_0002(|s| s[0].push_str(" COMMIT;"));
    out.assert_code(65)
        .assert_stderr_contains("library.0002_author_email_published_idx")
        .assert_stderr_contains("COMMIT")
        .assert_stderr_contains("Nothing was applied");
    // Refused up front: not even library.0001 or django_migrations.
    assert_eq!(
        pg.psql_in(
            "app",
            "SELECT count(*) FROM pg_class WHERE relname IN ('django_migrations', 'library_author')"
        ),
        "0"
    );
}

#[test]
fn sql_that_ends_the_transaction_unseen_is_reported_as_committed_not_rolled_back() {
    // With standard_conforming_strings off, `'\''` is one quote for the server but an open
    // literal for a lexer that assumes the default: the COMMIT gets past the up-front check.
    let (pg, out) = migrate_with_edited_0002(|s| {
        s[0].push_str(" SELECT '\\''; COMMIT; SELECT '';");
        s.insert(0, "SET standard_conforming_strings = off".into());
    });
    out.assert_code(65)
        .assert_stderr_contains("library.0002_author_email_published_idx")
        .assert_stderr_contains("ended the migration's transaction");
    assert!(
        !out.stderr.contains("nothing of it was committed"),
        "{}",
        out.report()
    );
    // What the message says: the part before the COMMIT is committed, the migration unrecorded.
    assert_eq!(email_column(&pg), "1");
    assert_eq!(
        pg.psql_in(
            "app",
            "SELECT count(*) FROM django_migrations WHERE app = 'library' AND name LIKE '0002%'"
        ),
        "0"
    );
}

#[test]
fn a_failing_atomic_migration_is_confirmed_rolled_back() {
    let (pg, out) = migrate_with_edited_0002(|s| s.push("SELECT 1/0".into()));
    out.assert_code(65)
        .assert_stderr_contains("SQLSTATE 22012")
        .assert_stderr_contains("rolled back: nothing of it was committed");
    assert_eq!(email_column(&pg), "0");
}

// ---- the lock holder, seen from another role ---------------------------------------------------

#[test]
fn lock_holder_of_another_role_says_what_is_hidden_and_why() {
    let pg = Cluster::start(Auth::Scram);
    pg.create_database("app");
    pg.create_user("deployer", PASSWORD);
    let holder = Holder::start(&pg, "app");
    let mut cmd = djinit();
    cmd.args([
        "lockedmigrate",
        "--lock-timeout",
        "1",
        "--exec",
        "--",
        "true",
    ])
    .env("DATABASE_URL", pg.url_for("deployer", PASSWORD, "app"));
    let out = run(cmd, RUN_LIMIT);
    out.assert_code(75)
        .assert_no_secret(PASSWORD)
        .assert_stderr_contains("held by pid")
        .assert_stderr_contains("role \"postgres\"")
        .assert_stderr_contains("lock-holder-test")
        .assert_stderr_contains("hidden from role \"deployer\"")
        .assert_stderr_contains("pg_read_all_stats");
    assert!(!out.stderr.contains("since ?"), "{}", out.report());
    holder.release(&pg, "app");
}
