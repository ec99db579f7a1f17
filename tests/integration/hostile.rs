//! Hostile and broken servers (a scripted fake speaking just enough of the protocol), each ending
//! in one clear error line and the right exit code; and every command, at `-v 3`, through every
//! failure mode with a distinctive password that must never appear in any output.

use crate::harness::{
    djinit, fakes, free_port, percent_encode, run, Auth, Cluster, Output, Pki, ServerCert, PASSWORD,
};
use djinit_tests::hostile::{self, msg, scripted, Conn};
use std::process::Command;
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

// ---- every read has a bound (issue 9, item 3) --------------------------------------------------

/// Shorter than [`hostile::HOLD`]: a command still waiting on a fake when this passes is killed
/// and fails its test, rather than ending when the fake gives up.
const BOUNDED: Duration = Duration::from_secs(40);

/// The commands that talk to PostgreSQL, each bounded at 2 s, against `url`.
fn every_pg_command(url: &str, bundle: &std::path::Path) -> Vec<(String, Command)> {
    let b = bundle.to_str().unwrap();
    let lines: Vec<Vec<&str>> = vec![
        vec!["wait4db", "-s", "0", "-t", "2"],
        vec![
            "ensureadmin",
            "-u",
            "admin",
            "-p",
            "Adm1n-pw-not-secret",
            "-e",
            "a@example.com",
            "-t",
            "2",
        ],
        vec!["checkmigrations", "--bundle", b, "-t", "2"],
        vec!["lockedmigrate", "--bundle", b, "-t", "2"],
        vec!["lockedmigrate", "-t", "2", "--exec", "--", "true"],
    ];
    lines
        .into_iter()
        .map(|args| {
            let mut cmd = djinit();
            cmd.args(&args).args(["-v", "1"]).env("DATABASE_URL", url);
            (args.join(" "), cmd)
        })
        .collect()
}

#[test]
fn every_command_gives_up_on_a_server_that_never_answers() {
    let bundle = hostile::bundle(&[("0001_initial", "CREATE TABLE t (id int)")]);
    let before_login = fakes::hung_listener();
    let after_login = hostile::silent_after_login();
    for (when, url) in [
        ("before login", before_login.url()),
        ("after login", after_login.url()),
    ] {
        for (what, cmd) in every_pg_command(&url, bundle.path()) {
            let out = run(cmd, BOUNDED);
            assert_eq!(
                out.code,
                Some(75),
                "{what} against a server silent {when}: expected 75\n{}",
                out.report()
            );
            out.assert_no_secret(PASSWORD);
        }
    }
}

#[test]
fn dns_over_tcp_is_bounded_against_a_silent_or_trickling_nameserver() {
    for (what, dns) in [
        ("trickling", hostile::truncating_dns(hostile::trickle)),
        ("silent", hostile::truncating_dns(hostile::stall)),
    ] {
        let mut cmd = djinit();
        cmd.args([
            "dns-discover",
            "--nameserver",
            &dns.addr().to_string(),
            "memcached.test",
        ]);
        let out = run(cmd, BOUNDED);
        assert!(
            !out.timed_out && out.code == Some(75),
            "a {what} nameserver over TCP: expected 75 within the resolver's timeout\n{}",
            out.report()
        );
    }
}

// ---- notices: streamed, never collected (item 5) -----------------------------------------------

