//! Hostile and broken servers (a scripted fake speaking just enough of the protocol), each ending
//! in one clear error line and the right exit code; and every command, at `-v 3`, through every
//! failure mode with a distinctive password that must never appear in any output.

use crate::harness::{
    djinit, fakes, free_port, percent_encode, run, Auth, Cluster, Output, Pki, ServerCert, PASSWORD,
};
use djinit_tests::hostile::{msg, scripted, Conn};
use std::time::Duration;

const RUN_LIMIT: Duration = Duration::from_secs(60);

fn wait4db(url: &str, timeout: &str) -> Output {
    let mut cmd = djinit();
    cmd.args(["wait4db", "-s", "0", "-v", "3", "-t", timeout])
        .env("DATABASE_URL", url);
    let out = run(cmd, RUN_LIMIT);
    out.assert_no_secret(PASSWORD);
    out
}

/// SASL exchange up to the client's first message; returns its nonce.
fn scram_start(c: &mut Conn) -> Option<String> {
    c.startup();
    c.send(&msg::auth_sasl(&["SCRAM-SHA-256"]));
    let (_, body) = c.read_msg()?;
    Some(msg::client_nonce(&body))
}

#[test]
fn oversized_length_is_refused() {
    let fake = scripted(|c| {
        c.startup();
        c.send(&[b'R', 0x7f, 0xff, 0xff, 0xff]);
    });
    wait4db(&fake.url(), "5")
        .assert_code(76)
        .assert_stderr_contains("claims a length of 2147483647 bytes");
}

#[test]
fn truncated_message_then_close() {
    let fake = scripted(|c| {
        c.startup();
        let ok = msg::auth_ok();
        c.send(&ok[..5]);
    });
    // Transient (the server went away): retried until the deadline, then reported.
    wait4db(&fake.url(), "2")
        .assert_code(75)
        .assert_stderr_contains("failed while authenticating: server closed the connection");
}

#[test]
fn wrong_authentication_sequences() {
    let fake = scripted(|c| {
        c.startup();
        c.send(&msg::ready());
    });
    wait4db(&fake.url(), "5")
        .assert_code(76)
        .assert_stderr_contains("ready for query before authentication");

    let fake = scripted(|c| {
        c.startup();
        c.send(&msg::sasl_final("v=AAAA"));
    });
    wait4db(&fake.url(), "5")
        .assert_code(76)
        .assert_stderr_contains("unexpected SASL final message");

    // Success claimed without finishing SCRAM: the server never proved it knows the password.
    let fake = scripted(|c| {
        if scram_start(c).is_some() {
            c.send(&msg::auth_ok());
            c.send(&msg::ready());
        }
    });
    wait4db(&fake.url(), "5")
        .assert_code(77)
        .assert_stderr_contains("without completing SCRAM");
}

