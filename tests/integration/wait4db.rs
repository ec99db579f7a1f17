//! `djinit wait4db` against real clusters and misbehaving fakes: exit codes, deadlines, the
//! stability window, configuration sources, and that no password ever reaches the output.
//!
//! Exit codes (djinit-cli's table): 0 ready, 64 usage, 69 unavailable, 75 timed out,
//! 76 protocol garbage, 77 authentication failed, 78 configuration.

use crate::harness::{
    djinit, fakes, free_port, run, Auth, Cluster, Output, PASSWORD, WRONG_PASSWORD,
};
use std::thread;
use std::time::Duration;

/// Every run is killed after this, so a hanging command fails its test instead of hanging it.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// `djinit wait4db <args>` with `DATABASE_URL=<url>` and nothing else in the environment.
fn wait4db(url: &str, args: &[&str]) -> Output {
    wait4db_env(&[("DATABASE_URL", url.to_string())], args)
}

/// `djinit wait4db <args>` with exactly `env` (plus PATH).
fn wait4db_env(env: &[(&str, String)], args: &[&str]) -> Output {
    let mut cmd = djinit();
    cmd.arg("wait4db").args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(cmd, RUN_LIMIT)
}

/// A URL to 127.0.0.1 on a port where nothing listens.
fn nothing_listening_url() -> String {
    format!(
        "postgres://postgres:{}@127.0.0.1:{}/postgres",
        crate::harness::percent_encode(PASSWORD),
        free_port()
    )
}

fn assert_within(out: &Output, limit: Duration) {
    assert!(
        out.elapsed <= limit,
        "took {:.2}s, limit {:.2}s\n{}",
        out.elapsed.as_secs_f64(),
        limit.as_secs_f64(),
        out.report()
    );
}

// ---- ready databases -------------------------------------------------------------------------

#[test]
fn ready_database_exits_0_at_first_success_with_stable_0() {
    let pg = Cluster::start(Auth::Scram);
    let out = wait4db(&pg.url(), &["-s", "0", "-t", "10"]);
    out.assert_code(0).assert_no_secret(PASSWORD);
    // Generous: a ready local database answers in milliseconds.
    assert_within(&out, Duration::from_secs(5));
}

#[test]
fn ready_database_waits_out_the_stable_window() {
    let pg = Cluster::start(Auth::Scram);
    let out = wait4db(&pg.url(), &["-s", "1.5", "-i", "0.2", "-t", "20"]);
    out.assert_code(0);
    assert!(
        out.elapsed >= Duration::from_millis(1500),
        "returned before the 1.5 s stability window ended\n{}",
        out.report()
    );
}

#[test]
fn database_that_comes_up_2s_late_exits_0() {
    let mut pg = Cluster::start(Auth::Scram);
    let url = pg.url();
    pg.stop();
    let out = thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(Duration::from_secs(2));
            pg.start_again();
        });
        wait4db(&url, &["-s", "0", "-i", "0.2", "-t", "30"])
    });
    out.assert_code(0).assert_no_secret(PASSWORD);
    assert!(
        out.elapsed >= Duration::from_secs(2),
        "ready before the server was started?\n{}",
        out.report()
    );
}

#[test]
fn stop_and_start_inside_the_stable_window_resets_it_and_exits_0() {
    let mut pg = Cluster::start(Auth::Scram);
    let url = pg.url();
    let out = thread::scope(|s| {
        s.spawn(|| {
            thread::sleep(Duration::from_secs(1));
            pg.stop();
            thread::sleep(Duration::from_secs(1)); // down long enough for probes to see it
            pg.start_again();
        });
        wait4db(&url, &["-s", "3", "-i", "0.2", "-t", "40"])
    });
    out.assert_code(0).assert_no_secret(PASSWORD);
    let err = out.stderr.to_lowercase();
    assert!(
        err.contains("starting over") || err.contains("reset"),
        "stderr does not show the stability window being reset\n{}",
        out.report()
    );
    // Window restarted after the server came back at ~2 s: at least 2 + 3 s in all.
    assert!(out.elapsed >= Duration::from_secs(5), "{}", out.report());
}

// ---- never ready -----------------------------------------------------------------------------

#[test]
fn never_up_times_out_with_75_within_timeout_plus_1s() {
    let out = wait4db(&nothing_listening_url(), &["-t", "2", "-i", "0.2"]);
    out.assert_code(75).assert_no_secret(PASSWORD);
    assert_within(&out, Duration::from_secs(3));
}

