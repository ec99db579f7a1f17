//! Stories for the migration commands, each on its own database: export a bundle with Django (no
//! database needed); on `app`, check, apply under the advisory lock, apply again (nothing to do),
//! check again, and ask Django; on `replicas`, two replicas start at once and the second waits
//! for the first, naming it.

use crate::tour::{expect, Tour};
use crate::Story;
use djinit_tests::{python, workspace_root, PASSWORD};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(120);
/// The fixture project the bundle is exported from (contrib apps plus `library` and `shop`).
const PROJECT: &str = "tests/fixtures/django_project";
/// Its migrations: the bundle's, and the rows a complete `django_migrations` holds.
const MIGRATIONS: usize = 24;
/// The database the migration story migrates (the ensureadmin story uses it afterwards).
pub const APP_DB: &str = "app";
const REPLICAS_DB: &str = "replicas";
/// The fixture project with a RunPython data migration (`notes.0002_welcome_note`) between two
/// SQL ones, and the database its story migrates.
const NOTES_PROJECT: &str = "tests/fixtures/django_project_runpython";
const NOTES_DB: &str = "notes";

pub fn stories() -> Vec<Story> {
    vec![
        Story {
            title: "Migrations without Python: export, check, apply once (database `app`)",
            about: "At image build time Django writes every migration's SQL, in `migrate`'s \
                    order, into a bundle; no database is reachable then. At deploy time \
                    checkmigrations finds all 24 pending (exit 1, as django-k8s), ensureadmin \
                    finds no user table yet (69: retry may help), lockedmigrate applies them \
                    under pg_advisory_lock(1000), each atomic migration together with its \
                    django_migrations row, the CREATE INDEX CONCURRENTLY one outside a \
                    transaction. A second run applies nothing; checkmigrations and Django's own \
                    `migrate --check` agree that the schema is current.",
            run: migrate,
        },
        Story {
            title: "Two replicas start at once (database `replicas`)",
            about: "Replica A runs Django's own `migrate` under djinit's lock (`lockedmigrate \
                    --exec`, for apps whose migrations need Python). Replica B, a plain \
                    lockedmigrate started while A holds the lock, waits and names the holder, \
                    then finds nothing left to apply: every migration is recorded once.",
            run: replicas,
        },
        Story {
            title: "Python only where Python is needed (database `notes`)",
            about: "A project whose second migration is a RunPython data migration. Plain \
                    lockedmigrate refuses it before touching anything (65, naming it); --plan \
                    marks it [python]. With `--python \"python manage.py\"` djinit applies the SQL \
                    migrations itself and hands exactly that one to Django, under the same \
                    advisory lock, in one Django process; the welcome row is written once.",
            run: python_steps,
        },
    ]
}

fn bundle(t: &Tour) -> PathBuf {
    t.pg.temp_dir().join("bundle")
}

fn url(t: &Tour, db: &str) -> String {
    t.pg.url_for("postgres", PASSWORD, db)
}

/// `python manage.py <args>` in the fixture project (the venv's Python), environment empty but
/// `PATH`; the project reads the libpq variables `PG*`.
fn manage(args: &[&str]) -> Command {
    djinit_tests::django::manage_py(&workspace_root().join(PROJECT), args)
}

/// The libpq variables that point Django at database `db` of the tour's cluster.
fn pg_env(t: &Tour, db: &str) -> Vec<(&'static str, String)> {
    t.pg.pg_env()
        .into_iter()
        .map(|(k, v)| {
            if k == "PGDATABASE" {
                (k, db.to_string())
            } else {
                (k, v)
            }
        })
        .collect()
}

/// "`<rows>` rows, `<distinct>` distinct" for `django_migrations` in `db`.
fn recorded(t: &Tour, db: &str) -> String {
    t.pg.psql_in(
        db,
        "SELECT count(*) || ' rows, ' || count(DISTINCT (app, name)) || ' distinct' \
         FROM django_migrations",
    )
}

