//! Connection settings and socket errors through the real runner (`djinit`) and its components
//! (issue 9): a malformed `DATABASE_URL` is a configuration error at once (78) that never prints
//! any part of it; a password pasted in unencoded works; a variable that is not UTF-8 says so;
//! socket failures read as what happened (refused, closed), never as a raw WASI errno.

use crate::harness::{djinit, fakes, free_port, run, Auth, Cluster, Output};
use djinit_tests::hostile::scripted;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::time::Duration;

const RUN_LIMIT: Duration = Duration::from_secs(60);

/// Marks the part of each URL that must never be printed.
const SECRET: &str = "Zq9SECRETqZ";

/// `djinit COMMAND ARGS -v 3` with exactly `env` (plus PATH).
fn djinit_run(command: &str, args: &[&str], env: &[(&str, OsString)]) -> Output {
    let mut cmd = djinit();
    cmd.arg(command).args(args).args(["-v", "3"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(cmd, RUN_LIMIT)
}

fn wait4db(url: &str, timeout: &str) -> Output {
    djinit_run(
        "wait4db",
        &["-s", "0", "-t", timeout],
        &[("DATABASE_URL", url.into())],
    )
}

/// The commands that read connection settings before anything else, with arguments that
/// would otherwise succeed against a database.
fn commands() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        ("wait4db", vec!["-s", "0", "-t", "20"]),
        (
            "ensureadmin",
            vec![
                "-u",
                "admin",
                "-p",
                "Adm1n-pw-not-secret",
                "-e",
                "a@example.com",
                "-t",
                "20",
            ],
        ),
    ]
}

/// A configuration error: exit 78, one line on stderr, no part of the secret, and the server
/// named by the URL was never contacted (nothing retried).
#[track_caller]
fn assert_config_error(out: &Output, listener: &fakes::Fake) {
    out.assert_code(78).assert_no_secret(SECRET);
    assert_eq!(
        out.stderr.trim().lines().count(),
        1,
        "expected one line on stderr\n{}",
        out.report()
    );
    assert_eq!(listener.accepted(), 0, "it connected\n{}", out.report());
}

/// Issue 9, item 1: every malformed URL of the report, and its neighbours.
#[test]
fn malformed_database_url_is_78_at_once_and_never_printed() {
    let hung = fakes::hung_listener();
    let port = hung.port();
    let s = SECRET;
    let urls = [
        // `&` unencoded in a password given as a query parameter.
        format!("postgres://app@127.0.0.1:{port}/app?password=abc&def{s}"),
        // No '@': `user:password` reads as host and port. It was retried as "cannot resolve host".
        format!("postgres://app:{s}127.0.0.1:{port}/app"),
        format!("postgres://app:{s}127.0.0.1/app"),
        format!("postgres://app:pw@127.0.0.1:{port}/app?sslmode={s}"),
        format!("postgres://app:pw@127.0.0.1:{port}/app?channel_binding={s}"),
        format!("postgres://app:pw@127.0.0.1:{port}/app?port={s}"),
        format!("postgres://app:pw@127.0.0.1:{port}/app?connect_timeout={s}"),
        format!("postgres://app:pw@127.0.0.1:{port}/app?{s}=1"),
        format!("postgres://app:pw@127.0.0.1:{s}/app"),
        // A NUL (it panicked in the startup packet: exit 70).
        format!("postgres://app%00{s}:pw@127.0.0.1:{port}/app"),
        format!("postgres://app:pw@127.0.0.1:{port}/app?application_name={s}%00"),
        format!("postgres://app:{s}%zz@127.0.0.1:{port}/app"),
        // '@' in a query value must be %40.
        format!("postgres:///app?host=127.0.0.1&port={port}&user={s}@corp"),
    ];
    for (command, args) in commands() {
        for url in &urls {
            let out = djinit_run(command, &args, &[("DATABASE_URL", url.into())]);
            assert_config_error(&out, &hung);
        }
    }
    // The same rule for the libpq variables.
    for (var, value) in [
        ("PGPORT", s.to_string()),
        ("PGSSLMODE", s.to_string()),
        ("PGHOST", format!("{s}:x")),
    ] {
        let out = djinit_run(
            "wait4db",
            &["-s", "0", "-t", "20"],
            &[
                ("PGHOST", "127.0.0.1".into()),
                ("PGPORT", port.to_string().into()),
                ("PGPASSWORD", s.into()),
                (var, value.into()),
            ],
        );
        assert_config_error(&out, &hung);
        out.assert_stderr_contains(&format!("{var}: "));
    }
}