#[test]
fn fractional_timeout_is_honoured() {
    let out = wait4db(&nothing_listening_url(), &["-t", "0.5", "-i", "0.1"]);
    out.assert_code(75);
    assert_within(&out, Duration::from_millis(1500));
}

#[test]
fn hung_tcp_listener_times_out_with_75_within_the_deadline() {
    let fake = fakes::hung_listener();
    let out = wait4db(&fake.url(), &["-t", "2", "-i", "0.2"]);
    out.assert_code(75).assert_no_secret(PASSWORD);
    assert_within(&out, Duration::from_secs(3));
    assert!(
        fake.accepted() >= 1,
        "wait4db never connected to the hung listener"
    );
}

#[test]
fn garbage_server_exits_76_with_a_clear_message() {
    let fake = fakes::garbage_server(&b"HTTP/1.1 400 Bad Request\r\n\r\n"[..]);
    let out = wait4db(&fake.url(), &["-t", "10", "-i", "0.2"]);
    out.assert_code(76).assert_no_secret(PASSWORD);
    let err = out.stderr.to_lowercase();
    assert!(
        err.contains("protocol") || err.contains("not a postgresql"),
        "stderr does not say the peer is not speaking PostgreSQL\n{}",
        out.report()
    );
    assert!(
        out.stderr.contains(&format!("127.0.0.1:{}", fake.port())),
        "stderr does not name the server\n{}",
        out.report()
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.report());
}

// ---- authentication and configuration ----------------------------------------------------------

#[test]
fn wrong_password_exits_77_and_never_shows_the_password() {
    for auth in [Auth::Scram, Auth::Md5, Auth::Password] {
        let pg = Cluster::start(auth);
        let url = pg.url_for("postgres", WRONG_PASSWORD, "postgres");
        for verbosity in ["1", "3"] {
            let out = wait4db(&url, &["-t", "10", "-i", "0.2", "-v", verbosity]);
            out.assert_code(77)
                .assert_no_secret(WRONG_PASSWORD)
                .assert_no_secret(PASSWORD);
            assert!(
                out.stderr.to_lowercase().contains("auth")
                    || out.stderr.to_lowercase().contains("password"),
                "{auth:?}: stderr does not say authentication failed\n{}",
                out.report()
            );
        }
    }
}

#[test]
fn unknown_database_exits_78_naming_it() {
    let pg = Cluster::start(Auth::Scram);
    let out = wait4db(
        &pg.url_for("postgres", PASSWORD, "no_such_db"),
        &["-t", "10", "-i", "0.2"],
    );
    out.assert_code(78).assert_stderr_contains("no_such_db");
}

#[test]
fn every_auth_method_exits_0() {
    for auth in [Auth::Trust, Auth::Password, Auth::Md5, Auth::Scram] {
        let pg = Cluster::start(auth);
        // The superuser, and an ordinary role whose password needs URL-encoding too.
        let app_password = "App/pw:with@specials#?%-9";
        pg.create_user("app_user", app_password);
        pg.create_database("app_db");
        for url in [pg.url(), pg.url_for("app_user", app_password, "app_db")] {
            let out = wait4db(&url, &["-s", "0", "-t", "10", "-v", "3"]);
            if out.code != Some(0) {
                panic!("{auth:?}: expected exit 0\n{}", out.report());
            }
            out.assert_no_secret(PASSWORD)
                .assert_no_secret(app_password);
        }
    }
}

#[test]
fn libpq_variables_alone_exit_0() {
    let pg = Cluster::start(Auth::Scram);
    let out = wait4db_env(&pg.pg_env(), &["-s", "0", "-t", "10"]);
    out.assert_code(0).assert_no_secret(PASSWORD);
}

#[test]
fn missing_database_url_exits_78_naming_the_variable() {
    let out = wait4db_env(&[], &["-s", "0", "-t", "5"]);
    out.assert_code(78).assert_stderr_contains("DATABASE_URL");
}

#[test]
fn replica_alias_reads_database_url_replica() {
    let pg = Cluster::start(Auth::Scram);
    // `default` points nowhere: success proves the replica URL was the one used.
    let env = [
        ("DATABASE_URL", nothing_listening_url()),
        ("DATABASE_URL_REPLICA", pg.url()),
    ];
    wait4db_env(&env, &["-d", "replica", "-s", "0", "-t", "10"])
        .assert_code(0)
        .assert_no_secret(PASSWORD);
}