/// Step `id`: `python manage.py djinit_export DIR` in fixture `project`, with the libpq
/// variables pointing where nothing listens (port 1): the exporter must not need a database.
fn export(t: &mut Tour, id: &'static str, project: &str, dir: &str, expect: crate::tour::Expect) {
    let mut cmd =
        djinit_tests::django::manage_py(&workspace_root().join(project), &["djinit_export", dir]);
    cmd.env("PGHOST", "127.0.0.1").env("PGPORT", "1");
    let mut line = format!("$ python manage.py djinit_export {dir}");
    t.breaking(id, &mut line, &mut cmd);
    t.show_command(id, &line, cmd, expect, LIMIT);
}

fn migrate(t: &mut Tour) {
    let b = bundle(t);
    let bs = b.display().to_string();

    export(
        t,
        "migrate/export",
        PROJECT,
        &bs,
        expect(0, &["Exported 24 migrations"]),
    );

    t.pg.create_database(APP_DB);
    println!("  (CREATE DATABASE {APP_DB})\n");
    let env = [("DATABASE_URL", url(t, APP_DB))];
    t.show(
        "migrate/check-before",
        &env,
        &["checkmigrations", "--bundle", &bs],
        expect(1, &["24 of 24 migrations pending"]),
        LIMIT,
    );
    t.show(
        "migrate/ensureadmin-too-early",
        &[
            env[0].clone(),
            ("DJANGO_ADMIN_USERNAME", "admin".into()),
            ("DJANGO_ADMIN_PASSWORD", crate::ensureadmin::ADMIN_PW.into()),
        ],
        &["ensureadmin", "-t", "5"],
        expect(69, &["schema missing"]),
        LIMIT,
    );
    t.show(
        "migrate/apply",
        &env,
        &["lockedmigrate", "--bundle", &bs],
        expect(
            0,
            &[
                "Applying auth.0001_initial... OK",
                "Applying library.0003_book_isbn_concurrent... OK",
                "Applying shop.0002_order_note_irreversible... OK",
            ],
        ),
        LIMIT,
    );
    t.show(
        "migrate/apply-again",
        &env,
        &["lockedmigrate", "--bundle", &bs],
        expect(0, &["No migrations to apply."]),
        LIMIT,
    );
    let once = format!("{MIGRATIONS} rows, {MIGRATIONS} distinct");
    t.verify(
        "migrate/recorded-once",
        "django_migrations",
        &once,
        &recorded(t, APP_DB),
    );
    t.show(
        "migrate/check-after",
        &env,
        &["checkmigrations", "--bundle", &bs],
        expect(0, &["Migrations complete."]),
        LIMIT,
    );

    const DJANGO: &str = "migrate/django-agrees";
    let mut cmd = manage(&["migrate", "--check"]);
    cmd.envs(pg_env(t, APP_DB));
    let mut line = format!("$ PGDATABASE={APP_DB} PGHOST=... python manage.py migrate --check");
    t.breaking(DJANGO, &mut line, &mut cmd);
    t.show_command(DJANGO, &line, cmd, expect(0, &[]), LIMIT);
}

