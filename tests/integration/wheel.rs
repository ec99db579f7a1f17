//! The wheel (`just wheel`): installed with pip into a fresh venv, it puts the static djinit on
//! PATH and carries `djinit_django`, whose exporter writes a bundle the wheel's own djinit applies.
//! Django and psycopg come from PyPI (or pip's cache) at the versions `tests/requirements.txt` pins.

use crate::harness::{run, ship, target_dir, workspace_root, Auth, Cluster, Output, PASSWORD};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// pip may download Django and psycopg (~15 MB) on a cold cache.
const INSTALL_LIMIT: Duration = Duration::from_secs(600);
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// `tests/requirements.txt`'s line for `package` (e.g. `Django==5.2.*`).
fn pin(package: &str) -> String {
    let reqs = std::fs::read_to_string(workspace_root().join("tests/requirements.txt")).unwrap();
    reqs.lines()
        .find(|l| {
            l.split(['=', '[', '<', '>'])
                .next()
                .is_some_and(|name| name.eq_ignore_ascii_case(package))
        })
        .unwrap_or_else(|| panic!("{package} is not pinned in tests/requirements.txt"))
        .to_string()
}

/// A fresh venv (`target/wheel-venv`, recreated once per test run) with the wheel installed,
/// `[export]` extra included.
fn venv() -> &'static Path {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        let wheel = ship::wheel();
        let dir = target_dir().join("wheel-venv");
        let _ = std::fs::remove_dir_all(&dir);
        let mut mk = Command::new("python3");
        mk.args(["-m", "venv"]).arg(&dir);
        run(mk, RUN_LIMIT).assert_success();
        let mut pip = Command::new(dir.join("bin/pip"));
        pip.args(["install", "-q", "--disable-pip-version-check"])
            .arg(format!("{}[export]", wheel.display()))
            .arg(pin("Django"))
            .arg(pin("psycopg"));
        run(pip, INSTALL_LIMIT).assert_success();
        dir
    })
}

