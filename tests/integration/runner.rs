//! The runner (`djinit`) itself: least privilege (network, environment), limits (memory,
//! wall clock), stopping on SIGTERM/SIGINT, its own command line, and `djinit run FILE`.
//!
//! The embedded and precompiled `wait4db` serves as the guest: it connects where its
//! configuration says, so what the runner grants is observable from its exit code and message.

use crate::harness::{
    component, djinit, free_port, percent_encode, precompiled, run, Auth, Cluster, DjangoProject,
    Output, Pki, ServerCert, PASSWORD,
};
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Every run is killed after this, so a hanging runner fails its test instead of hanging it.
const RUN_LIMIT: Duration = Duration::from_secs(60);

fn djinit_with(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut cmd = djinit();
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(cmd, RUN_LIMIT)
}

/// `postgres://postgres:<PASSWORD>@127.0.0.1:<port>/postgres`.
fn url_on(port: u16) -> String {
    format!(
        "postgres://postgres:{}@127.0.0.1:{port}/postgres",
        percent_encode(PASSWORD)
    )
}

fn cwasm() -> String {
    precompiled("wait4db").display().to_string()
}

#[test]
fn network_is_granted_only_to_the_database_or_by_allow_net() {
    let pg = Cluster::start(Auth::Scram);
    let url = pg.url();
    let env_url = format!("DATABASE_URL={url}");

    // `run FILE` grants no network: the connect is refused by the runner, not the server.
    let out = djinit_with(
        &[],
        &["run", "--env", &env_url, &cwasm(), "-s", "0", "-t", "10"],
    );
    out.assert_code(77)
        .assert_stderr_contains("permission denied")
        .assert_no_secret(PASSWORD);

    // Granted explicitly: it connects.
    let allow = format!("127.0.0.1:{}", pg.port());
    let out = djinit_with(
        &[],
        &[
            "run",
            "--allow-net",
            &allow,
            "--env",
            &env_url,
            &cwasm(),
            "-s",
            "0",
            "-t",
            "10",
        ],
    );
    out.assert_success().assert_no_secret(PASSWORD);

    // A grant for another port of the same host does not cover the database.
    let other = format!("127.0.0.1:{}", free_port());
    let out = djinit_with(
        &[],
        &[
            "run",
            "--allow-net",
            &other,
            "--env",
            &env_url,
            &cwasm(),
            "-s",
            "0",
            "-t",
            "10",
        ],
    );
    out.assert_code(77)
        .assert_stderr_contains("permission denied");

    // The embedded command is granted its database automatically (DATABASE_URL from the host).
    djinit_with(
        &[("DATABASE_URL", &url)],
        &["wait4db", "-s", "0", "-t", "10"],
    )
    .assert_success()
    .assert_no_secret(PASSWORD);

    // ... also by host name, and for another alias given with -d in any of its forms.
    let by_name = url.replace("127.0.0.1", "localhost");
    djinit_with(
        &[("DATABASE_URL", &by_name)],
        &["wait4db", "-s", "0", "-t", "10"],
    )
    .assert_success();
    for args in [
        &["wait4db", "-d", "replica", "-s", "0", "-t", "10"][..],
        &["wait4db", "--database=replica", "-s", "0", "-t", "10"][..],
        &["wait4db", "-dreplica", "-s", "0", "-t", "10"][..],
    ] {
        djinit_with(&[("DATABASE_URL_REPLICA", &url)], args).assert_success();
    }
}

#[test]
fn the_environment_holds_only_what_is_granted() {
    let pg = Cluster::start(Auth::Scram);
    let url = pg.url();
    let allow = format!("127.0.0.1:{}", pg.port());
    // `run FILE` passes no host variable: wait4db finds no DATABASE_URL although the host has one.
    let out = djinit_with(
        &[("DATABASE_URL", &url)],
        &["run", "--allow-net", &allow, &cwasm(), "-s", "0", "-t", "5"],
    );
    out.assert_code(78)
        .assert_stderr_contains("no database configured")
        .assert_no_secret(PASSWORD);
    // `--env NAME` passes the host's value of exactly that variable.
    djinit_with(
        &[("DATABASE_URL", &url)],
        &[
            "run",
            "--allow-net",
            &allow,
            "--env",
            "DATABASE_URL",
            &cwasm(),
            "-s",
            "0",
            "-t",
            "5",
        ],
    )
    .assert_success();
    // An embedded command gets its own variables only: with `-d replica` the default alias'
    // DATABASE_URL is not passed (nor granted a connection), so the replica alias is unconfigured.
    let out = djinit_with(
        &[("DATABASE_URL", &url)],
        &["wait4db", "-d", "replica", "-s", "0", "-t", "5"],
    );
    out.assert_code(78)
        .assert_stderr_contains("DATABASE_URL_REPLICA");
}

