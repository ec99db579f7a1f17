//! `manage.py djinit_export` / `python -m djinit_django`: what it refuses and what it needs.
//! (What it exports is checked against Django in `lockedmigrate` and `real_apps`.)

use crate::harness::{python, run, workspace_root};
use crate::lockedmigrate::{fixture, manage, RUN_LIMIT};

const COMMIT_PROJECT: &str = "django_project_runsql_commit";

/// Issue 9 item 8: `COMMIT;` inside an atomic migration's SQL would commit part of it.
#[test]
fn transaction_control_in_an_atomic_migration_fails_the_export() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        manage(
            COMMIT_PROJECT,
            None,
            &["djinit_export", dir.path().to_str().unwrap()],
        ),
        RUN_LIMIT,
    );
    assert_eq!(out.code, Some(1), "{}", out.report());
    out.assert_stderr_contains("migration ledger.0002_backfill_in_batches is atomic")
        .assert_stderr_contains("contains COMMIT")
        .assert_stderr_contains("atomic = False");
    assert!(!out.stderr.contains("Traceback"), "{}", out.report());
    assert!(!dir.path().join("manifest.json").exists());

    // The same SQL in a non-atomic migration is the author's choice: exported as written.
    let mut cmd = manage(
        COMMIT_PROJECT,
        None,
        &["djinit_export", dir.path().to_str().unwrap()],
    );
    cmd.env("LEDGER_MIGRATIONS", "ledger.migrations_nonatomic");
    run(cmd, RUN_LIMIT).assert_success();
    let manifest = std::fs::read_to_string(dir.path().join("manifest.json")).unwrap();
    assert!(manifest.contains("COMMIT;"), "{manifest}");
}

/// The statement scanner behind that check, with lockedmigrate's rules (what exports also
/// applies): transaction control is found where a statement starts, never inside quotes,
/// comments, dollar-quoted bodies (`DO` blocks, functions) or `BEGIN ATOMIC` bodies.
#[test]
fn transaction_control_is_found_only_where_a_statement_starts() {
    let cases: &[(&str, &str)] = &[
        ("UPDATE t SET a = 1; COMMIT; UPDATE t SET a = 2", "COMMIT"),
        ("begin;\nCREATE TABLE t (a int)", "BEGIN"),
        ("START TRANSACTION ISOLATION LEVEL SERIALIZABLE", "START TRANSACTION"),
        ("SELECT 1; end", "END"),
        ("rollback", "ROLLBACK"),
        ("ABORT;", "ABORT"),
        ("PREPARE TRANSACTION 'x'", "PREPARE TRANSACTION"),
        ("COMMIT PREPARED 'x'", "COMMIT"),
        ("SELECT 1; /* nested /* comment */ still */ COMMIT", "COMMIT"),
        ("SELECT 1; SAVEPOINT s", "SAVEPOINT"),
        ("RELEASE SAVEPOINT s", "RELEASE"),
        ("ROLLBACK TO s", "ROLLBACK"),
        ("PREPARE q AS SELECT 1", ""),
        ("SELECT 'COMMIT; BEGIN'", ""),
        ("SELECT E'it\\'s; COMMIT'", ""),
        ("SELECT \"commit\" FROM t", ""),
        ("-- COMMIT;\nSELECT 1", ""),
        ("DO $$ BEGIN PERFORM 1; END $$", ""),
        ("DO $djinit$\nBEGIN\n  COMMIT;\nEND\n$djinit$;", ""),
        (
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END; END; SELECT f()",
            "",
        ),
        ("UPDATE t SET a = $1; COMMIT", "COMMIT"),
        ("SELECT 1 AS begin; SELECT end_date FROM t", ""),
    ];
    let program = "import json, sys\n\
                   from djinit_django.export.sqlscan import transaction_control\n\
                   cases = json.loads(sys.argv[1])\n\
                   print(json.dumps([transaction_control(sql) or '' for sql, _ in cases]))\n";
    let json = serde_json::to_string(cases).unwrap();
    let mut cmd = std::process::Command::new(python());
    cmd.env_clear()
        .env("PYTHONPATH", workspace_root().join("python"))
        .args(["-c", program, &json]);
    let out = run(cmd, RUN_LIMIT);
    out.assert_success();
    let got: Vec<String> = serde_json::from_str(out.stdout.trim()).unwrap();
    for ((sql, want), got) in cases.iter().zip(&got) {
        assert_eq!(got, want, "{sql:?}");
    }
}

/// Without psycopg the exporter says which package extra to install.
#[test]
fn export_without_psycopg_names_the_extra_to_install() {
    // Stand-ins that fail to import, ahead of the venv's real ones on sys.path.
    let stubs = tempfile::tempdir().unwrap();
    for name in ["psycopg", "psycopg2"] {
        std::fs::create_dir(stubs.path().join(name)).unwrap();
        std::fs::write(
            stubs.path().join(name).join("__init__.py"),
            "raise ImportError('not installed (test stand-in)')\n",
        )
        .unwrap();
    }
    let hint = "pip install 'djinit[export]'";
    let out_dir = tempfile::tempdir().unwrap();
    // python -m djinit_django: one line, before Django starts.
    let mut cmd = std::process::Command::new(python());
    cmd.current_dir(fixture("django_project"))
        .env_clear()
        .env(
            "PYTHONPATH",
            std::env::join_paths([
                stubs.path().to_path_buf(),
                workspace_root().join("python"),
                fixture("django_project"),
            ])
            .unwrap(),
        )
        .env("DJANGO_SETTINGS_MODULE", "project.settings")
        .args(["-m", "djinit_django", out_dir.path().to_str().unwrap()]);
    let out = run(cmd, RUN_LIMIT);
    assert_eq!(out.code, Some(1), "{}", out.report());
    out.assert_stderr_contains(hint);
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.report());
    // manage.py: Django stops while loading the backend; djinit_django's app config says why first.
    let mut cmd = manage(
        "django_project",
        None,
        &["djinit_export", out_dir.path().to_str().unwrap()],
    );
    cmd.env("PYTHONPATH", stubs.path());
    let out = run(cmd, RUN_LIMIT);
    assert_eq!(out.code, Some(1), "{}", out.report());
    out.assert_stderr_contains(hint);
    assert!(!out_dir.path().join("manifest.json").exists());
}
