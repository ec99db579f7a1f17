//! Where the built artifacts are. `just build` puts them there; nothing here builds anything.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `<root>/target`, or `$DJINIT_TARGET_DIR` when set (to test a build from another target dir).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("DJINIT_TARGET_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => workspace_root().join("target"),
    }
}

fn built(path: PathBuf, what: &str) -> PathBuf {
    if !path.is_file() {
        panic!(
            "{what} {} is missing: run `just build` first",
            path.display()
        );
    }
    path
}

/// The triple of the djinit that ships (static, musl): `just build` builds it with the `dist`
/// profile.
pub const DIST_TARGET: &str = "x86_64-unknown-linux-musl";

/// Path of the djinit `just build` makes, the one tests, demo and bench run:
/// `target/x86_64-unknown-linux-musl/dist/djinit` (static).
pub fn djinit_path() -> PathBuf {
    built(
        target_dir().join(DIST_TARGET).join("dist/djinit"),
        "the runner",
    )
}

/// A `Command` for [`djinit_path`] with an empty environment except `PATH`:
/// tests add exactly the variables they mean (`DATABASE_URL`, ...).
pub fn djinit() -> Command {
    let mut cmd = Command::new(djinit_path());
    cmd.env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd
}

/// `target/components/<name>.wasm`.
pub fn component(name: &str) -> PathBuf {
    built(
        target_dir().join("components").join(format!("{name}.wasm")),
        "the component",
    )
}

/// `target/precompiled/<name>.cwasm`.
pub fn precompiled(name: &str) -> PathBuf {
    built(
        target_dir()
            .join("precompiled")
            .join(format!("{name}.cwasm")),
        "the precompiled component",
    )
}

/// The venv's Python (`/work/main/.venv/bin/python`), with Django and the reference commands.
pub fn python() -> PathBuf {
    let p = workspace_root().join(".venv/bin/python");
    if !p.exists() {
        panic!("{} is missing: run `just venv`", p.display());
    }
    p
}

/// The directory holding PostgreSQL's server binaries (`initdb`, `postgres`, `pg_ctl`):
/// the one on `PATH` if `initdb` is there, else the newest `/usr/lib/postgresql/*/bin`.
pub fn pg_bindir() -> PathBuf {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let initdb = dir.join("initdb");
            if initdb.is_file() {
                // Follow symlinks (e.g. /usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb)
                // so `postgres` is found next to it.
                let real = std::fs::canonicalize(&initdb).unwrap_or(initdb);
                let bindir = real.parent().unwrap().to_path_buf();
                if bindir.join("postgres").is_file() {
                    return bindir;
                }
            }
        }
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").is_file().then_some((v, bin))
        })
        .collect();
    found.sort();
    match found.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL server binaries not found (initdb on PATH or /usr/lib/postgresql/*/bin)"
        ),
    }
}