#[test]
fn sigterm_and_sigint_stop_a_waiting_component_promptly() {
    for (signal, code, name) in [
        (libc::SIGTERM, 143, "SIGTERM"),
        (libc::SIGINT, 130, "SIGINT"),
    ] {
        let mut cmd = djinit();
        cmd.args(["wait4db", "-t", "60", "-i", "0.2"])
            .env("DATABASE_URL", url_on(free_port()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start djinit");
        // Let it get into its retry loop (blocked in connect/sleep host calls).
        std::thread::sleep(Duration::from_millis(1500));
        assert!(
            child.try_wait().unwrap().is_none(),
            "djinit ended before the signal"
        );
        // SAFETY: signals our own child.
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        let sent = Instant::now();
        let status = wait_at_most(&mut child, Duration::from_secs(20));
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(status.code(), Some(code), "{name}: stderr: {stderr}");
        assert!(
            sent.elapsed() < Duration::from_secs(20),
            "{name}: took {:?}",
            sent.elapsed()
        );
        assert!(stderr.contains(&format!("stopped by {name}")), "{stderr}");
    }
}

/// Wait for `child`, killing it after `limit` (then the test fails on its status).
fn wait_at_most(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            return child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn limits_stop_the_component_with_exit_71() {
    let url = url_on(free_port());
    // 1 MiB is less than any Rust component's initial memory.
    let out = djinit_with(
        &[("DATABASE_URL", &url)],
        &["--memory", "1", "wait4db", "-t", "5"],
    );
    out.assert_code(71)
        .assert_stderr_contains("memory limit of 1 MiB exceeded");
    // The wall-clock limit stops a component that would wait far longer.
    let out = djinit_with(
        &[("DATABASE_URL", &url)],
        &["--timeout", "1", "wait4db", "-t", "60"],
    );
    out.assert_code(71)
        .assert_stderr_contains("wall-clock limit");
    assert!(
        out.elapsed < Duration::from_secs(30),
        "took {:?}",
        out.elapsed
    );
}

#[test]
fn command_line_help_version_and_usage_errors() {
    let out = djinit_with(&[], &["--help"]);
    out.assert_success();
    assert!(out.stdout.contains("wait4db"), "{}", out.stdout);
    assert!(out.stdout.contains("--allow-net"), "{}", out.stdout);
    assert!(out.stdout.contains("Exit codes"), "{}", out.stdout);
    let out = djinit_with(&[], &["--version"]);
    out.assert_success();
    assert!(out.stdout.starts_with("djinit "), "{}", out.stdout);
    assert!(out.stdout.contains("wait4db"), "{}", out.stdout);

    djinit_with(&[], &["--bogus", "wait4db"])
        .assert_code(64)
        .assert_stderr_contains("--bogus");
    djinit_with(&[], &["--memory", "lots", "wait4db"]).assert_code(64);
    djinit_with(&[], &["no-such-command"])
        .assert_code(64)
        .assert_stderr_contains("unknown command");
    djinit_with(&[], &["wait4bd", "-t", "1"])
        .assert_code(64)
        .assert_stderr_contains("did you mean \"wait4db\"?");
    // `djinit help CMD` is `djinit CMD --help`; -V is --version.
    let out = djinit_with(&[], &["help", "ensureadmin"]);
    out.assert_success();
    assert!(out.stdout.contains("usage: ensureadmin"), "{}", out.stdout);
    let out = djinit_with(&[], &["-V"]);
    out.assert_success();
    assert!(out.stdout.starts_with("djinit "), "{}", out.stdout);
    djinit_with(&[], &[]).assert_code(64);
    // Arguments after the command belong to it: wait4db's own help, not the runner's.
    let out = djinit_with(&[], &["wait4db", "--help"]);
    out.assert_success();
    assert!(out.stdout.contains("usage: wait4db"), "{}", out.stdout);
    // The component's exit code is the process exit code (wait4db's usage error).
    djinit_with(&[], &["wait4db", "--bogus"]).assert_code(64);
}

#[test]
fn run_file_needs_a_precompiled_component_or_says_how() {
    let wasm = component("wait4db").display().to_string();
    let out = djinit_with(&[], &["run", &wasm, "--version"]);
    if out.stdout.contains("wait4db") {
        // A `jit` build compiles the .wasm itself.
        out.assert_success();
    } else {
        out.assert_code(64).assert_stderr_contains("djinit-compile");
    }
    djinit_with(&[], &["run", &cwasm(), "--version"]).assert_success();
    djinit_with(&[], &["run", "/nonexistent/x.cwasm"]).assert_code(66);
    let not_wasm = std::env::current_exe().unwrap().display().to_string();
    djinit_with(&[], &["run", &not_wasm]).assert_code(65);
}

// ---- a closed stdout ----------------------------------------------------------------------------

/// Run `cmd` with the stdout it was given (e.g. a pipe nobody reads); (exit code, stderr).
pub(crate) fn run_keeping_stdout(mut cmd: Command) -> (Option<i32>, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = wait_at_most(&mut child, RUN_LIMIT);
    assert!(start.elapsed() < RUN_LIMIT, "killed at the time limit");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (status.code(), err)
}

#[test]
fn help_and_version_to_a_closed_pipe_exit_0() {
    let mut cases: Vec<Vec<&str>> = vec![vec!["--help"], vec!["--version"]];
    for c in [
        "wait4db",
        "dns-discover",
        "ensureadmin",
        "lockedmigrate",
        "checkmigrations",
    ] {
        cases.push(vec![c, "--help"]);
        cases.push(vec![c, "--version"]);
    }
    for args in cases {
        // The reader is gone before anything is written (`| head -1` after its line).
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut cmd = djinit();
        cmd.args(&args).stdout(writer);
        let (code, stderr) = run_keeping_stdout(cmd);
        assert_eq!(code, Some(0), "{args:?}: stderr: {stderr}");
        assert!(stderr.is_empty(), "{args:?}: stderr: {stderr}");
    }
}

// ---- files that are symlinks out of their directory -------------------------------------------

/// `/etc/ssl/certs` as Debian lays it out, under `root`: `NAME.pem` links to
/// `/usr/share/ca-certificates/...`, `HASH.0` to `NAME.pem`. Returns (the .pem, the hash link).
fn certs_symlink_farm(root: &Path, ca: &Path) -> (String, String) {
    let share = root.join("usr/share/ca-certificates/djinit");
    let certs = root.join("etc/ssl/certs");
    std::fs::create_dir_all(&share).unwrap();
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(ca, share.join("djinit_Test_CA.crt")).unwrap();
    symlink(
        share.join("djinit_Test_CA.crt"),
        certs.join("djinit_Test_CA.pem"),
    )
    .unwrap();
    symlink("djinit_Test_CA.pem", certs.join("5ed36f99.0")).unwrap();
    // Neighbours the component is not meant to see.
    std::fs::write(certs.join("ca-certificates.crt"), "not a certificate").unwrap();
    (
        certs.join("djinit_Test_CA.pem").display().to_string(),
        certs.join("5ed36f99.0").display().to_string(),
    )
}

#[test]
fn sslrootcert_in_a_symlink_farm_is_followed_on_the_host() {
    let pki = Pki::generate();
    let pg = Cluster::builder().ssl(&pki, ServerCert::Good).start();
    let root = tempfile::tempdir().unwrap();
    let (pem, hash) = certs_symlink_farm(root.path(), &pki.ca());
    for cert in [pem, hash] {
        let url = format!(
            "postgres://postgres:{}@localhost:{}/postgres?sslmode=verify-full&sslrootcert={cert}",
            percent_encode(PASSWORD),
            pg.port()
        );
        djinit_with(
            &[("DATABASE_URL", &url)],
            &["wait4db", "-s", "0", "-t", "10"],
        )
        .assert_success()
        .assert_no_secret(PASSWORD);
    }
}

#[test]
fn password_file_in_a_kubernetes_secret_or_linked_from_elsewhere() {
    let pg = Cluster::start(Auth::Scram);
    let proj = DjangoProject::create(&[]);
    let mut migrate = proj.manage(&["migrate", "-v", "0"]);
    migrate.env("DATABASE_URL", pg.url());
    run(migrate, RUN_LIMIT).assert_success();

    // A Secret volume: KEY -> ..data/KEY, ..data -> ..<timestamp>/ (links inside the directory).
    let root = tempfile::tempdir().unwrap();
    let secret = root.path().join("secrets/admin");
    let stamp = secret.join("..2026_01_01_00_00_00.123456789");
    std::fs::create_dir_all(&stamp).unwrap();
    std::fs::write(stamp.join("password"), format!("{PASSWORD}\n")).unwrap();
    symlink("..2026_01_01_00_00_00.123456789", secret.join("..data")).unwrap();
    symlink("..data/password", secret.join("password")).unwrap();
    // ... and a link to it from another directory (out of its own).
    let app = root.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    symlink(secret.join("password"), app.join("admin-password")).unwrap();

    for (user, file) in [
        ("k8s", secret.join("password")),
        ("linked", app.join("admin-password")),
    ] {
        let file = file.display().to_string();
        let out = djinit_with(
            &[("DATABASE_URL", &pg.url())],
            &["ensureadmin", "-u", user, "--password-file", &file],
        );
        out.assert_success().assert_no_secret(PASSWORD);
        let mut check = proj.manage(&[
            "shell",
            "--no-imports",
            "-c",
            "import os; from django.contrib.auth import authenticate; \
             print(authenticate(username=os.environ['U'], password=os.environ['P']) is not None)",
        ]);
        check
            .env("DATABASE_URL", pg.url())
            .env("U", user)
            .env("P", PASSWORD);
        let out = run(check, RUN_LIMIT);
        out.assert_success();
        assert_eq!(out.stdout.trim(), "True", "{user}: {}", out.report());
    }
}
