//! The container image (`just image`: `FROM scratch`, the static djinit only) run the way the
//! README's manifests run it: read-only root filesystem, every capability dropped,
//! no-new-privileges, user 65532, host network (the throwaway cluster listens on loopback).
//!
//! Exit codes (djinit-cli's table): 0 ready, 75 timed out (nothing listening).

use crate::harness::{free_port, percent_encode, run, ship, Auth, Cluster, Output, PASSWORD};
use std::time::Duration;

/// A container start is well under a second here; generous for a loaded machine.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// `podman run --rm` of the image with the restricted settings, `env` passed in, then `args`.
fn podman_run(env: &[(&str, String)], args: &[&str]) -> Output {
    let image = ship::image();
    let mut cmd = ship::podman();
    cmd.args([
        "run",
        "--rm",
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--user",
        "65532",
        "--network",
        "host",
    ]);
    for (k, v) in env {
        cmd.arg("--env").arg(format!("{k}={v}"));
    }
    cmd.arg(image).args(args);
    run(cmd, RUN_LIMIT)
}

fn inspect(format: &str) -> String {
    let mut cmd = ship::podman();
    cmd.args(["image", "inspect", "--format", format, ship::image()]);
    let out = run(cmd, RUN_LIMIT);
    out.assert_success();
    out.stdout.trim().to_string()
}

#[test]
fn image_prints_the_version_of_the_static_runner() {
    let out = podman_run(&[], &["--version"]);
    out.assert_code(0);
    assert!(
        out.stdout.starts_with(&format!(
            "djinit {} (wasmtime 48.0.8, x86_64-unknown-linux-musl",
            env!("CARGO_PKG_VERSION")
        )),
        "{}",
        out.report()
    );
    for command in [
        "checkmigrations",
        "dns-discover",
        "ensureadmin",
        "lockedmigrate",
        "wait4db",
    ] {
        assert!(
            out.stdout.contains(command),
            "{command} missing\n{}",
            out.report()
        );
    }
}

#[test]
fn image_wait4db_against_a_ready_cluster_exits_0() {
    let pg = Cluster::start(Auth::Scram);
    let out = podman_run(
        &[("DATABASE_URL", pg.url())],
        &["wait4db", "-s", "0", "-t", "30"],
    );
    out.assert_code(0).assert_no_secret(PASSWORD);
}

#[test]
fn image_wait4db_against_a_refused_port_times_out_with_75() {
    let url = format!(
        "postgres://postgres:{}@127.0.0.1:{}/postgres",
        percent_encode(PASSWORD),
        free_port()
    );
    let out = podman_run(
        &[("DATABASE_URL", url)],
        &["wait4db", "-t", "1", "-i", "0.2"],
    );
    out.assert_code(75).assert_no_secret(PASSWORD);
    out.assert_stderr_contains("wait4db");
}

#[test]
fn image_is_scratch_with_only_the_runner_as_a_non_root_entrypoint() {
    assert_eq!(inspect("{{.Config.User}}"), "65532:65532");
    assert_eq!(inspect("{{json .Config.Entrypoint}}"), r#"["/djinit"]"#);
    // One layer: the binary (FROM scratch adds none).
    assert_eq!(inspect("{{len .RootFS.Layers}}"), "1");
    let labels = inspect("{{json .Config.Labels}}");
    for (key, value) in [
        (
            "org.opencontainers.image.source",
            "https://github.com/djinit/djinit",
        ),
        (
            "org.opencontainers.image.version",
            env!("CARGO_PKG_VERSION"),
        ),
        ("org.opencontainers.image.licenses", "Apache-2.0"),
        ("org.opencontainers.image.title", "djinit"),
    ] {
        assert!(
            labels.contains(&format!("\"{key}\":\"{value}\"")),
            "label {key}={value} missing: {labels}"
        );
    }

    // No shell: the only file is /djinit (listed from the image's filesystem, not from a shell
    // inside it, since there is none to run).
    let mut create = ship::podman();
    create.args(["create", ship::image()]);
    let created = run(create, RUN_LIMIT);
    created.assert_success();
    let id = created.stdout.trim().to_string();
    let tar = tempfile::NamedTempFile::new().unwrap();
    let mut export = ship::podman();
    export.args(["export", "-o"]).arg(tar.path()).arg(&id);
    let exported = run(export, RUN_LIMIT);
    let listing = std::process::Command::new("tar")
        .arg("-tf")
        .arg(tar.path())
        .output()
        .expect("tar -t");
    let mut rm = ship::podman();
    rm.args(["rm", "-f", &id]);
    run(rm, RUN_LIMIT).assert_success();
    exported.assert_success();
    let files: Vec<String> = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .map(|l| l.trim_end_matches('/').to_string())
        .filter(|l| !l.is_empty())
        .collect();
    assert!(
        files.iter().any(|f| f == "djinit"),
        "no /djinit in {files:?}"
    );
    assert!(
        !files
            .iter()
            .any(|f| f.ends_with("sh") || f.starts_with("bin")),
        "a shell or bin/ in the image: {files:?}"
    );
    // Running a shell fails: the runtime finds no /bin/sh.
    let mut sh = ship::podman();
    sh.args([
        "run",
        "--rm",
        "--entrypoint",
        "/bin/sh",
        ship::image(),
        "-c",
        "true",
    ]);
    let out = run(sh, RUN_LIMIT);
    assert_ne!(
        out.code,
        Some(0),
        "a shell ran in the image\n{}",
        out.report()
    );
}