#[test]
fn scram_server_signature_that_does_not_verify() {
    let fake = scripted(|c| {
        let Some(nonce) = scram_start(c) else { return };
        c.send(&msg::sasl_continue(&format!(
            "r={nonce}srv,s=c2FsdHNhbHQ=,i=4096"
        )));
        if c.read_msg().is_some() {
            // 32 zero bytes: not the signature a server knowing the password computes.
            c.send(&msg::sasl_final(
                "v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            ));
            c.send(&msg::auth_ok());
        }
    });
    wait4db(&fake.url(), "5")
        .assert_code(77)
        .assert_stderr_contains("SCRAM signature does not verify");

    let fake = scripted(|c| {
        let Some(nonce) = scram_start(c) else { return };
        c.send(&msg::sasl_continue(&format!(
            "r={nonce}srv,s=c2FsdHNhbHQ=,i=999999999"
        )));
    });
    wait4db(&fake.url(), "5")
        .assert_code(77)
        .assert_stderr_contains("iteration count");
}

#[test]
fn error_in_the_middle_of_a_query() {
    let fake = scripted(|c| {
        c.startup();
        c.send(&[msg::auth_ok(), msg::ready()].concat());
        if c.read_query() {
            c.send(
                &[
                    msg::row_description("?column?"),
                    msg::data_row("1"),
                    msg::error("ERROR", "XX000", "boom in the middle of the rows"),
                    msg::ready(),
                ]
                .concat(),
            );
        }
        let _ = c.read_msg();
    });
    wait4db(&fake.url(), "5")
        .assert_code(65)
        .assert_stderr_contains("XX000: boom in the middle of the rows");

    // The connection dropped mid-result: transient, retried, then reported.
    let fake = scripted(|c| {
        c.startup();
        c.send(&[msg::auth_ok(), msg::ready()].concat());
        if c.read_query() {
            c.send(&msg::row_description("?column?"));
        }
    });
    wait4db(&fake.url(), "2")
        .assert_code(75)
        .assert_stderr_contains(
            "failed while waiting for query results: server closed the connection",
        );
}

/// Every failure mode, every command, `-v 3`: the password never appears (raw or
/// percent-encoded) in stdout or stderr.
#[test]
fn no_command_ever_prints_the_password() {
    let pki = Pki::generate();
    let pg = Cluster::builder().auth(Auth::Scram).start();
    let tls = Cluster::builder().ssl(&pki, ServerCert::WrongName).start();
    let cleartext = Cluster::start(Auth::Password);
    let hung = fakes::hung_listener();
    let garbage = fakes::garbage_server(b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec());
    let bad_scram = scripted(|c| {
        let Some(nonce) = scram_start(c) else { return };
        c.send(&msg::sasl_continue(&format!(
            "r={nonce}x,s=c2FsdHNhbHQ=,i=4096"
        )));
        if c.read_msg().is_some() {
            c.send(&msg::sasl_final(
                "v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            ));
        }
    });
    let pw = percent_encode(PASSWORD);
    let at =
        |port: u16, rest: &str| format!("postgres://postgres:{pw}@127.0.0.1:{port}/postgres{rest}");
    let ca = pki.ca().display().to_string();
    let urls =
        vec![
        at(free_port(), ""),                                                 // refused
        at(hung.port(), "?connect_timeout=2"),                               // timeout
        at(garbage.port(), ""),                                              // protocol
        at(bad_scram.port(), ""),                                            // hostile SCRAM
        format!("postgres://ghost:{pw}@127.0.0.1:{}/postgres", pg.port()),   // auth failed
        at(pg.port(), "x"),                                                  // no such database
        at(pg.port(), "?bogus=1"),                                           // bad URL
        format!("postgres://postgres:{pw}@127.0.0.1:99999/postgres"),        // bad port
        at(pg.port(), "?sslmode=sometimes"),                                 // bad sslmode
        at(pg.port(), "?sslmode=require"),                                   // TLS refused
        at(pg.port(), "?sslmode=disable&channel_binding=require"),           // binding refused
        format!("postgres://postgres:{pw}@localhost:{}/postgres?sslmode=verify-full&sslrootcert={ca}", tls.port()), // wrong name
        at(tls.port(), "?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem"), // missing file
        format!("postgres://ghost:{pw}@127.0.0.1:{}/postgres", cleartext.port()), // cleartext, wrong user
        format!("postgres://postgres@127.0.0.1:{}/postgres?password={pw}&bogus", pg.port()), // password in query
    ];
    let commands: Vec<(&str, Vec<&str>)> = vec![
        ("wait4db", vec!["-s", "0", "-t", "3"]),
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
                "3",
            ],
        ),
        (
            "lockedmigrate",
            vec!["--bundle", "/nonexistent-bundle", "--lock-timeout", "3"],
        ),
        (
            "checkmigrations",
            vec!["--bundle", "/nonexistent-bundle", "-t", "3"],
        ),
    ];
    let mut checked = 0;
    for (command, args) in &commands {
        if !crate::harness::target_dir()
            .join("components")
            .join(format!("{command}.wasm"))
            .is_file()
        {
            continue;
        }
        for url in &urls {
            let mut cmd = djinit();
            cmd.arg(command)
                .args(args)
                .args(["-v", "3"])
                .env("DATABASE_URL", url);
            let out = run(cmd, RUN_LIMIT);
            assert_ne!(
                out.code,
                Some(0),
                "{command} succeeded against a failure mode\n{}",
                out.report()
            );
            out.assert_no_secret(PASSWORD);
            checked += 1;
        }
        // The libpq variables: the password in PGPASSWORD.
        let mut cmd = djinit();
        cmd.arg(command).args(args).args(["-v", "3"]);
        for (k, v) in pg.pg_env() {
            cmd.env(
                k,
                if k == "PGUSER" {
                    "ghost".to_string()
                } else {
                    v
                },
            );
        }
        run(cmd, RUN_LIMIT).assert_no_secret(PASSWORD);
    }
    assert!(checked >= urls.len(), "wait4db at least must have run");
}