#[test]
fn a_migration_raising_300000_notices_applies_within_the_default_memory_limit() {
    let pg = Cluster::start(Auth::Scram);
    let bundle = hostile::bundle(&[(
        "0001_notices",
        // 300,000 notices of ~250 bytes: 75 MB if kept, over the default 64 MiB.
        "DO $$ BEGIN FOR i IN 1..300000 LOOP RAISE NOTICE 'tick % %', i, repeat('x', 200); END LOOP; END $$",
    )]);
    let mut cmd = djinit();
    cmd.args(["lockedmigrate", "--bundle"])
        .arg(bundle.path())
        .args(["-v", "2"])
        .env("DATABASE_URL", pg.url());
    let out = run(cmd, RUN_LIMIT);
    // The figure for the report: the runner's whole process, wasmtime included.
    eprintln!(
        "300,000 notices: peak RSS {} KiB, {:.1}s",
        out.max_rss_kib,
        out.elapsed.as_secs_f64()
    );
    out.assert_code(0)
        .assert_stderr_contains("NOTICE 00000: tick 1")
        .assert_stderr_contains("more server notices not shown");
    // Rate-limited: a few hundred lines at most, not 300,000.
    assert!(
        out.stderr.lines().count() < 2000,
        "{}",
        out.stderr.lines().count()
    );
    assert_eq!(
        pg.psql("SELECT count(*) FROM django_migrations WHERE name = '0001_notices'"),
        "1"
    );
}

#[test]
fn a_notice_flood_after_login_ends_at_the_timeout_not_the_memory_limit() {
    let fake = hostile::flood_after_login(msg::notice("flood"));
    let bundle = hostile::bundle(&[("0001_initial", "CREATE TABLE t (id int)")]);
    let mut wait = djinit();
    wait.args(["wait4db", "-s", "0", "-t", "3"])
        .env("DATABASE_URL", fake.url());
    let mut migrate = djinit();
    migrate
        .args(["lockedmigrate", "-t", "3", "-v", "2", "--bundle"])
        .arg(bundle.path())
        .env("DATABASE_URL", fake.url());
    for cmd in [wait, migrate] {
        let out = run(cmd, BOUNDED);
        out.assert_code(75);
        assert!(out.stderr.lines().count() < 500, "{}", out.report());
    }
}

// ---- secrets echoed by the server (item 7) -----------------------------------------------------

#[test]
fn a_password_hash_echoed_in_a_server_error_is_redacted() {
    let pg = Cluster::start(Auth::Scram);
    let table = std::fs::read_to_string(
        crate::harness::workspace_root().join("tests/fixtures/ensureadmin_auth_user.sql"),
    )
    .unwrap();
    pg.psql(&table);
    pg.psql("ALTER TABLE auth_user ADD CONSTRAINT no_superusers_here CHECK (NOT is_superuser)");
    let salt = "Xq3vR8tLw2ZkP9mB4nC7dF";
    let digest = "1fFCQbHIEi3roCrP8o2+J3CmX6o+vPxoKzxTHn4azeU=";
    let hash = format!("pbkdf2_sha256$1000000${salt}${digest}");
    let mut cmd = djinit();
    cmd.args([
        "ensureadmin",
        "-u",
        "admin",
        "-e",
        "admin@example.com",
        "-v",
        "3",
    ])
    .args(["--password-hash", &hash])
    .env("DATABASE_URL", pg.url());
    let out = run(cmd, RUN_LIMIT);
    out.assert_code(65)
        .assert_stderr_contains("no_superusers_here")
        .assert_stderr_contains("Failing row contains")
        .assert_stderr_contains("[redacted]");
    for secret in [hash.as_str(), salt, digest] {
        out.assert_no_secret(secret);
    }
}

// ---- terminal escapes (item 9) -----------------------------------------------------------------

