//! TLS to PostgreSQL (`ssl = on` clusters with a generated PKI): every sslmode against servers
//! with and without TLS, certificate verification failures, client-certificate authentication,
//! channel binding (SCRAM-SHA-256-PLUS), and the runner mounting the certificate files.
//!
//! Whether a session really was encrypted is read from the server's log (`log_connections`
//! prints `SSL enabled` for TLS sessions), each run tagged with its own `application_name`.
//! Exit codes: 0 ready, 76 protocol, 77 verification/authentication failed, 78 configuration.

use crate::harness::{
    djinit, percent_encode, run, Auth, Cluster, Output, Pki, ServerCert, PASSWORD,
};
use std::time::Duration;

const RUN_LIMIT: Duration = Duration::from_secs(60);
const MODES: [&str; 6] = [
    "disable",
    "allow",
    "prefer",
    "require",
    "verify-ca",
    "verify-full",
];

/// `postgres://postgres:PASSWORD@<host>:<port>/postgres?<query>`.
fn url(pg: &Cluster, host: &str, query: &str) -> String {
    format!(
        "postgres://postgres:{}@{host}:{}/postgres?{query}",
        percent_encode(PASSWORD),
        pg.port()
    )
}

/// `djinit wait4db -s 0 -t <secs> -v 3` with `DATABASE_URL=url`.
fn wait4db(url: &str, secs: u32) -> Output {
    let mut cmd = djinit();
    cmd.args(["wait4db", "-s", "0", "-v", "3", "-t", &secs.to_string()])
        .env("DATABASE_URL", url);
    let out = run(cmd, RUN_LIMIT);
    out.assert_no_secret(PASSWORD);
    out
}

/// Did the server log a connection tagged `app` with TLS? `None`: no such connection.
fn tls_used(pg: &Cluster, app: &str) -> Option<bool> {
    let needle = format!("application_name={app}");
    let log = pg.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("connection authorized") && l.contains(&needle))
        .collect();
    if lines.is_empty() {
        return None;
    }
    Some(lines.iter().all(|l| l.contains("SSL enabled")))
}

fn q(pki: &Pki, mode: &str, app: &str) -> String {
    format!(
        "sslmode={mode}&sslrootcert={}&application_name={app}",
        pki.ca().display()
    )
}

#[test]
fn every_sslmode_against_a_tls_server() {
    let pki = Pki::generate();
    let pg = Cluster::builder().ssl(&pki, ServerCert::Good).start();
    for mode in MODES {
        let app = format!("mode-{mode}");
        let out = wait4db(&url(&pg, "localhost", &q(&pki, mode, &app)), 10);
        out.assert_code(0);
        let want_tls = !matches!(mode, "disable" | "allow");
        assert_eq!(
            tls_used(&pg, &app),
            Some(want_tls),
            "sslmode={mode}\n{}",
            out.report()
        );
        if want_tls {
            // SCRAM with channel binding whenever TLS is on (channel_binding=prefer).
            out.assert_stderr_contains("auth scram-sha-256-plus");
        }
    }
    // Without sslrootcert, require encrypts without checking (no CA to check against).
    let out = wait4db(
        &url(&pg, "127.0.0.1", "sslmode=require&application_name=noroot"),
        10,
    );
    out.assert_code(0);
    assert_eq!(tls_used(&pg, "noroot"), Some(true));
}

#[test]
fn every_sslmode_against_a_plain_server() {
    let pki = Pki::generate();
    let pg = Cluster::start(Auth::Scram);
    for mode in MODES {
        let app = format!("plain-{mode}");
        let out = wait4db(&url(&pg, "localhost", &q(&pki, mode, &app)), 5);
        match mode {
            "disable" | "allow" | "prefer" => {
                out.assert_code(0);
                assert_eq!(tls_used(&pg, &app), Some(false), "{}", out.report());
            }
            _ => {
                out.assert_code(78)
                    .assert_stderr_contains("the server refused TLS");
                out.assert_stderr_contains(&format!("sslmode={mode} requires it"));
            }
        }
    }
}

#[test]
fn allow_upgrades_to_tls_when_plain_is_rejected() {
    let pki = Pki::generate();
    let pg = Cluster::builder()
        .ssl(&pki, ServerCert::Good)
        .hba("hostnossl all all 127.0.0.1/32 reject")
        .start();
    let out = wait4db(
        &url(&pg, "localhost", "sslmode=allow&application_name=allow"),
        10,
    );
    out.assert_code(0);
    assert_eq!(tls_used(&pg, "allow"), Some(true), "{}", out.report());
    let out = wait4db(&url(&pg, "localhost", "sslmode=disable"), 5);
    out.assert_code(77).assert_stderr_contains("pg_hba.conf");
}

