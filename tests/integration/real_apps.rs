//! The migration bundle on what users actually run: `tests/fixtures/real_app_project`, Django 5.2's
//! contrib apps plus django-allauth, django-taggit, django-oauth-toolkit, django-celery-beat,
//! django-guardian, django-axes (pinned in `tests/requirements.txt`) and an own app (`inventory`)
//! whose migrations make Django look names up in the catalog. Django is the oracle throughout:
//! `sqlmigrate` for the SQL, `migrate` for the schema (`pg_dump --schema-only`), the
//! `django_migrations` rows, content types, permissions and the default site, `migrate --check`.
//!
//! Plain `lockedmigrate` refuses the Python data migrations of these apps; `--python` hands each
//! to Django under the same lock (`djinit lockedmigrate --python "python manage.py"`).

use crate::harness::{run, Auth, Cluster, Output};
use crate::lockedmigrate::{
    django_check, export, lockedmigrate, manage, python_mode_in, schema, RUN_LIMIT,
};
use djinit_tests::django::sqlmigrate_statements;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

const PROJECT: &str = "real_app_project";

type Key = (String, String);

fn key(app: &str, name: &str) -> Key {
    (app.to_string(), name.to_string())
}

/// What the tests need from `manifest.json`.
struct Manifest(Value);

impl Manifest {
    fn read(bundle: &Path) -> Manifest {
        let text = std::fs::read(bundle.join("manifest.json")).unwrap();
        Manifest(serde_json::from_slice(&text).unwrap())
    }

    fn migrations(&self) -> &[Value] {
        self.0["migrations"].as_array().unwrap()
    }

    /// In `migrate`'s order.
    fn plan(&self) -> Vec<Key> {
        self.migrations()
            .iter()
            .map(|m| key(m["app"].as_str().unwrap(), m["name"].as_str().unwrap()))
            .collect()
    }

    fn get(&self, k: &Key) -> &Value {
        self.migrations()
            .iter()
            .find(|m| m["app"] == k.0.as_str() && m["name"] == k.1.as_str())
            .unwrap()
    }

    /// Migrations whose forward steps hold Python no guard covers, in plan order.
    fn python(&self) -> Vec<Key> {
        self.with_python(false)
    }

    /// Migrations whose forward steps hold Python (`guarded`: also Python a guard covers).
    fn with_python(&self, guarded: bool) -> Vec<Key> {
        self.plan()
            .into_iter()
            .filter(|k| {
                self.get(k)["forward"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s.get("python").is_some() && (guarded || s["guard"].is_null()))
            })
            .collect()
    }
}

/// The statements of `steps`, one per line, as `sqlmigrate_statements` normalises Django's output.
fn bundle_statements(steps: &Value) -> String {
    let sql: Vec<&str> = steps
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s.get("sql"))
        .flat_map(|s| s.as_array().unwrap().iter().map(|x| x.as_str().unwrap()))
        .collect();
    sqlmigrate_statements(&sql.join("\n"))
}

/// A migration exported as one Python step because its SQL would embed a value Django computes
/// when it runs (sqlmigrate prints some value; the bundle leaves it to Django).
fn is_python_as_a_whole(steps: &Value) -> bool {
    steps.as_array().unwrap().iter().any(|s| {
        s.get("python")
            .and_then(Value::as_str)
            .is_some_and(|p| p.contains(" as a whole: "))
    })
}

fn uses_catalog_lookup(steps: &Value) -> bool {
    steps.to_string().contains("DO $djinit$")
}

/// `djinit lockedmigrate --python "PYTHON manage.py"` on `db`: the SQL migrations natively, each
/// Python migration (and each guarded one whose guard no longer holds: `auth_permission` is not
/// empty once Django's post_migrate has run) by Django's `migrate APP NAME` under the same lock.
fn lockedmigrate_python(pg: &Cluster, db: &str, bundle: &Path, args: &[&str]) -> Output {
    run(python_mode_in(PROJECT, pg, db, bundle, args), RUN_LIMIT)
}

/// `manage.py migrate ARGS` of the fixture project on `db`; panics with Django's output on failure.
fn django_migrate(pg: &Cluster, db: &str, args: &[&str]) {
    let mut all = vec!["migrate", "--noinput", "-v", "0"];
    all.extend_from_slice(args);
    run(manage(PROJECT, Some((pg, db)), &all), RUN_LIMIT).assert_success();
}

