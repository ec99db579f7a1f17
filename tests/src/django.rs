//! A minimal Django project in a temp dir, for the Python side of tests and benchmarks (Django is
//! the compatibility oracle; django-kubernetes / django-k8s are the reference commands).
//!
//! Its settings read `DATABASE_URL` for the `default` alias and `DATABASE_URL_<ALIAS>` for
//! others (alias lower-cased), like djinit does, so the same environment drives both sides.

use crate::paths::{python, workspace_root};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The project: `manage.py` plus package `djinit_testproj` (settings in `settings.py`).
pub struct DjangoProject {
    dir: tempfile::TempDir,
}

/// `djinit_testproj/settings.py` before the `INSTALLED_APPS` line.
const SETTINGS: &str = r#"import os
from urllib.parse import urlsplit, unquote, parse_qsl


def _db(url):
    u = urlsplit(url)
    options = dict(parse_qsl(u.query))
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(u.path.lstrip("/")) or "postgres",
        "USER": unquote(u.username or ""),
        "PASSWORD": unquote(u.password or ""),
        "HOST": u.hostname or "",
        "PORT": str(u.port or ""),
        "OPTIONS": options,
    }


DATABASES = {}
if os.environ.get("DATABASE_URL"):
    DATABASES["default"] = _db(os.environ["DATABASE_URL"])
for _k, _v in os.environ.items():
    if _k.startswith("DATABASE_URL_") and _v:
        DATABASES[_k[len("DATABASE_URL_"):].lower()] = _db(_v)

SECRET_KEY = "djinit-tests-not-secret"
DEBUG = False
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ROOT_URLCONF = "djinit_testproj.urls"
"#;

const MANAGE: &str = r#"#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "djinit_testproj.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
"#;

impl DjangoProject {
    /// A project with `INSTALLED_APPS = contenttypes, auth, <apps...>` (e.g. `"djk8s"` for
    /// django-kubernetes' commands, `"django_k8s"` for django-k8s').
    pub fn create(apps: &[&str]) -> DjangoProject {
        let dir = tempfile::Builder::new()
            .prefix("djinit-django-")
            .tempdir()
            .expect("temp dir for a Django project");
        let pkg = dir.path().join("djinit_testproj");
        std::fs::create_dir(&pkg).unwrap();
        std::fs::write(pkg.join("__init__.py"), "").unwrap();
        std::fs::write(pkg.join("urls.py"), "urlpatterns = []\n").unwrap();
        let mut installed = vec!["django.contrib.contenttypes", "django.contrib.auth"];
        installed.extend_from_slice(apps);
        let list: Vec<String> = installed.iter().map(|a| format!("    {a:?},\n")).collect();
        let settings = format!("{SETTINGS}\nINSTALLED_APPS = [\n{}]\n", list.concat());
        std::fs::write(pkg.join("settings.py"), settings).unwrap();
        std::fs::write(dir.path().join("manage.py"), MANAGE).unwrap();
        DjangoProject { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Appends Python source to `settings.py` (e.g. `CACHES = {...}`).
    pub fn add_settings(&self, python_source: &str) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.dir.path().join("djinit_testproj/settings.py"))
            .unwrap();
        writeln!(f, "\n{python_source}").unwrap();
    }

    /// `python manage.py <args>` in the project dir, environment empty except `PATH`
    /// (add `DATABASE_URL` yourself). Run it with [`crate::run`].
    pub fn manage(&self, args: &[&str]) -> Command {
        manage_py(self.dir.path(), args)
    }
}