#[test]
fn prefer_falls_back_to_plain_when_tls_is_rejected() {
    let pki = Pki::generate();
    let pg = Cluster::builder()
        .ssl(&pki, ServerCert::Good)
        .hba("hostssl all all 127.0.0.1/32 reject")
        .start();
    let out = wait4db(
        &url(&pg, "localhost", "sslmode=prefer&application_name=pref"),
        10,
    );
    out.assert_code(0);
    assert_eq!(tls_used(&pg, "pref"), Some(false), "{}", out.report());
    wait4db(&url(&pg, "localhost", "sslmode=require"), 5).assert_code(77);
}

#[test]
fn verify_full_refuses_the_wrong_host_name() {
    let pki = Pki::generate();
    let pg = Cluster::builder().ssl(&pki, ServerCert::WrongName).start();
    let out = wait4db(&url(&pg, "localhost", &q(&pki, "verify-full", "x")), 10);
    out.assert_code(77)
        .assert_stderr_contains("host name mismatch")
        .assert_stderr_contains("wrong.example")
        .assert_stderr_contains("\"localhost\"");
    assert!(
        !out.stderr.contains("BEGIN CERTIFICATE"),
        "{}",
        out.report()
    );
    assert_eq!(tls_used(&pg, "x"), None, "no session may start");
    // verify-ca checks the chain only; require with sslrootcert behaves as verify-ca.
    wait4db(&url(&pg, "localhost", &q(&pki, "verify-ca", "y")), 10).assert_code(0);
    wait4db(&url(&pg, "localhost", &q(&pki, "require", "z")), 10).assert_code(0);
}

#[test]
fn verify_full_checks_ip_addresses_too() {
    let pki = Pki::generate();
    let pg = Cluster::builder().ssl(&pki, ServerCert::Good).start();
    wait4db(&url(&pg, "127.0.0.1", &q(&pki, "verify-full", "ip")), 10).assert_code(0);
    let wrong = Cluster::builder().ssl(&pki, ServerCert::WrongName).start();
    wait4db(&url(&wrong, "127.0.0.1", &q(&pki, "verify-full", "ip")), 10)
        .assert_code(77)
        .assert_stderr_contains("not for \"127.0.0.1\"");
}

#[test]
fn expired_and_untrusted_certificates_are_refused() {
    let pki = Pki::generate();
    let expired = Cluster::builder().ssl(&pki, ServerCert::Expired).start();
    for mode in ["verify-ca", "verify-full", "require"] {
        wait4db(&url(&expired, "localhost", &q(&pki, mode, "e")), 10)
            .assert_code(77)
            .assert_stderr_contains("has expired (valid until 2021-01-01");
    }
    // Without a CA to check against, require encrypts anyway (libpq's behaviour).
    wait4db(&url(&expired, "localhost", "sslmode=require"), 10).assert_code(0);

    let other = Cluster::builder().ssl(&pki, ServerCert::OtherCa).start();
    wait4db(&url(&other, "localhost", &q(&pki, "verify-full", "o")), 10)
        .assert_code(77)
        .assert_stderr_contains("untrusted certificate chain")
        .assert_stderr_contains(&pki.ca().display().to_string());
    // prefer with sslrootcert verifies too, and falls back to plain text when that fails.
    let out = wait4db(&url(&other, "localhost", &q(&pki, "prefer", "pf")), 10);
    out.assert_code(0);
    assert_eq!(tls_used(&other, "pf"), Some(false), "{}", out.report());
    // The bundled public roots do not know a private CA.
    wait4db(&url(&other, "localhost", "sslrootcert=system"), 10)
        .assert_code(77)
        .assert_stderr_contains("bundled public roots");
}