/// Issue 9, item 1: the URLs of the report that hold a password with `?`, `/`, `#`, `@`, `:`,
/// `&` or `=` pasted in unencoded are valid: the password is everything up to the last `@`.
/// Before, the URL was split at the first `?` and parts of the password were printed.
#[test]
fn unencoded_password_in_the_url_logs_in() {
    let pg = Cluster::start(Auth::Scram);
    let passwords = [
        format!("4711?sslmode={SECRET}"),
        format!("4711?channel_binding={SECRET}"),
        format!("4711?port={SECRET}"),
        format!("abc?x{SECRET}"),
        format!("p@ss/w#:&={SECRET}"),
    ];
    for (i, password) in passwords.iter().enumerate() {
        let user = format!("app{i}");
        pg.create_user(&user, password);
        let url = format!(
            "postgres://{user}:{password}@127.0.0.1:{}/postgres",
            pg.port()
        );
        let out = wait4db(&url, "20");
        out.assert_code(0).assert_no_secret(password);
    }
}

/// A variable that is set but not UTF-8 says so (78); it read "no database configured".
#[test]
fn database_url_not_utf8_says_so() {
    let mut bytes = format!("postgres://u:{SECRET}").into_bytes();
    bytes.extend_from_slice(b"\xff@127.0.0.1/db");
    let value = OsString::from_vec(bytes);
    for (var, args) in [
        ("DATABASE_URL", vec!["-s", "0", "-t", "20"]),
        (
            "DATABASE_URL_REPLICA",
            vec!["-d", "replica", "-s", "0", "-t", "20"],
        ),
        ("PGPASSWORD", vec!["-s", "0", "-t", "20"]),
    ] {
        let out = djinit_run(
            "wait4db",
            &args,
            &[("PGHOST", "127.0.0.1".into()), (var, value.clone())],
        );
        out.assert_code(78)
            .assert_stderr_contains(&format!("{var}: not valid UTF-8"))
            .assert_no_secret(SECRET);
        assert!(
            !out.stderr.contains("no database configured"),
            "{}",
            out.report()
        );
    }
}

/// Issue 9: a refused port read `Socket not connected (os error 53)` under the runner.
#[test]
fn refused_port_says_connection_refused() {
    let url = format!("postgres://u:{SECRET}@127.0.0.1:{}/db", free_port());
    let out = wait4db(&url, "2");
    out.assert_code(75)
        .assert_stderr_contains("connection refused")
        .assert_no_secret(SECRET);
    assert!(!out.stderr.contains("os error"), "{}", out.report());
}

/// Issue 9: a server that closes the connection read `I/O error (os error 29)`.
#[test]
fn closed_connection_says_server_closed_the_connection() {
    // Closes at once, before reading anything.
    let fake = scripted(|_| {});
    let url = format!(
        "postgres://u:{SECRET}@127.0.0.1:{}/db?sslmode=disable",
        fake.port()
    );
    let out = wait4db(&url, "2");
    out.assert_code(75)
        .assert_stderr_contains("server closed the connection")
        .assert_no_secret(SECRET);
    assert!(!out.stderr.contains("os error"), "{}", out.report());
}

/// Issue 9: `[::ffff:127.0.0.1]` failed with `Invalid argument (os error 28)`, retried. An
/// IPv4-mapped IPv6 literal means the IPv4 host.
#[test]
fn ipv4_mapped_ipv6_literal_connects_to_the_ipv4_host() {
    let pg = Cluster::start(Auth::Scram);
    let url = pg.url().replace("@127.0.0.1:", "@[::ffff:127.0.0.1]:");
    wait4db(&url, "20").assert_code(0);
}

/// An address no client can connect to is a configuration error at once, not retried: wasi-sockets
/// answers invalid-argument for `0.0.0.0`, which was retried until the deadline.
#[test]
fn unconnectable_address_is_78_at_once() {
    let out = wait4db(
        &format!("postgres://u:{SECRET}@0.0.0.0:{}/db", free_port()),
        "20",
    );
    out.assert_code(78)
        .assert_stderr_contains("invalid address")
        .assert_no_secret(SECRET);
    assert!(!out.stderr.contains("attempt 2"), "{}", out.report());
}

/// Issue 9: "failed while while negotiating", "failed while during the handshake".
#[test]
fn tls_steps_read_once_while() {
    // Reads the SSLRequest and hangs up.
    let no_answer = scripted(|c| {
        let _ = c.read_packet();
    });
    // Accepts TLS, then hangs up instead of the handshake.
    let no_handshake = scripted(|c| {
        if c.read_packet().is_some() {
            c.send(b"S");
        }
    });
    for (fake, step) in [
        (&no_answer, "while negotiating TLS (SSLRequest)"),
        (&no_handshake, "while doing the TLS handshake"),
    ] {
        let url = format!(
            "postgres://u:{SECRET}@127.0.0.1:{}/db?sslmode=require",
            fake.port()
        );
        let out = wait4db(&url, "2");
        out.assert_stderr_contains(step).assert_no_secret(SECRET);
        for doubled in ["while while", "while during", "failed during"] {
            assert!(!out.stderr.contains(doubled), "{}", out.report());
        }
    }
}