/// A command from the venv's `bin/`, found through PATH as a user's shell would (venv first).
fn venv_cmd(program: &str) -> Command {
    let bin = venv().join("bin");
    let mut cmd = Command::new(bin.join(program));
    let path = std::env::join_paths(std::iter::once(bin).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();
    cmd.env_clear()
        .env("PATH", path)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    cmd
}

fn djinit_on_path(args: &[&str], env: &[(&str, String)]) -> Output {
    // Resolved through PATH (shutil.which, printed on stderr), proving pip put it there.
    let mut cmd = venv_cmd("python");
    cmd.args(["-c", "import shutil, subprocess, sys; p = shutil.which('djinit'); print(p, file=sys.stderr); sys.exit(subprocess.call([p, *sys.argv[1:]]))"])
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(cmd, RUN_LIMIT)
}

#[test]
fn wheel_puts_the_static_djinit_on_path() {
    let out = djinit_on_path(&["--version"], &[]);
    out.assert_code(0);
    assert!(
        out.stderr
            .trim()
            .starts_with(venv().join("bin/djinit").to_str().unwrap()),
        "djinit on PATH is not the venv's\n{}",
        out.report()
    );
    assert!(
        out.stdout.starts_with(&format!(
            "djinit {} (wasmtime 48.0.8, x86_64-unknown-linux-musl",
            env!("CARGO_PKG_VERSION")
        )),
        "{}",
        out.report()
    );
    // Byte for byte the djinit `just build` made.
    assert_eq!(
        std::fs::read(venv().join("bin/djinit")).unwrap(),
        std::fs::read(djinit_tests::paths::djinit_path()).unwrap(),
        "the installed djinit differs from the built one"
    );
}

#[test]
fn wheel_djinit_wait4db_exits_0_against_a_ready_cluster() {
    let pg = Cluster::start(Auth::Scram);
    let out = djinit_on_path(
        &["wait4db", "-s", "0", "-t", "30"],
        &[("DATABASE_URL", pg.url())],
    );
    out.assert_code(0).assert_no_secret(PASSWORD);
}

#[test]
fn wheel_exporter_writes_a_bundle_the_wheel_djinit_applies() {
    // The fixture project copied away from the repository, so `djinit_django` can only come from
    // the wheel (the fixture's settings add ../../../python to sys.path, absent here).
    let app = tempfile::Builder::new()
        .prefix("djinit-wheel-app-")
        .tempdir()
        .unwrap();
    let mut cp = Command::new("cp");
    cp.arg("-r")
        .arg(workspace_root().join("tests/fixtures/django_project/."))
        .arg(app.path());
    run(cp, RUN_LIMIT).assert_success();

    let mut which = venv_cmd("python");
    which
        .current_dir(app.path())
        .env("DJANGO_SETTINGS_MODULE", "project.settings")
        .args([
            "-c",
            "import django; django.setup(); import djinit_django; print(djinit_django.__file__)",
        ]);
    let out = run(which, RUN_LIMIT);
    out.assert_success();
    assert!(
        Path::new(out.stdout.trim()).starts_with(venv()),
        "djinit_django not loaded from the wheel\n{}",
        out.report()
    );

    // Export with no database reachable (nothing listens on port 1).
    let bundle = app.path().join("migrations-bundle");
    let mut export = venv_cmd("python");
    export
        .current_dir(app.path())
        .env("DJANGO_SETTINGS_MODULE", "project.settings")
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", "1")
        .args(["manage.py", "djinit_export"])
        .arg(&bundle);
    run(export, RUN_LIMIT).assert_success();
    assert!(bundle.join("manifest.json").is_file());

    let pg = Cluster::start(Auth::Scram);
    let url = pg.url();
    let apply = |args: &[&str]| {
        let mut all = vec!["lockedmigrate", "--bundle", bundle.to_str().unwrap()];
        all.extend_from_slice(args);
        djinit_on_path(&all, &[("DATABASE_URL", url.clone())])
    };
    apply(&[]).assert_code(0).assert_no_secret(PASSWORD);
    let applied: usize = pg
        .psql("select count(*) from django_migrations")
        .trim()
        .parse()
        .unwrap();
    assert!(applied >= 20, "only {applied} migrations recorded");
    // Applied once: a second run finds nothing pending (checkmigrations agrees).
    apply(&[]).assert_code(0);
    assert_eq!(
        pg.psql("select count(*) from django_migrations").trim(),
        applied.to_string()
    );
    let check = ["checkmigrations", "--bundle", bundle.to_str().unwrap()];
    djinit_on_path(&check, &[("DATABASE_URL", url)]).assert_code(0);
}

#[test]
fn wheel_declares_the_extras_and_carries_the_django_package() {
    let wheel = ship::wheel();
    let name = wheel.file_name().unwrap().to_str().unwrap();
    assert!(
        name.starts_with(&format!("djinit-{}-py3-none-", env!("CARGO_PKG_VERSION")))
            && name.contains("manylinux")
            && name.contains("musllinux_1_1_x86_64"),
        "{name}"
    );
    let mut list = venv_cmd("python");
    list.args([
        "-c",
        "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); print('\\n'.join(z.namelist())); \
         print(z.read([n for n in z.namelist() if n.endswith('METADATA')][0]).decode())",
    ])
    .arg(wheel);
    let out = run(list, RUN_LIMIT);
    out.assert_success();
    for needle in [
        "djinit_django/management/commands/djinit_export.py",
        "djinit_django/cache.py",
        &format!("djinit-{}.data/scripts/djinit", env!("CARGO_PKG_VERSION")),
        "Requires-Dist: psycopg>=3.1; extra == \"export\"",
        "Provides-Extra: memcached",
        "Project-URL: Source, https://github.com/djinit/djinit",
    ] {
        assert!(
            out.stdout.contains(needle),
            "{needle} missing\n{}",
            out.report()
        );
    }
    assert!(!out.stdout.contains("__pycache__"), "{}", out.report());
}
