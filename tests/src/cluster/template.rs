//! The cached, initdb'd data directory every cluster starts as a copy of.
//!
//! `initdb` takes ~1 s; copying its result takes ~50 ms. The template lives in `tests/.cache`
//! (git-ignored) under a name derived from the server version, the superuser password and the
//! template layout, so a change to any of them makes a fresh one. Concurrent builders (threads or
//! processes) each build into a private staging directory and rename it into place; the first
//! rename wins, the others use it.

use super::user::{chown_to_server_user, server_user, ServerUser};
use crate::paths::{pg_bindir, workspace_root};
use crate::process::run;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

/// Bump when the template's contents change (initdb flags, ...).
const LAYOUT: &str = "v2: initdb -U postgres --pwfile -A trust --locale=C -E UTF8 --wal-segsize=1";

/// The template data directory (built on first use).
pub fn template() -> &'static Path {
    static TEMPLATE: OnceLock<PathBuf> = OnceLock::new();
    TEMPLATE.get_or_init(build_or_reuse)
}

fn build_or_reuse() -> PathBuf {
    let bindir = pg_bindir();
    let version = run(
        Command::new(bindir.join("postgres")).arg("--version"),
        Duration::from_secs(30),
    );
    version.assert_code(0);
    let key = fnv1a(&[version.stdout.trim(), crate::PASSWORD, LAYOUT].join("\n"));
    let cache = workspace_root().join("tests/.cache");
    let done = cache.join(format!("pgdata-{key:016x}"));
    if done.join("PG_VERSION").is_file() {
        return done;
    }
    std::fs::create_dir_all(&cache).expect("create tests/.cache");
    let staging = tempfile::Builder::new()
        .prefix("pgdata-staging-")
        .tempdir_in(&cache)
        .expect("staging dir in tests/.cache");
    let user = server_user();
    chown_to_server_user(staging.path(), user);
    let pwfile = staging.path().join("pwfile");
    std::fs::write(&pwfile, crate::PASSWORD).unwrap();
    chown_to_server_user(&pwfile, user);
    let data = staging.path().join("data");
    let mut initdb = Command::new(bindir.join("initdb"));
    initdb
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LC_ALL", "C")
        .arg("-D")
        .arg(&data)
        .args(["-U", "postgres", "-A", "trust", "--locale=C", "-E", "UTF8"])
        .args(["--no-sync", "--no-instructions", "--wal-segsize=1"])
        .arg(format!("--pwfile={}", pwfile.display()));
    as_server_user(&mut initdb, user);
    let out = run(&mut initdb, Duration::from_secs(120));
    if out.code != Some(0) {
        panic!("initdb failed\n{}", out.report());
    }
    match std::fs::rename(&data, &done) {
        Ok(()) => {}
        Err(_) if done.join("PG_VERSION").is_file() => {} // another builder won the race
        Err(e) => panic!("cannot move the template into {}: {e}", done.display()),
    }
    done
}

/// Makes `cmd` run as the server's user (only when we are root: initdb/postgres refuse root).
pub(crate) fn as_server_user(cmd: &mut Command, user: Option<ServerUser>) {
    use std::os::unix::process::CommandExt;
    if let Some(u) = user {
        cmd.uid(u.uid).gid(u.gid);
    }
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}