/// Waits until someone holds advisory lock 1000 in `db` (at most `limit`).
fn wait_for_lock_holder(t: &Tour, db: &str, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        let held = t.pg.psql_in(
            db,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND classid = 0 AND objid = 1000 AND objsubid = 1",
        );
        if held == "1" {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn replicas(t: &mut Tour) {
    let bs = bundle(t).display().to_string();
    t.pg.create_database(REPLICAS_DB);
    println!("  (CREATE DATABASE {REPLICAS_DB})\n");

    // Replica A: Django's migrate while djinit holds the lock. The runner passes its own
    // environment to the --exec command, so Django finds its PG* variables there.
    const A: &str = "replicas/a-django-under-the-lock";
    let url_a = format!("{}?application_name=replica-a", url(t, REPLICAS_DB));
    let mut cmd = djinit_tests::djinit();
    cmd.current_dir(workspace_root().join(PROJECT))
        .env("DATABASE_URL", &url_a)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .envs(pg_env(t, REPLICAS_DB))
        .args(["lockedmigrate", "--exec", "--"])
        .arg(python())
        .args(["manage.py", "migrate", "--noinput"]);
    let mut line = djinit_tests::redact(&format!(
        "$ DATABASE_URL={url_a} PGDATABASE={REPLICAS_DB} PGHOST=... djinit lockedmigrate \
         --exec -- python manage.py migrate --noinput"
    ));
    t.breaking(A, &mut line, &mut cmd);
    let a = t.start(&line, cmd);
    if !wait_for_lock_holder(t, REPLICAS_DB, Duration::from_secs(60)) {
        println!("    (replica A did not take the lock within 60 s)");
    }

    // Replica B, while A holds the lock.
    let url_b = format!("{}?application_name=replica-b", url(t, REPLICAS_DB));
    t.show(
        "replicas/b-waits-then-applies-nothing",
        &[("DATABASE_URL", url_b)],
        &["lockedmigrate", "--bundle", &bs],
        expect(
            0,
            &[
                "waiting for advisory lock 1000, held by pid",
                "application_name \"replica-a\"",
                "No migrations to apply.",
            ],
        ),
        LIMIT,
    );
    println!("  replica A:");
    let out = a.wait(LIMIT);
    t.report(A, expect(0, &["Applying auth.0001_initial... OK"]), out);
    let once = format!("{MIGRATIONS} rows, {MIGRATIONS} distinct");
    t.verify(
        "replicas/recorded-once",
        "django_migrations",
        &once,
        &recorded(t, REPLICAS_DB),
    );
}

fn python_steps(t: &mut Tour) {
    let b = t.pg.temp_dir().join("notes-bundle");
    let bs = b.display().to_string();
    export(
        t,
        "python/export",
        NOTES_PROJECT,
        &bs,
        expect(0, &["Needs Python", "notes.0002_welcome_note"]),
    );
    t.pg.create_database(NOTES_DB);
    println!("  (CREATE DATABASE {NOTES_DB})\n");
    let env = [("DATABASE_URL", url(t, NOTES_DB))];
    t.show(
        "python/refused-without-python",
        &env,
        &["lockedmigrate", "--bundle", &bs],
        expect(
            65,
            &[
                "notes.0002_welcome_note needs Python",
                "nothing was applied",
            ],
        ),
        LIMIT,
    );
    t.show(
        "python/plan",
        &env,
        &["lockedmigrate", "--bundle", &bs, "--plan"],
        expect(
            0,
            &[
                "notes.0001_initial  [sql]",
                "notes.0002_welcome_note  [python]",
            ],
        ),
        LIMIT,
    );
    const HYBRID: &str = "python/hybrid";
    let py = format!("{} manage.py", python().display());
    let (_, mut cmd) = t.djinit(
        HYBRID,
        &env,
        &["lockedmigrate", "--bundle", &bs, "--python", &py],
    );
    cmd.current_dir(workspace_root().join(NOTES_PROJECT))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .envs(pg_env(t, NOTES_DB));
    let line = djinit_tests::redact(&format!(
        "$ DATABASE_URL={} PGDATABASE={NOTES_DB} PGHOST=... djinit lockedmigrate --bundle {bs} \
         --python \"python manage.py\"",
        url(t, NOTES_DB)
    ));
    t.show_command(
        HYBRID,
        &line,
        cmd,
        expect(
            0,
            &[
                "Applying notes.0001_initial... OK\n",
                "Applying notes.0002_welcome_note... OK (Django)",
                "Applying notes.0003_note_pinned... OK\n",
            ],
        ),
        LIMIT,
    );
    t.verify(
        "python/welcome-once",
        "welcome notes",
        "1",
        &t.pg.psql_in(
            NOTES_DB,
            "SELECT count(*) FROM notes_note WHERE text = 'welcome'",
        ),
    );
}