#[test]
fn missing_alias_exits_78_naming_the_variable() {
    let pg = Cluster::start(Auth::Trust);
    let out = wait4db(&pg.url(), &["-d", "missing", "-s", "0", "-t", "5"]);
    out.assert_code(78)
        .assert_stderr_contains("DATABASE_URL_MISSING")
        .assert_no_secret(PASSWORD);
    assert_eq!(
        out.stderr.trim().lines().count(),
        1,
        "expected one line on stderr\n{}",
        out.report()
    );
}

// ---- the command line ----------------------------------------------------------------------------

#[test]
fn invalid_flags_exit_64_with_one_line() {
    let url = nothing_listening_url();
    for args in [
        &["-t", "abc"][..],
        &["--bogus"][..],
        &["-s", "-1"][..],
        &["-v", "9"][..],
        &["unexpected-positional"][..],
    ] {
        let out = wait4db(&url, args);
        if out.code != Some(64) {
            panic!("{args:?}: expected exit 64\n{}", out.report());
        }
        assert_eq!(
            out.stderr.trim().lines().count(),
            1,
            "{args:?}: expected one line on stderr\n{}",
            out.report()
        );
    }
}

#[test]
fn help_exits_0_and_lists_flags_and_exit_codes() {
    let out = wait4db_env(&[], &["--help"]);
    out.assert_code(0);
    for needle in [
        "--timeout",
        "--stable",
        "--interval",
        "--database",
        "75",
        "77",
        "78",
    ] {
        assert!(
            out.stdout.contains(needle),
            "help lacks {needle:?}\n{}",
            out.report()
        );
    }
}

#[test]
fn verbosity_0_is_silent_on_success() {
    let pg = Cluster::start(Auth::Scram);
    let out = wait4db(&pg.url(), &["-s", "0", "-t", "10", "-v", "0"]);
    out.assert_code(0);
    assert_eq!(out.stderr, "", "{}", out.report());
    assert_eq!(out.stdout, "", "{}", out.report());
}

// ---- log format ------------------------------------------------------------------------------

/// Each stderr line of `out` as a JSON object with the keys every line has.
fn json_lines(out: &Output) -> Vec<serde_json::Value> {
    let lines: Vec<serde_json::Value> = out
        .stderr
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}\n{}", out.report()));
            for key in ["time", "level", "command", "message"] {
                assert!(v.get(key).is_some(), "no {key:?} in {l}");
            }
            v
        })
        .collect();
    assert!(!lines.is_empty(), "{}", out.report());
    lines
}

#[test]
fn log_format_json_gives_one_object_per_line_with_attempts_and_the_exit_code() {
    let url = nothing_listening_url();
    let out = wait4db(
        &url,
        &["--log-format", "json", "-t", "1", "-i", "200ms", "-v", "2"],
    );
    out.assert_code(75).assert_no_secret(PASSWORD);
    let lines = json_lines(&out);
    assert!(lines.iter().all(|l| l["command"] == "wait4db"));
    let attempts: Vec<_> = lines
        .iter()
        .filter(|l| l["event"] == "attempt_failed")
        .collect();
    assert!(attempts.len() >= 2, "{}", out.report());
    assert_eq!(attempts[0]["attempt"], 1);
    assert!(attempts[0]["elapsed_s"].is_number());
    let last = lines.last().unwrap();
    assert_eq!(last["level"], "error");
    assert_eq!(last["exit_code"], 75);
    assert_eq!(last["retry_may_help"], true);

    // The same through the environment, the runner passing it on; its own usage errors too.
    let out = wait4db_env(
        &[
            ("DATABASE_URL", url.clone()),
            ("DJINIT_LOG_FORMAT", "json".into()),
        ],
        &["-t", "0.3"],
    );
    out.assert_code(75);
    assert_eq!(json_lines(&out).last().unwrap()["exit_code"], 75);
    let out = wait4db(&url, &["--log-format", "yaml"]);
    out.assert_code(64)
        .assert_stderr_contains("expects text or json");
    let out = wait4db_env(&[("DJINIT_LOG_FORMAT", "xml".into())], &[]);
    out.assert_code(64)
        .assert_stderr_contains("DJINIT_LOG_FORMAT: expects text or json");
}