/// Rows post_migrate receivers write, with ids, and the recorded migrations as a set.
fn post_migrate_rows(pg: &Cluster, db: &str) -> String {
    pg.psql_in(
        db,
        "SELECT 'ct', id, app_label, model FROM django_content_type ORDER BY id; \
         SELECT 'perm', id, name, content_type_id, codename FROM auth_permission ORDER BY id; \
         SELECT 'site', id, domain, name FROM django_site ORDER BY id; \
         SELECT 'site_seq', last_value, is_called FROM django_site_id_seq; \
         SELECT 'mig', app, name FROM django_migrations ORDER BY app, name",
    )
}

/// `pg_dump --schema-only` of both equal; on failure the lines only one of them has.
fn assert_same_schema(pg: &Cluster, ours: &str, django: &str, what: &str) {
    let (a, b) = (schema(pg, ours), schema(pg, django));
    if a != b {
        let (la, lb): (BTreeSet<&str>, BTreeSet<&str>) = (a.lines().collect(), b.lines().collect());
        panic!(
            "{what}: schema differs from Django's\n only lockedmigrate's:\n  {}\n only Django's:\n  {}",
            la.difference(&lb).copied().collect::<Vec<_>>().join("\n  "),
            lb.difference(&la).copied().collect::<Vec<_>>().join("\n  "),
        );
    }
}

fn export_with_hash_seed(seed: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("djinit-bundle-")
        .tempdir()
        .unwrap();
    let mut cmd = manage(
        PROJECT,
        None,
        &["djinit_export", dir.path().to_str().unwrap()],
    );
    cmd.env("PYTHONHASHSEED", seed);
    run(cmd, RUN_LIMIT).assert_success();
    dir
}

