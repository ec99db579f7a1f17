//! What ships, built once per process from the static djinit `just build` made: the container
//! image (`just image`) and the wheel (`just wheel`). Tests, `demo` and `bench` get them from
//! here; the recipes themselves live only in the justfile (its private `pack-image`/`pack-wheel`,
//! which package the existing binary without rebuilding it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::paths::{djinit_path, workspace_root};
use crate::process::run;

/// Packaging takes seconds; a first podman run may initialise its storage.
const PACK_LIMIT: Duration = Duration::from_secs(300);

/// The image tag `just image` builds: `localhost/djinit:<workspace version>`.
pub const IMAGE: &str = concat!("localhost/djinit:", env!("CARGO_PKG_VERSION"));

/// `.ci/containers.conf` unless `CONTAINERS_CONF` is set (the justfile's rule): podman here
/// needs runc and no default ulimits, and a user's own containers.conf stays untouched.
pub fn containers_conf() -> PathBuf {
    match std::env::var_os("CONTAINERS_CONF") {
        Some(c) if !c.is_empty() => PathBuf::from(c),
        _ => workspace_root().join(".ci/containers.conf"),
    }
}

/// A `podman` command with the containers.conf above. Panics with a clear message when podman
/// is not installed (`.ci/setup --tests` installs it).
pub fn podman() -> Command {
    if Command::new("podman").arg("--version").output().is_err() {
        panic!("podman is not installed: run `.ci/setup --tests` (Debian: podman runc buildah)");
    }
    let mut cmd = Command::new("podman");
    cmd.env("CONTAINERS_CONF", containers_conf());
    cmd
}

fn just(recipe: &str) -> String {
    djinit_path(); // panics with "run `just build` first" if the runner is missing
    let mut cmd = Command::new("just");
    cmd.current_dir(workspace_root())
        .arg(recipe)
        .env("CONTAINERS_CONF", containers_conf());
    let out = run(cmd, PACK_LIMIT);
    out.assert_success();
    out.stdout
}

/// [`IMAGE`], built (once per process) from the current static djinit.
pub fn image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        just("pack-image");
    });
    IMAGE
}

/// `target/wheels/djinit-<version>-py3-none-<tags>.whl`, built (once per process) from the
/// current static djinit.
pub fn wheel() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let stdout = just("pack-wheel");
        let path = workspace_root().join(stdout.trim().lines().last().unwrap_or_default());
        assert!(
            path.is_file() && path.extension().is_some_and(|e| e == "whl"),
            "`just pack-wheel` did not print a wheel path: {stdout:?}"
        );
        path
    })
}