#[test]
fn terminal_escapes_from_the_server_and_the_bundle_are_written_out() {
    let fake = scripted(|c| {
        c.login();
        if c.read_query() {
            c.send(
                &[
                    msg::error_bytes("XX000", b"boom\x1b[2J\x1b]0;owned\x07\xc2\x9b end"),
                    msg::ready(),
                ]
                .concat(),
            );
        }
        let _ = c.read_msg();
    });
    let out = wait4db(&fake.url(), "5");
    out.assert_code(65)
        .assert_stderr_contains(r"boom\x1b[2J\x1b]0;owned\x07\x9b end");
    assert!(
        !out.stderr.contains(['\x1b', '\x07', '\u{9b}']),
        "{}",
        out.report()
    );

    let pg = Cluster::start(Auth::Scram);
    let bundle = hostile::bundle(&[(
        "0001_\x1b[2J\x1b]0;title\x07",
        "DO $$ BEGIN RAISE NOTICE 'bell%', chr(7) || chr(27) || '[31m'; END $$",
    )]);
    let mut cmd = djinit();
    cmd.args(["lockedmigrate", "-v", "2", "--bundle"])
        .arg(bundle.path())
        .env("DATABASE_URL", pg.url());
    let out = run(cmd, RUN_LIMIT);
    out.assert_code(0)
        .assert_stderr_contains(r"bell\x07\x1b[31m");
    assert!(
        out.stdout
            .contains(r"Applying hostile.0001_\x1b[2J\x1b]0;title\x07... OK"),
        "{}",
        out.report()
    );
    for text in [&out.stdout, &out.stderr] {
        assert!(!text.contains(['\x1b', '\x07']), "{}", out.report());
    }
}

// ---- message size cap vs the memory limit (issue 9) --------------------------------------------

/// djinit_pg's `MAX_MESSAGE_LEN` (8 MiB), the length field of the largest message accepted.
const MAX_MESSAGE_LEN: usize = 8 << 20;

#[test]
fn messages_over_the_cap_are_refused_and_under_it_fit_the_default_memory() {
    // One byte over: refused from its header (76).
    let fake = scripted(|c| {
        c.login();
        if c.read_query() {
            let mut m = vec![b'D'];
            m.extend_from_slice(&((MAX_MESSAGE_LEN + 1) as u32).to_be_bytes());
            c.send(&m);
            c.hold();
        }
    });
    wait4db(&fake.url(), "10")
        .assert_code(76)
        .assert_stderr_contains(&format!("claims a length of {} bytes", MAX_MESSAGE_LEN + 1));

    // At the cap, a row: read whole (an answer wait4db does not expect: 76, not 71).
    let fake = scripted(|c| {
        c.login();
        if c.read_query() {
            let value = "1".repeat(MAX_MESSAGE_LEN - 4 - 2 - 4);
            c.send(&[msg::row_description("?column?"), msg::data_row(&value)].concat());
            c.send(&[msg::command_complete("SELECT 1"), msg::ready()].concat());
            c.hold();
        }
    });
    let out = wait4db(&fake.url(), "10");
    eprintln!("an 8 MiB row: peak RSS {} KiB", out.max_rss_kib);
    out.assert_code(76)
        .assert_stderr_contains("unexpected answer");

    // At the cap, an error: read whole, its text cut to a line (65, not 71).
    let fake = scripted(|c| {
        c.login();
        if c.read_query() {
            let overhead = 4 + "SERROR\0VERROR\0CXX000\0M".len() + 2;
            let text = vec![b'e'; MAX_MESSAGE_LEN - overhead];
            c.send(&[msg::error_bytes("XX000", &text), msg::ready()].concat());
            c.hold();
        }
    });
    let out = wait4db(&fake.url(), "10");
    eprintln!("an 8 MiB error: peak RSS {} KiB", out.max_rss_kib);
    out.assert_code(65).assert_stderr_contains("more bytes)");
    assert!(
        out.stderr.len() < 64 << 10,
        "{} bytes of stderr",
        out.stderr.len()
    );
}

// ---- long migration statements: watched, not bounded (item 3) ----------------------------------