#[test]
fn export_is_reproducible_and_every_migration_equals_sqlmigrate() {
    // Twice, a second apart (auth.0005's backward SQL used to embed the export time), by Python
    // processes with different hash seeds (Django writes two index_together indexes of
    // inventory.0001 in set order).
    let first = export_with_hash_seed("1");
    std::thread::sleep(Duration::from_millis(1100));
    let second = export_with_hash_seed("2");
    let bytes = std::fs::read(first.path().join("manifest.json")).unwrap();
    assert!(
        bytes == std::fs::read(second.path().join("manifest.json")).unwrap(),
        "two exports of the same project differ"
    );
    let manifest = Manifest::read(first.path());
    assert!(
        manifest.plan().len() >= 95,
        "{} migrations",
        manifest.plan().len()
    );
    assert_eq!(manifest.0["version"], 2);

    // Django's sqlmigrate for every migration, against an empty database.
    let pg = Cluster::start(Auth::Scram);
    pg.create_database("oracle");
    let out = run(
        manage(PROJECT, Some((&pg, "oracle")), &["sqlmigrate_all"]),
        Duration::from_secs(600),
    );
    out.assert_success();
    let oracle: BTreeMap<String, Value> = serde_json::from_str(&out.stdout).unwrap();

    let mut compared = 0;
    let mut with_lookups = BTreeSet::new();
    let mut whole = BTreeSet::new();
    for m in manifest.migrations() {
        let (app, name) = (m["app"].as_str().unwrap(), m["name"].as_str().unwrap());
        for direction in ["forward", "backward"] {
            let label = format!("{app}.{name} {direction}");
            let django = &oracle[&format!("{app} {name} {direction}")];
            let steps = &m[direction];
            if steps.is_null() {
                let e = django["error"].as_str().unwrap_or_default();
                assert!(e.starts_with("IrreversibleError"), "{label}: {django}");
                continue;
            }
            if is_python_as_a_whole(steps) {
                whole.insert(label);
                continue;
            }
            if uses_catalog_lookup(steps) {
                // Django's SQL here depends on the database it reads; the DO block's effect is
                // checked against `migrate` by the schema comparisons below.
                with_lookups.insert(label);
                continue;
            }
            let expected = match django.get("sql") {
                Some(sql) => sqlmigrate_statements(sql.as_str().unwrap()),
                None => panic!("{label}: sqlmigrate failed where the bundle has SQL: {django}"),
            };
            assert_eq!(bundle_statements(steps), expected, "{label}");
            compared += 1;
        }
    }
    assert!(compared > 150, "only {compared} directions compared");
    // Where Django's schema editor reads the catalog: compiled, not handed to Python. Forwards:
    // the five (allauth account.0004 and socialaccount.0005, taggit.0006, oauth2-toolkit
    // 0012/0015) and the own app's; backwards mostly AlterUniqueTogether/AlterField undone.
    let expected: BTreeSet<String> = [
        "account.0003_alter_emailaddress_create_unique_verified_email backward",
        "account.0004_alter_emailaddress_drop_unique_email forward",
        "account.0007_emailaddress_idx_email backward",
        "axes.0002_auto_20151217_2044 backward",
        "axes.0007_alter_accessattempt_unique_together backward",
        "contenttypes.0001_initial backward",
        "django_celery_beat.0002_auto_20161118_0346 backward",
        "django_celery_beat.0003_auto_20161209_0049 backward",
        "django_celery_beat.0011_auto_20190508_0153 backward",
        "guardian.0001_initial backward",
        "inventory.0001_initial forward",
        "inventory.0002_alter_fields backward",
        "inventory.0002_alter_fields forward",
        "inventory.0003_remove_and_rename backward",
        "inventory.0003_remove_and_rename forward",
        "oauth2_provider.0001_initial backward",
        "oauth2_provider.0004_auto_20200902_2022 backward",
        "oauth2_provider.0012_add_token_checksum backward",
        "oauth2_provider.0012_add_token_checksum forward",
        "oauth2_provider.0015_refreshtoken_token_checksum backward",
        "oauth2_provider.0015_refreshtoken_token_checksum forward",
        "sites.0002_alter_domain_unique backward",
        "socialaccount.0001_initial backward",
        "socialaccount.0005_socialtoken_nullable_app backward",
        "socialaccount.0005_socialtoken_nullable_app forward",
        "taggit.0006_rename_taggeditem_content_type_object_id_taggit_tagg_content_8fc721_idx forward",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(with_lookups, expected);
    assert_eq!(
        whole.into_iter().collect::<Vec<_>>(),
        ["inventory.0004_item_tracking forward"]
    );
    // Only genuine RunPython (and that uuid4 default) is left to Python.
    let python: Vec<String> = manifest
        .python()
        .iter()
        .map(|k| format!("{}.{}", k.0, k.1))
        .collect();
    assert_eq!(
        python,
        [
            "account.0006_emailaddress_lower",
            "account.0008_emailaddress_unique_primary_email_fixup",
            "axes.0007_alter_accessattempt_unique_together",
            "inventory.0004_item_tracking",
            "oauth2_provider.0006_alter_application_client_secret",
            "oauth2_provider.0012_add_token_checksum",
            "oauth2_provider.0015_refreshtoken_token_checksum",
            "oauth2_provider.0019_application_registration_source",
        ]
    );
    for k in manifest.python() {
        for step in manifest.get(&k)["forward"].as_array().unwrap() {
            if let Some(callable) = step.get("callable").and_then(Value::as_str) {
                assert!(!callable.is_empty());
            }
            assert_ne!(
                step.get("needs_database"),
                Some(&Value::Bool(true)),
                "{k:?}"
            );
        }
    }
}

#[test]
fn real_apps_apply_like_django_and_targets_give_djangos_schema() {
    let pg = Cluster::builder()
        .auth(Auth::Scram)
        .conf("max_connections = 50")
        .start();
    let bundle = export(PROJECT);
    let manifest = Manifest::read(bundle.path());

    // Plain lockedmigrate refuses the plan up front, naming the first Python migration.
    pg.create_database("refused");
    let out = lockedmigrate(&pg, "refused", bundle.path(), &[]);
    out.assert_code(65)
        .assert_stderr_contains("account.0006_emailaddress_lower")
        .assert_stderr_contains("--python \"python manage.py\"")
        .assert_stderr_contains("--exec");
    assert_eq!(
        pg.psql_in(
            "refused",
            "SELECT count(*) FROM pg_class WHERE relname = 'django_migrations'"
        ),
        "0"
    );

    // Up to just before the first Python migration, natively.
    compare_targets(
        &pg,
        bundle.path(),
        "before_python",
        None,
        &[("account", "0005")],
    );

    // Everything: SQL natively, the Python migrations by Django under the lock (--python).
    pg.create_database("full");
    let out = lockedmigrate_python(&pg, "full", bundle.path(), &[]);
    out.assert_success();
    for k in manifest.python() {
        let line = format!("Applying {}.{}... OK (Django)\n", k.0, k.1);
        assert!(out.stdout.contains(&line), "{line:?}\n{}", out.report());
    }
    // Django ran steps, so it also ran the receivers the bundle does not have, at the end, as
    // its `migrate` does: django-guardian's anonymous user exists, and nothing is listed.
    assert!(
        !out.stderr.contains("post_migrate receiver"),
        "{}",
        out.report()
    );
    // Only what needs Python went to Django: every other migration was applied natively.
    let by_django = out.stdout.matches("... OK (Django)").count();
    assert!(
        by_django < manifest.with_python(true).len() + 1 && by_django >= manifest.python().len(),
        "{}",
        out.report()
    );
    let native = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("  Applying ") && l.ends_with("... OK"))
        .count();
    assert_eq!(
        native + by_django,
        manifest.plan().len(),
        "{}",
        out.report()
    );
    pg.create_database("full_django");
    django_migrate(&pg, "full_django", &[]);
    assert_same_schema(&pg, "full", "full_django", "full apply");
    let recorded = "SELECT app, name FROM django_migrations ORDER BY app, name";
    assert_eq!(
        pg.psql_in("full", recorded),
        pg.psql_in("full_django", recorded)
    );
    assert_eq!(django_check(&pg, PROJECT, "full"), Some(0));
    let users = "SELECT username FROM auth_user ORDER BY 1";
    assert_eq!(pg.psql_in("full", users), pg.psql_in("full_django", users));
    assert_eq!(pg.psql_in("full", users), "AnonymousUser");

    // Django's steps created content types and permissions for the models migrated so far, in
    // that order; the whole set is Django's.
    let sets = "SELECT app_label, model FROM django_content_type ORDER BY 1, 2; \
                SELECT codename, name FROM auth_permission ORDER BY 1, 2";
    assert_eq!(pg.psql_in("full", sets), pg.psql_in("full_django", sets));
    // The post_migrate rows, as a `migrate` of the whole project creates them (ids included):
    // start them over and let lockedmigrate add them (nothing is pending, so that is all it does).
    pg.psql_in(
        "full",
        "TRUNCATE django_content_type, auth_permission, django_site RESTART IDENTITY CASCADE",
    );
    let out = lockedmigrate(&pg, "full", bundle.path(), &[]);
    out.assert_success();
    assert_eq!(
        post_migrate_rows(&pg, "full"),
        post_migrate_rows(&pg, "full_django")
    );
    // django-guardian's receiver (connected in guardian.management) is listed, one line, not run.
    out.assert_stderr_contains(
        "post_migrate receiver guardian.management.create_anonymous_user did not run",
    );
    assert_eq!(
        out.stderr.matches("post_migrate receiver").count(),
        1,
        "{}",
        out.report()
    );

    // Targets backwards from the full database (templates of it, ours and Django's).
    let celery = "django_celery_beat";
    let cases: &[(&str, &[(&str, &str)])] = &[
        ("back_first", &[(celery, "0006_auto_20180210_1226")]),
        ("back_second", &[(celery, "0006_auto_20180322_0932")]),
        (
            "back_celery",
            &[
                (celery, "0005"),
                (celery, "0006_auto_20180322_0932"),
                (celery, "zero"),
            ],
        ),
        ("back_taggit", &[("taggit", "0005"), ("taggit", "0006")]),
        (
            "back_socialaccount",
            &[("socialaccount", "0004"), ("socialaccount", "0006")],
        ),
        ("back_account", &[("account", "0003")]),
        ("back_oauth2", &[("oauth2_provider", "0020")]),
    ];
    for (name, steps) in cases {
        compare_targets(&pg, bundle.path(), name, Some("full"), steps);
    }
}

