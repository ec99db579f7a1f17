//! Tour steps for the migration commands: export a bundle with Django (no database needed),
//! check, apply under the advisory lock, apply again (no-op), check again.

use crate::tour::{Step, Tour};
use djinit_tests::{python, workspace_root};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

fn bundle(t: &Tour) -> PathBuf {
    t.pg.temp_dir().join("bundle")
}

pub fn steps() -> Vec<Step> {
    vec![
        Step {
            title: "djinit_export: the migration bundle (at image build time)",
            about:
                "Django writes every migration's SQL, in `migrate`'s order, into manifest.json. \
                    No database is reachable here: the exporter needs none.",
            run: export,
        },
        Step {
            title: "checkmigrations: a fresh database",
            about: "All 24 migrations are pending: exit 1 (as django-k8s), listed with -v 2.",
            run: check,
        },
        Step {
            title: "lockedmigrate: apply under pg_advisory_lock(1000)",
            about: "No Python: each atomic migration commits together with its django_migrations \
                    row; the CREATE INDEX CONCURRENTLY one runs outside a transaction. Then the \
                    content types and permissions Django's post_migrate would add.",
            run: apply,
        },
        Step {
            title: "lockedmigrate again, checkmigrations again",
            about: "Nothing pending: a no-op run, and exit 0.",
            run: again,
        },
    ]
}

fn db_env(t: &Tour) -> Vec<(&'static str, String)> {
    vec![("DATABASE_URL", t.pg.url())]
}

fn export(t: &mut Tour) {
    let dir = bundle(t);
    let mut cmd = Command::new(python());
    cmd.current_dir(workspace_root().join("tests/fixtures/django_project"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .args(["manage.py", "djinit_export"])
        .arg(&dir);
    t.show_command(
        &format!("$ python manage.py djinit_export {}", dir.display()),
        cmd,
        LIMIT,
    );
}

fn check(t: &mut Tour) {
    let b = bundle(t).display().to_string();
    t.show(
        &db_env(t),
        &["checkmigrations", "--bundle", &b, "-v", "2"],
        LIMIT,
    );
}

fn apply(t: &mut Tour) {
    let b = bundle(t).display().to_string();
    t.show(&db_env(t), &["lockedmigrate", "--bundle", &b], LIMIT);
}

fn again(t: &mut Tour) {
    let b = bundle(t).display().to_string();
    t.show(&db_env(t), &["lockedmigrate", "--bundle", &b], LIMIT);
    t.show(&db_env(t), &["checkmigrations", "--bundle", &b], LIMIT);
}