/// A migration bundle of `contenttypes` + `auth` only (every migration atomic, with post_migrate
/// rows), exported by `djinit_django` from this repository with no database reachable; the
/// project is returned too (it must outlive nothing, but keeps the temp dir for inspection).
/// Used where a bundle must run entirely through PgBouncer's transaction pooling.
pub fn atomic_bundle() -> (DjangoProject, tempfile::TempDir) {
    let proj = DjangoProject::create(&["djinit_django"]);
    proj.add_settings(&format!(
        "import sys\nsys.path.insert(0, {:?})",
        crate::paths::workspace_root()
            .join("python")
            .display()
            .to_string()
    ));
    let dir = tempfile::Builder::new()
        .prefix("djinit-bundle-")
        .tempdir()
        .unwrap();
    let mut cmd = proj.manage(&["djinit_export", dir.path().to_str().unwrap()]);
    // Nothing listens there: the exporter needs the backend's settings, not a connection.
    cmd.env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/nothing");
    let out = crate::process::run(cmd, std::time::Duration::from_secs(120));
    if out.code != Some(0) {
        panic!(
            "exporting the contenttypes+auth bundle failed\n{}",
            out.report()
        );
    }
    (proj, dir)
}

/// `tests/fixtures/<name>`, a fixture Django project (`manage.py` at its top; its settings read
/// the libpq variables, e.g. `real_app_project`).
pub fn fixture(name: &str) -> PathBuf {
    workspace_root().join("tests/fixtures").join(name)
}

/// `python manage.py <args>` in fixture project `name`, environment empty except `PATH` and
/// `PYTHONDONTWRITEBYTECODE`: add the database's libpq variables (e.g. `Cluster::pg_env`).
pub fn fixture_manage(name: &str, args: &[&str]) -> Command {
    manage_py(&fixture(name), args)
}

/// `python manage.py <args>` (the venv's Python) in `dir`, environment empty except `PATH` and
/// `PYTHONDONTWRITEBYTECODE`.
pub fn manage_py(dir: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(python());
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg("manage.py")
        .args(args);
    cmd
}

/// Fixture project `name`'s migration bundle, exported into a new temp dir with no database
/// reachable (the exporter needs none); panics with the exporter's output on failure.
pub fn export_fixture(name: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("djinit-bundle-")
        .tempdir()
        .unwrap();
    let mut cmd = fixture_manage(name, &["djinit_export", dir.path().to_str().unwrap()]);
    // Nothing listens here: an exporter that tried to connect would fail.
    cmd.env("PGHOST", "127.0.0.1").env("PGPORT", "1");
    let out = crate::process::run(cmd, std::time::Duration::from_secs(300));
    if out.code != Some(0) || !dir.path().join("manifest.json").is_file() {
        panic!("exporting fixture {name}'s bundle failed\n{}", out.report());
    }
    dir
}

/// The statements of `sqlmigrate` output (or of SQL text), for comparing it with SQL from
/// elsewhere: comment lines (`--` operation headers, `-- (no-op)`, `-- THIS OPERATION CANNOT BE
/// WRITTEN AS SQL`) and the `BEGIN;`/`COMMIT;` of an atomic migration go; a time literal Django
/// computed from the clock (`'2026-01-02 03:04:05.678901+00:00'::timestamptz`) becomes `now()`,
/// which is what the exporter writes for it.
pub fn sqlmigrate_statements(text: &str) -> String {
    let mut lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty() && !l.starts_with("--"))
        .collect();
    if lines.first() == Some(&"BEGIN;") && lines.last() == Some(&"COMMIT;") {
        lines.remove(0);
        lines.pop();
    }
    lines
        .iter()
        .map(|l| clock_literals_to_now(l))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `'YYYY-MM-DD HH:MM:SS[.ffffff]+00:00'::timestamptz` -> `now()`.
fn clock_literals_to_now(line: &str) -> String {
    const CAST: &str = "'::timestamptz";
    let mut out = String::new();
    let mut rest = line;
    while let Some(end) = rest.find(CAST) {
        let start = rest[..end].rfind('\'');
        let literal = start.map(|s| &rest[s + 1..end]);
        let looks_like_time = literal.is_some_and(|l| {
            l.len() >= 19 && l.chars().all(|c| c.is_ascii_digit() || "-: .+".contains(c))
        });
        if looks_like_time {
            let s = start.unwrap();
            out.push_str(&rest[..s]);
            out.push_str("now()");
        } else {
            out.push_str(&rest[..end + CAST.len()]);
        }
        rest = &rest[end + CAST.len()..];
    }
    out.push_str(rest);
    out
}