/// Migrate a pair of databases, ours (lockedmigrate) and Django's (`migrate`), through `steps`
/// (`app target`), fresh or copied from `template` / `<template>_django`; after each step the
/// schema and the recorded migrations must be the same.
fn compare_targets(
    pg: &Cluster,
    bundle: &Path,
    name: &str,
    template: Option<&str>,
    steps: &[(&str, &str)],
) {
    let (ours, django) = (format!("{name}_ours"), format!("{name}_django"));
    match template {
        Some(t) => {
            pg.psql(&format!("CREATE DATABASE {ours} TEMPLATE {t}"));
            pg.psql(&format!("CREATE DATABASE {django} TEMPLATE {t}_django"));
        }
        None => {
            pg.create_database(&ours);
            pg.create_database(&django);
        }
    }
    for &(app, target) in steps {
        lockedmigrate(pg, &ours, bundle, &[app, target]).assert_success();
        django_migrate(pg, &django, &[app, target]);
        assert_same_schema(
            pg,
            &ours,
            &django,
            &format!("{name}: after migrating {app} to {target}"),
        );
        let recorded = "SELECT app, name FROM django_migrations ORDER BY app, name";
        assert_eq!(
            pg.psql_in(&ours, recorded),
            pg.psql_in(&django, recorded),
            "{name}: django_migrations after migrating {app} to {target}"
        );
    }
}

