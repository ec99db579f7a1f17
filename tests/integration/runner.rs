//! The runner (`djinit`) itself: least privilege (network, environment), limits (memory,
//! wall clock), stopping on SIGTERM/SIGINT, its own command line, and `djinit run FILE`.
//!
//! The embedded and precompiled `wait4db` serves as the guest: it connects where its
//! configuration says, so what the runner grants is observable from its exit code and message.

use crate::harness::{
    component, djinit, free_port, percent_encode, precompiled, run, Auth, Cluster, Output, PASSWORD,
};
use std::process::Stdio;
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
