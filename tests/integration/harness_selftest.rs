//! The harness checks itself: clusters start with each auth method, survive stop/start, fakes
//! misbehave as promised, and `run` kills what overruns its deadline.

use crate::harness::{self, fakes, run, Auth, Cluster, PASSWORD};
use std::io::Read;
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

#[test]
fn harness_cluster_answers_psql_for_every_auth_method() {
    for auth in [Auth::Trust, Auth::Password, Auth::Md5, Auth::Scram] {
        let pg = Cluster::start(auth);
        assert_eq!(pg.psql("select 1"), "1", "{auth:?}");
        assert_eq!(pg.host(), "127.0.0.1");
        let stored =
            pg.psql("select left(rolpassword, 5) from pg_authid where rolname = 'postgres'");
        let expected = if auth == Auth::Md5 { "md5" } else { "SCRAM" };
        assert!(
            stored.starts_with(expected),
            "{auth:?}: stored hash starts {stored:?}"
        );
    }
}

#[test]
fn harness_url_percent_encodes_the_password() {
    let pg = Cluster::start(Auth::Scram);
    let url = pg.url();
    assert!(!url.contains(PASSWORD), "raw password in URL");
    assert!(url.starts_with("postgres://postgres:Pw%2Fwith%3Aspecial%40chars-"));
    assert!(url.ends_with(&format!("@127.0.0.1:{}/postgres", pg.port())));
    assert_eq!(
        pg.url_for("app user", "", "my db"),
        format!("postgres://app%20user@127.0.0.1:{}/my%20db", pg.port())
    );
}

#[test]
fn harness_stop_and_start_again_keep_port_and_data() {
    let mut pg = Cluster::start(Auth::Trust);
    pg.create_database("kept");
    pg.create_user("alice", "alice-Pw/1");
    let port = pg.port();
    pg.stop();
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "still listening after stop"
    );
    pg.start_again();
    assert_eq!(pg.port(), port);
    assert_eq!(
        pg.psql("select count(*) from pg_database where datname = 'kept'"),
        "1"
    );
    assert_eq!(
        pg.psql("select count(*) from pg_roles where rolname = 'alice'"),
        "1"
    );
    pg.restart();
    assert_eq!(pg.psql_in("kept", "select current_database()"), "kept");
}

#[test]
fn harness_custom_conf_and_hba_lines_apply() {
    let pg = Cluster::builder()
        .auth(Auth::Scram)
        .conf("application_name = 'from-conf'")
        .conf("max_connections = 42")
        .hba("host all nobody 127.0.0.1/32 reject")
        .start();
    assert_eq!(pg.psql("show max_connections"), "42");
    let hba = std::fs::read_to_string(pg.data_dir().join("pg_hba.conf")).unwrap();
    let reject = hba.find("nobody").unwrap();
    let default = hba.find("scram-sha-256").unwrap();
    assert!(
        reject < default,
        "custom hba line must precede the default one:\n{hba}"
    );
}

#[test]
fn harness_dropped_cluster_is_gone() {
    let pg = Cluster::start(Auth::Trust);
    let (port, dir) = (pg.port(), pg.temp_dir().to_path_buf());
    drop(pg);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "still listening after drop"
    );
    assert!(!dir.exists(), "temp dir left behind");
}

#[test]
fn harness_dropped_cluster_is_gone_after_a_panic() {
    let mut seen = None;
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let pg = Cluster::start(Auth::Trust);
        seen = Some((pg.port(), pg.temp_dir().to_path_buf()));
        panic!("test failure inside");
    }));
    assert!(caught.is_err());
    let (port, dir) = seen.unwrap();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    assert!(!dir.exists());
}

#[test]
fn harness_run_kills_at_the_timeout() {
    let out = run(Command::new("sleep").arg("30"), Duration::from_millis(300));
    assert!(out.timed_out);
    assert_eq!(out.code, None);
    assert!(out.elapsed < Duration::from_secs(5), "{:?}", out.elapsed);
}

#[test]
fn harness_run_reports_code_and_output() {
    let out = run(
        Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
        Duration::from_secs(10),
    );
    out.assert_code(3);
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");
    assert!(out.max_rss_kib > 0);
    let r = std::panic::catch_unwind(|| {
        out.assert_code(0);
    });
    assert!(r.is_err(), "assert_code must panic on a mismatch");
}

#[test]
fn harness_assert_no_secret_catches_raw_and_encoded_passwords() {
    for leaked in [PASSWORD.to_string(), harness::percent_encode(PASSWORD)] {
        let out = run(
            Command::new("echo").arg(format!("url has {leaked}")),
            Duration::from_secs(10),
        );
        let r = std::panic::catch_unwind(|| {
            out.assert_no_secret(PASSWORD);
        });
        assert!(r.is_err(), "leak not caught");
        assert!(!out.report().contains(PASSWORD), "report must be redacted");
    }
}