#[test]
fn client_certificate_authentication() {
    let pki = Pki::generate();
    let pg = Cluster::builder()
        .ssl(&pki, ServerCert::Good)
        .hba("hostssl all postgres 127.0.0.1/32 cert")
        .start();
    let (crt, key) = pki.client();
    let base = format!(
        "postgres://postgres@localhost:{}/postgres?sslmode=verify-full&sslrootcert={}",
        pg.port(),
        pki.ca().display()
    );
    let with_cert = format!(
        "{base}&sslcert={}&sslkey={}&application_name=cert",
        crt.display(),
        key.display()
    );
    let out = wait4db(&with_cert, 10);
    out.assert_code(0).assert_stderr_contains("auth trust");
    assert_eq!(tls_used(&pg, "cert"), Some(true));

    // No certificate: the server refuses (its message names the reason).
    wait4db(&base, 5)
        .assert_code(77)
        .assert_stderr_contains("certificate");
    // A certificate from a CA the server does not trust: the TLS alert, as an auth failure.
    let (ucrt, ukey) = pki.client_untrusted();
    wait4db(
        &format!(
            "{base}&sslcert={}&sslkey={}",
            ucrt.display(),
            ukey.display()
        ),
        5,
    )
    .assert_code(77)
    .assert_stderr_contains("rejected our client certificate");
    // Certificate auth has no channel binding: channel_binding=require refuses it.
    wait4db(&format!("{with_cert}&channel_binding=require"), 5)
        .assert_code(77)
        .assert_stderr_contains("without channel binding");
}

#[test]
fn channel_binding_required_and_refused() {
    let pki = Pki::generate();
    let pg = Cluster::builder().ssl(&pki, ServerCert::Good).start();
    wait4db(
        &url(
            &pg,
            "localhost",
            &format!("{}&channel_binding=require", q(&pki, "verify-full", "cb")),
        ),
        10,
    )
    .assert_code(0)
    .assert_stderr_contains("auth scram-sha-256-plus");
    wait4db(
        &url(&pg, "localhost", "sslmode=require&channel_binding=disable"),
        10,
    )
    .assert_code(0)
    .assert_stderr_contains("auth scram-sha-256)");
    // No TLS, no binding: refused before any password is sent.
    wait4db(
        &url(&pg, "localhost", "sslmode=disable&channel_binding=require"),
        5,
    )
    .assert_code(77)
    .assert_stderr_contains("channel binding needs TLS");
    wait4db(&url(&pg, "localhost", "channel_binding=sometimes"), 5)
        .assert_code(78)
        .assert_stderr_contains("channel_binding: invalid value");

    // An md5 server asks for a hash of the password: channel_binding=require never answers.
    let md5 = Cluster::builder()
        .auth(Auth::Md5)
        .ssl(&pki, ServerCert::Good)
        .start();
    wait4db(
        &url(&md5, "localhost", "sslmode=require&channel_binding=require"),
        5,
    )
    .assert_code(77)
    .assert_stderr_contains("asks for md5 authentication");
    wait4db(&url(&md5, "localhost", "sslmode=require"), 10).assert_code(0);
}

#[test]
fn tls_configuration_errors() {
    let pki = Pki::generate();
    let pg = Cluster::builder().ssl(&pki, ServerCert::Good).start();
    let missing = pki.dir().join("nothere.pem");
    let cases = [
        (
            format!("sslmode=verify-full&sslrootcert={}", missing.display()),
            "sslrootcert: cannot read the file: no such file",
        ),
        ("sslmode=verify-ca".to_string(), "need sslrootcert"),
        (
            format!("sslcert={}", pki.client().0.display()),
            "sslkey is not",
        ),
        (
            "sslmode=require&sslrootcert=system".to_string(),
            "may not be used with sslrootcert=system",
        ),
        (
            "sslmode=prefer&sslnegotiation=direct".to_string(),
            "may not be used with sslnegotiation=direct",
        ),
        (
            "sslnegotiation=later".to_string(),
            "sslnegotiation: invalid value",
        ),
        (
            format!("sslmode=require&sslrootcert={}", pki.client().1.display()),
            "sslrootcert: the file holds no PEM certificate",
        ),
    ];
    for (query, msg) in cases {
        wait4db(&url(&pg, "localhost", &query), 5)
            .assert_code(78)
            .assert_stderr_contains(msg);
    }
}

#[test]
fn direct_tls_against_a_server_without_it_is_a_clear_error() {
    // PostgreSQL 15 reads a TLS ClientHello as a broken startup packet and hangs up.
    let pki = Pki::generate();
    let pg = Cluster::builder().ssl(&pki, ServerCert::Good).start();
    wait4db(
        &url(&pg, "localhost", "sslmode=require&sslnegotiation=direct"),
        5,
    )
    .assert_code(76)
    .assert_stderr_contains("does not support sslnegotiation=direct");
}