#[test]
fn a_blocked_migration_statement_says_what_blocks_it() {
    let pg = Cluster::start(Auth::Scram);
    pg.psql("CREATE TABLE blocked_t (id int)");
    let bundle = hostile::bundle(&[("0001_alter", "ALTER TABLE blocked_t ADD COLUMN x int")]);
    std::thread::scope(|s| {
        let holder = s.spawn(|| {
            pg.psql(
                "BEGIN; LOCK TABLE blocked_t IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(12); COMMIT;",
            )
        });
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while pg.psql("SELECT count(*) FROM pg_locks WHERE relation = 'blocked_t'::regclass AND mode = 'AccessExclusiveLock' AND granted") != "1" {
            assert!(std::time::Instant::now() < deadline, "the holder never took its lock");
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut cmd = djinit();
        // -t 2: the migration's own statement is not bounded by it. --ddl-lock-timeout 0: the
        // unguarded wait is what this test watches (the guard has its own tests, ddl_guard.rs).
        cmd.args([
            "lockedmigrate",
            "-t",
            "2",
            "--ddl-lock-timeout",
            "0",
            "--bundle",
        ])
        .arg(bundle.path())
        .env("DATABASE_URL", pg.url());
        let out = run(cmd, RUN_LIMIT);
        holder.join().unwrap();
        eprintln!("{}", out.stderr);
        out.assert_code(0)
            .assert_stderr_contains(
                "applying hostile.0001_alter: waiting 5s for the server: backend pid",
            )
            .assert_stderr_contains("waiting for Lock: relation")
            .assert_stderr_contains("blocked by pid");
        assert!(
            out.stdout.contains("Applying hostile.0001_alter... OK"),
            "{}",
            out.report()
        );
    });
}

/// A cluster, and `lockedmigrate` applying one migration running `sql` through a proxy that
/// goes half-open once the client sent `pg_sleep` (see `hostile::swallowing_proxy`).
struct BehindProxy {
    pg: Cluster,
    _proxy: hostile::Proxy,
    _bundle: tempfile::TempDir,
    cmd: Command,
}

fn lockedmigrate_behind_a_swallowing_proxy(sql: &str) -> BehindProxy {
    let pg = Cluster::start(Auth::Scram);
    let proxy = hostile::swallowing_proxy(pg.port(), b"pg_sleep");
    let bundle = hostile::bundle(&[("0001_sleep", sql)]);
    let url = pg
        .url()
        .replace(&format!(":{}/", pg.port()), &format!(":{}/", proxy.port()));
    let mut cmd = djinit();
    cmd.args(["lockedmigrate", "--bundle"])
        .arg(bundle.path())
        .env("DATABASE_URL", &url);
    BehindProxy {
        pg,
        _proxy: proxy,
        _bundle: bundle,
        cmd,
    }
}

#[test]
fn a_half_open_connection_during_a_migration_is_detected() {
    // The answer to the migration's statement is lost on the way back; the server goes idle.
    let BehindProxy {
        pg,
        cmd,
        _proxy,
        _bundle,
    } = lockedmigrate_behind_a_swallowing_proxy("SELECT pg_sleep(1)");
    let out = run(cmd, BOUNDED);
    out.assert_code(69)
        .assert_stderr_contains("the connection is half-open")
        .assert_stderr_contains("applying hostile.0001_sleep failed");
    out.assert_no_secret(PASSWORD);
    // Never committed: the server rolled the transaction back when the session ended, or it is
    // still open; either way no row.
    assert!(
        pg.psql("SELECT count(*) FROM pg_class WHERE relname = 'django_migrations'") == "0"
            || pg.psql("SELECT count(*) FROM django_migrations") == "0",
        "the migration was recorded"
    );
}

#[test]
fn a_migration_whose_backend_is_gone_is_detected_on_a_silent_connection() {
    // The proxy keeps our side of the connection open and silent after the statement went out,
    // so the backend's end (terminated below) never reaches the client as a close.
    let BehindProxy {
        pg,
        cmd,
        _proxy,
        _bundle,
    } = lockedmigrate_behind_a_swallowing_proxy("SELECT pg_sleep(60)");
    let running = crate::harness::spawn(cmd);
    let running_sleep =
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%'";
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while pg.psql(running_sleep) != "1" {
        assert!(
            std::time::Instant::now() < deadline,
            "the migration never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%'");
    let out = running.wait(BOUNDED);
    out.assert_code(69)
        .assert_stderr_contains("the server has no session with our backend pid")
        .assert_stderr_contains("applying hostile.0001_sleep failed");
}