#[test]
fn harness_hung_listener_accepts_and_stays_silent() {
    let fake = fakes::hung_listener();
    let mut s = TcpStream::connect(("127.0.0.1", fake.port())).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 16];
    let err = s.read(&mut buf).expect_err("hung listener must not answer");
    assert!(matches!(
        err.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ));
}

#[test]
fn harness_garbage_server_sends_its_bytes() {
    let fake = fakes::garbage_server(&b"HTTP/1.1 400 Bad Request\r\n\r\n"[..]);
    let mut s = TcpStream::connect(("127.0.0.1", fake.port())).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 400"));
    let port = fake.port();
    drop(fake);
    drop(s);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "listener left after drop"
    );
}

#[test]
fn harness_free_port_has_nothing_listening() {
    let port = fakes::free_port();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[test]
fn harness_django_project_reaches_the_cluster_through_database_url() {
    let pg = Cluster::start(Auth::Scram);
    let proj = harness::DjangoProject::create(&["djk8s"]);
    // The reference wait4db (django-kubernetes) against the same URL djinit gets.
    let mut cmd = proj.manage(&["wait4db", "-s", "1", "-i", "1", "-t", "20"]);
    cmd.env("DATABASE_URL", pg.url());
    run(cmd, Duration::from_secs(60)).assert_code(0);
    // And it sees the password-protected cluster, not some other server.
    let mut cmd = proj.manage(&["shell", "--no-imports", "-c", "from django.db import connection; \
        c = connection.cursor(); c.execute('select current_setting(%s)', ['port']); print(c.fetchone()[0])"]);
    cmd.env("DATABASE_URL", pg.url());
    let out = run(cmd, Duration::from_secs(60));
    out.assert_code(0);
    assert_eq!(out.stdout.trim(), pg.port().to_string());
}

#[test]
fn harness_spawn_can_signal_a_running_process() {
    let running = harness::spawn(Command::new("sleep").arg("30"));
    std::thread::sleep(Duration::from_millis(100));
    running.signal(libc_sigterm());
    let out = running.wait(Duration::from_secs(10));
    assert!(!out.timed_out, "{}", out.report());
    assert_eq!(out.signal, Some(libc_sigterm()));
}

#[test]
fn harness_run_with_input_feeds_stdin() {
    let out = harness::run_with_input(Command::new("cat"), "via stdin", Duration::from_secs(10));
    out.assert_code(0);
    assert_eq!(out.stdout, "via stdin");
}

/// SIGTERM's number (15 on Linux), without a libc dependency in the test module.
fn libc_sigterm() -> i32 {
    15
}

#[test]
fn harness_killed_test_process_leaves_no_server_behind() {
    // A child process (this test binary, re-run on the helper below) starts a cluster and is
    // SIGKILLed: no unwinding, no Drop. The watchdog must stop the server and remove the dir.
    if std::env::var_os("DJINIT_HARNESS_CHILD").is_some() {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let running = harness::spawn({
        let mut c = Command::new(exe);
        c.env("DJINIT_HARNESS_CHILD_START", "1")
            .args([
                "--exact",
                "harness_selftest::harness_child_starts_a_cluster_and_waits",
            ])
            .args(["--nocapture", "--test-threads=1"]);
        c
    });
    // The child prints the port and temp dir, then sleeps; give it time to start the cluster.
    std::thread::sleep(Duration::from_secs(3));
    running.signal(9);
    let out = running.wait(Duration::from_secs(30));
    let line = out
        .stdout
        .lines()
        .find_map(|l| l.split_once("CLUSTER ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("child did not report its cluster\n{}", out.report()))
        .to_string();
    let (port, dir) = line.split_once(' ').unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::path::Path::new(dir).exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !std::path::Path::new(dir).exists(),
        "temp dir {dir} left behind"
    );
    let port: u16 = port.parse().unwrap();
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "server still listening"
    );
}

/// Helper for the test above; does nothing unless DJINIT_HARNESS_CHILD_START is set.
#[test]
fn harness_child_starts_a_cluster_and_waits() {
    if std::env::var_os("DJINIT_HARNESS_CHILD_START").is_none() {
        return;
    }
    let pg = Cluster::start(Auth::Trust);
    println!("CLUSTER {} {}", pg.port(), pg.temp_dir().display());
    std::thread::sleep(Duration::from_secs(60));
}