#[test]
fn targets_from_a_fresh_database_give_djangos_schema() {
    let pg = Cluster::start(Auth::Scram);
    let bundle = export(PROJECT);
    let celery = "django_celery_beat";
    let (first, second) = ("0006_auto_20180210_1226", "0006_auto_20180322_0932");
    // Merged siblings altering the same columns, in both orders: the second one applied must do
    // what Django does with the first one applied (nothing to those columns).
    compare_targets(
        &pg,
        bundle.path(),
        "siblings",
        None,
        &[(celery, first), (celery, second)],
    );
    // The case the issue found: the first sibling alone widens the columns as Django does (the
    // full-plan SQL left varchar(64)).
    let width = "SELECT character_maximum_length FROM information_schema.columns \
                 WHERE table_name = 'django_celery_beat_crontabschedule' AND column_name = 'minute'";
    compare_targets(
        &pg,
        bundle.path(),
        "reversed",
        None,
        &[(celery, second), (celery, first)],
    );
    pg.create_database("first_only");
    lockedmigrate(&pg, "first_only", bundle.path(), &[celery, first]).assert_success();
    assert_eq!(pg.psql_in("first_only", width), "240");
    // Every catalog lookup of the own app, forwards and backwards.
    compare_targets(
        &pg,
        bundle.path(),
        "inventory",
        None,
        &[
            ("inventory", "0002"),
            ("inventory", "0003"),
            ("inventory", "0001"),
            ("inventory", "zero"),
        ],
    );
    a_catalog_lookup_that_finds_nothing_stops_where_django_does(&pg, bundle.path());
}

/// A catalog lookup that finds nothing stops where Django stops, with Django's message.
fn a_catalog_lookup_that_finds_nothing_stops_where_django_does(pg: &Cluster, bundle: &Path) {
    let break_it =
        "ALTER TABLE inventory_item DROP CONSTRAINT inventory_item_supplier_id_sku_258fab27_uniq";
    pg.create_database("ours");
    lockedmigrate(pg, "ours", bundle, &["inventory", "0002"]).assert_success();
    pg.psql_in("ours", break_it);
    let before = schema(pg, "ours");
    let out = lockedmigrate(pg, "ours", bundle, &["inventory", "0003"]);
    out.assert_code(65).assert_stderr_contains(
        "Found wrong number (0) of constraints for inventory_item(supplier_id, sku)",
    );
    // Atomic: nothing of 0003 is left behind.
    assert_eq!(schema(pg, "ours"), before);
    assert_eq!(
        pg.psql_in(
            "ours",
            "SELECT count(*) FROM django_migrations WHERE app = 'inventory' AND name LIKE '0003%'"
        ),
        "0"
    );
    // Django, on the same damage, raises ValueError with the same text.
    pg.create_database("django");
    django_migrate(pg, "django", &["inventory", "0002"]);
    pg.psql_in("django", break_it);
    let out = run(
        manage(
            PROJECT,
            Some((pg, "django")),
            &["migrate", "inventory", "0003"],
        ),
        RUN_LIMIT,
    );
    assert_ne!(out.code, Some(0), "{}", out.report());
    out.assert_stderr_contains(
        "ValueError: Found wrong number (0) of constraints for inventory_item(supplier_id, sku)",
    );
}
