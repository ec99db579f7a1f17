//! `djinit dns-discover` against an in-process DNS server (records changed while it runs,
//! NXDOMAIN, SERVFAIL, silence, truncated UDP answers), the host resolver, real memcached servers
//! on 127.0.0.2-4, and the Django cache backend (real Django + pymemcache) reading its file.
//!
//! Exit codes (djinit-cli's table): 0 found, 1 fewer than --min on a single attempt, 64 usage,
//! 69 NXDOMAIN/SERVFAIL/host lookup failure, 75 no reply or --min not met by --timeout,
//! 77 denied by the runner's policy, 78 no nameserver; SIGTERM ends `--watch` normally (0).

use crate::harness::{
    common_free_port, djinit, precompiled, python, run, workspace_root, DnsServer, Malformation,
    Memcached, Output,
};
use crate::runner::run_keeping_stdout;
use djinit_tests::process::spawn;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const RUN_LIMIT: Duration = Duration::from_secs(60);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// `djinit dns-discover --nameserver <dns> <args>`.
fn dd(dns: &DnsServer, args: &[&str]) -> Command {
    let mut c = djinit();
    c.arg("dns-discover")
        .arg("--nameserver")
        .arg(dns.addr().to_string())
        .args(args);
    c
}

/// The component run directly (`djinit run FILE`), with only what `grants` allow.
fn direct(grants: &[String], args: &[&str]) -> Command {
    let mut c = djinit();
    c.arg("run")
        .args(grants)
        .arg(precompiled("dns-discover"))
        .args(args);
    c
}

fn lines(out: &Output) -> Vec<String> {
    out.stdout.lines().map(str::to_string).collect()
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// Wait until `f` holds, polling; panics with `what` after `limit`.
fn eventually(limit: Duration, what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
    start.elapsed()
}

// ---- resolution ------------------------------------------------------------------------------

#[test]
fn a_and_aaaa_sorted_deduplicated_in_every_format() {
    let dns = DnsServer::start();
    dns.set_addrs(
        "mc.test",
        &[ip("127.0.0.3"), ip("::1"), ip("127.0.0.2"), ip("127.0.0.3")],
    );
    let out = run(dd(&dns, &["mc.test"]), RUN_LIMIT);
    out.assert_success();
    assert_eq!(
        lines(&out),
        ["127.0.0.2:11211", "127.0.0.3:11211", "[::1]:11211"]
    );
    let csv = run(
        dd(&dns, &["mc.test", "-p", "11300", "-f", "csv"]),
        RUN_LIMIT,
    );
    assert_eq!(csv.stdout, "127.0.0.2:11300,127.0.0.3:11300,[::1]:11300\n");
    let json = run(dd(&dns, &["mc.test:11300", "--format=json"]), RUN_LIMIT);
    assert_eq!(
        json.stdout,
        "[\"127.0.0.2:11300\",\"127.0.0.3:11300\",\"[::1]:11300\"]\n"
    );
    let env = run(
        dd(&dns, &["mc.test", "-f", "env", "--var", "MC"]),
        RUN_LIMIT,
    );
    assert_eq!(
        env.stdout,
        "MC=127.0.0.2:11211,127.0.0.3:11211,[::1]:11211\n"
    );
    // DJANGO_CACHE_HOST when no HOST argument.
    let out = run(dd(&dns, &[]).env("DJANGO_CACHE_HOST", "mc.test"), RUN_LIMIT);
    assert_eq!(lines(&out).len(), 3, "{}", out.report());
}

#[test]
fn search_domains_and_ndots_from_the_resolv_conf_handed_over() {
    let dns = DnsServer::start();
    dns.set_addrs("mc.ns1.test", &[ip("127.0.0.7")]);
    // The runner passes resolv.conf content in DJINIT_RESOLV_CONF; a given one wins over the host's.
    let conf = format!(
        "nameserver {}\nsearch ns1.test\noptions ndots:2 timeout:1 attempts:1\n",
        dns.addr().ip()
    );
    let mut c = djinit();
    c.args([
        "dns-discover",
        "--nameserver",
        &dns.addr().to_string(),
        "mc",
    ])
    .env("DJINIT_RESOLV_CONF", conf);
    let out = run(c, RUN_LIMIT);
    out.assert_success();
    assert_eq!(out.stdout, "127.0.0.7:11211\n");
}

#[test]
fn nxdomain_servfail_and_timeout_are_distinct() {
    let dns = DnsServer::start();
    let out = run(dd(&dns, &["gone.test"]), RUN_LIMIT);
    out.assert_code(69).assert_stderr_contains("NXDOMAIN");
    dns.set_addrs("sick.test", &[ip("127.0.0.2")]);
    dns.set_servfail("sick.test", true);
    let out = run(dd(&dns, &["sick.test"]), RUN_LIMIT);
    out.assert_code(69).assert_stderr_contains("SERVFAIL");
    dns.set_silent("mute.test", true);
    let mut c = dd(&dns, &["mute.test"]);
    c.env("DJINIT_RESOLV_CONF", "options timeout:1 attempts:1\n");
    let out = run(c, RUN_LIMIT);
    out.assert_code(75).assert_stderr_contains("no reply");
    assert!(out.elapsed < Duration::from_secs(1 + 5), "{}", out.report());
    // NODATA (the name exists, no addresses) is zero endpoints: below the default --min 1.
    dns.set_addrs("empty.test", &[]);
    run(dd(&dns, &["empty.test"]), RUN_LIMIT)
        .assert_code(1)
        .assert_stderr_contains("0 endpoints found");
    run(dd(&dns, &["empty.test", "--min", "0"]), RUN_LIMIT).assert_success();
}

#[test]
fn malformed_answers_exit_76_at_once() {
    let dns = DnsServer::start();
    for how in [
        Malformation::CompressionLoop,
        Malformation::ImpossibleCount,
        Malformation::TruncatedRecord,
    ] {
        let name = format!("{how:?}.test").to_lowercase();
        dns.set_addrs(&name, &[ip("127.0.0.2")]);
        dns.set_malformed(&name, Some(how));
        let mut c = dd(&dns, &[&name, "--timeout", "30"]);
        // A wait for a valid reply would take 5 s per try and end in 75.
        c.env("DJINIT_RESOLV_CONF", "options timeout:5 attempts:2\n");
        let out = run(c, RUN_LIMIT);
        out.assert_code(76)
            .assert_stderr_contains("malformed reply");
        assert!(
            out.elapsed < Duration::from_secs(5),
            "{how:?}: waited for a timeout\n{}",
            out.report()
        );
    }
}

#[test]
fn a_closed_stdout_is_not_a_crash() {
    let dns = DnsServer::start();
    dns.set_addrs("mc.test", &[ip("127.0.0.2")]);
    // The reader is gone before the command writes (as after `| head -1`).
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut c = dd(&dns, &["mc.test"]);
    c.stdout(writer);
    let out = run_keeping_stdout(c);
    assert_eq!(out.0, Some(0), "stderr: {}", out.1);
    assert!(!out.1.contains("crashed"), "{}", out.1);
}

#[test]
fn truncated_udp_answer_is_asked_again_over_tcp() {
    let dns = DnsServer::start();
    dns.set_addrs("big.test", &[ip("127.0.0.2"), ip("127.0.0.4")]);
    dns.set_truncate("big.test", true);
    let out = run(dd(&dns, &["big.test"]), RUN_LIMIT);
    out.assert_success();
    assert_eq!(lines(&out), ["127.0.0.2:11211", "127.0.0.4:11211"]);
    assert!(
        dns.tcp_queries() >= 2,
        "A and AAAA over TCP: {}",
        dns.tcp_queries()
    );
}

#[test]
fn srv_records_give_hosts_and_ports() {
    let dns = DnsServer::start();
    dns.set_srv(
        "_memcache._tcp.mc.test",
        &[
            (0, 10, 11300, "mc-0.mc.test"),
            (0, 10, 11301, "mc-1.mc.test"),
            (0, 0, 1, "."),
        ],
    );
    dns.set_addrs("mc-0.mc.test", &[ip("127.0.0.2")]);
    dns.set_addrs("mc-1.mc.test", &[ip("127.0.0.3"), ip("::1")]);
    let out = run(dd(&dns, &["--srv", "_memcache._tcp.mc.test"]), RUN_LIMIT);
    out.assert_success();
    assert_eq!(
        lines(&out),
        ["127.0.0.2:11300", "127.0.0.3:11301", "[::1]:11301"]
    );
    run(dd(&dns, &["--srv", "x.test", "--port", "1"]), RUN_LIMIT).assert_code(64);
}

#[test]
fn localhost_through_the_host_resolver() {
    // The oracle: what the host's resolver says (both 127.0.0.1 and ::1 where the machine has them).
    let mut want: Vec<String> = ("localhost", 11211)
        .to_socket_addrs()
        .unwrap()
        .map(|a| a.to_string())
        .collect();
    want.sort_by_key(|s| s.parse::<SocketAddr>().unwrap());
    want.dedup();
    let mut c = djinit();
    c.args(["dns-discover", "localhost"]);
    let out = run(c, RUN_LIMIT);
    out.assert_success();
    assert_eq!(lines(&out), want);
    let mut c = djinit();
    c.args(["dns-discover", "nothing.invalid"]);
    run(c, RUN_LIMIT).assert_code(69);
}

#[test]
fn bad_input_and_missing_nameserver() {
    let dns = DnsServer::start();
    for bad in [
        &["mc.test", "--format", "xml"][..],
        &["bad name"],
        &["mc.test", "--bogus"],
        &[],
    ] {
        run(dd(&dns, bad), RUN_LIMIT).assert_code(64);
    }
    // --srv without --nameserver and an empty resolv.conf: configuration error.
    let mut c = djinit();
    c.args(["dns-discover", "--srv", "_m._tcp.mc.test"])
        .env("DJINIT_RESOLV_CONF", "");
    run(c, RUN_LIMIT)
        .assert_code(78)
        .assert_stderr_contains("nameserver");
}

// ---- waiting for --min -------------------------------------------------------------------------

#[test]
fn min_waits_for_records_added_later_and_times_out_with_75() {
    let dns = DnsServer::start();
    dns.set_addrs("mc.test", &[ip("127.0.0.2")]);
    run(dd(&dns, &["mc.test", "--min", "2"]), RUN_LIMIT).assert_code(1);
    let out = run(
        dd(&dns, &["mc.test", "--min", "2", "-t", "1", "-i", "0.1"]),
        RUN_LIMIT,
    );
    out.assert_code(75)
        .assert_stderr_contains("1 endpoint found, 2 required");
    assert!(out.elapsed < Duration::from_secs(1 + 5), "{}", out.report());
    // A Service being created: NXDOMAIN first, then records.
    let mut c = dd(&dns, &["later.test", "--min", "2", "-t", "20", "-i", "0.1"]);
    let running = spawn(&mut c);
    std::thread::sleep(Duration::from_millis(400));
    dns.set_addrs("later.test", &[ip("127.0.0.2")]);
    std::thread::sleep(Duration::from_millis(300));
    dns.set_addrs("later.test", &[ip("127.0.0.2"), ip("127.0.0.3")]);
    let out = running.wait(RUN_LIMIT);
    out.assert_success().assert_stderr_contains("NXDOMAIN");
    assert_eq!(lines(&out), ["127.0.0.2:11211", "127.0.0.3:11211"]);
}

// ---- memcached: probing, watching, atomic output ---------------------------------------------------

fn three_memcached() -> (Vec<Memcached>, u16) {
    let ips = [ip("127.0.0.2"), ip("127.0.0.3"), ip("127.0.0.4")];
    let port = common_free_port(&ips);
    (
        ips.iter().map(|i| Memcached::start(*i, port)).collect(),
        port,
    )
}

#[test]
fn probe_drops_a_killed_memcached() {
    let (mut mc, port) = three_memcached();
    let dns = DnsServer::start();
    dns.set_addrs(
        "mc.test",
        &mc.iter().map(|m| m.addr().ip()).collect::<Vec<_>>(),
    );
    let p = port.to_string();
    let out = run(dd(&dns, &["mc.test", "-p", &p, "--probe"]), RUN_LIMIT);
    out.assert_success();
    assert_eq!(lines(&out).len(), 3, "{}", out.report());
    mc[1].kill();
    let out = run(
        dd(&dns, &["mc.test", "-p", &p, "--probe", "-v", "2"]),
        RUN_LIMIT,
    );
    out.assert_success();
    assert_eq!(
        lines(&out),
        [format!("127.0.0.2:{port}"), format!("127.0.0.4:{port}")]
    );
    // Without the runner's probe grant (component run directly, UDP to the nameserver only),
    // every probe is denied: nothing is left.
    let ns = dns.addr().to_string();
    let grants = [
        "--allow-udp".to_string(),
        ns.clone(),
        "--allow-net".into(),
        ns.clone(),
    ];
    let out = run(
        direct(
            &grants,
            &[
                "--nameserver",
                &ns,
                "mc.test",
                "-p",
                &p,
                "--probe",
                "-v",
                "2",
            ],
        ),
        RUN_LIMIT,
    );
    out.assert_code(1)
        .assert_stderr_contains("permission denied");
    // Without the UDP grant the lookup itself is denied.
    let out = run(direct(&[], &["--nameserver", &ns, "mc.test"]), RUN_LIMIT);
    out.assert_code(77);
    let out = run(
        direct(&grants, &["--nameserver", &ns, "mc.test", "-p", &p]),
        RUN_LIMIT,
    );
    out.assert_success();
    assert_eq!(lines(&out).len(), 3);
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

#[test]
fn watch_adds_and_removes_within_one_interval_and_keeps_the_last_list() {
    let (_mc, port) = three_memcached();
    let dns = DnsServer::start();
    dns.set_addrs("mc.test", &[ip("127.0.0.2"), ip("127.0.0.3")]);
    let dir = tempdir();
    let file = dir.path().join("servers");
    let f = file.to_str().unwrap();
    let p = port.to_string();
    let interval = Duration::from_millis(300);
    let running = spawn(dd(
        &dns,
        &[
            "mc.test", "-p", &p, "--probe", "--watch", "-i", "0.3", "-o", f,
        ],
    ));
    let two = format!("127.0.0.2:{port}\n127.0.0.3:{port}\n");
    eventually(Duration::from_secs(10), "first list", || read(&file) == two);
    // Added: visible within one interval (plus generous slack for a loaded machine).
    dns.set_addrs(
        "mc.test",
        &[ip("127.0.0.2"), ip("127.0.0.3"), ip("127.0.0.4")],
    );
    let three = format!("{two}127.0.0.4:{port}\n");
    eventually(interval + Duration::from_secs(2), "added endpoint", || {
        read(&file) == three
    });
    // Removed.
    dns.set_addrs("mc.test", &[ip("127.0.0.2"), ip("127.0.0.4")]);
    let removed = format!("127.0.0.2:{port}\n127.0.0.4:{port}\n");
    eventually(
        interval + Duration::from_secs(2),
        "removed endpoint",
        || read(&file) == removed,
    );
    // Failing lookups keep the last good list.
    dns.set_servfail("mc.test", true);
    std::thread::sleep(interval * 4);
    assert_eq!(read(&file), removed);
    dns.set_servfail("mc.test", false);
    dns.remove("mc.test");
    std::thread::sleep(interval * 3);
    assert_eq!(read(&file), removed);
    // No other file was left in the directory.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["servers"]);
    // A Pod's every stop sends SIGTERM: for --watch that is the normal end, exit 0 with one line.
    running.signal(libc::SIGTERM);
    let out = running.wait(RUN_LIMIT);
    out.assert_code(0);
    out.assert_stderr_contains("stopped by SIGTERM: normal shutdown");
    out.assert_stderr_contains(&format!("added 127.0.0.4:{port}"));
    out.assert_stderr_contains(&format!("removed 127.0.0.3:{port}"));
    out.assert_stderr_contains("SERVFAIL");
    out.assert_stderr_contains("keeping the last good list");
}

#[test]
fn readers_never_see_a_half_written_file() {
    let dns = DnsServer::start();
    // Two lists of different lengths, switched back and forth while a reader loops.
    let a: Vec<IpAddr> = (1..=200u8).map(|i| IpAddr::from([10, 0, 1, i])).collect();
    let b: Vec<IpAddr> = (1..=120u8).map(|i| IpAddr::from([10, 0, 2, i])).collect();
    let render = |ips: &[IpAddr]| {
        let mut v: Vec<SocketAddr> = ips.iter().map(|i| SocketAddr::new(*i, 11211)).collect();
        v.sort();
        v.iter().map(|s| format!("{s}\n")).collect::<String>()
    };
    let (ra, rb) = (render(&a), render(&b));
    dns.set_addrs("many.test", &a);
    let dir = tempdir();
    let file = dir.path().join("servers");
    let running = spawn(dd(
        &dns,
        &[
            "many.test",
            "--watch",
            "-i",
            "0.05",
            "-o",
            file.to_str().unwrap(),
        ],
    ));
    eventually(Duration::from_secs(10), "first list", || read(&file) == ra);
    let (mut reads, mut switches, mut seen_b) = (0u64, 0, false);
    let start = Instant::now();
    let mut current_a = true;
    let mut last_switch = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        if last_switch.elapsed() > Duration::from_millis(120) {
            current_a = !current_a;
            dns.set_addrs("many.test", if current_a { &a } else { &b });
            last_switch = Instant::now();
            switches += 1;
        }
        let got = read(&file);
        reads += 1;
        assert!(
            got == ra || got == rb,
            "half-written file after {reads} reads: {} bytes",
            got.len()
        );
        seen_b |= got == rb;
    }
    assert!(
        seen_b && switches > 5,
        "the file was rewritten ({switches} switches)"
    );
    assert!(reads > 100, "{reads}");
    running.signal(libc::SIGTERM);
    running.wait(RUN_LIMIT).assert_code(0);
}

// ---- the Django backend ----------------------------------------------------------------------

#[test]
fn django_backend_spreads_keys_and_follows_the_file() {
    let (mc, port) = three_memcached();
    let dns = DnsServer::start();
    dns.set_addrs(
        "mc.test",
        &mc.iter().map(|m| m.addr().ip()).collect::<Vec<_>>(),
    );
    let dir = tempdir();
    let file = dir.path().join("servers");
    // The file as dns-discover writes it.
    run(
        dd(
            &dns,
            &[
                "mc.test",
                "-p",
                &port.to_string(),
                "-o",
                file.to_str().unwrap(),
            ],
        ),
        RUN_LIMIT,
    )
    .assert_success();
    let script = workspace_root().join("tests/fixtures/dns_discover/django_cache.py");
    let mut c = Command::new(python());
    c.arg(script).arg(&file).arg(mc[2].pid().to_string());
    c.env("PYTHONPATH", workspace_root().join("python"));
    let out = run(c, RUN_LIMIT);
    out.assert_success();
    assert!(out.stdout.contains("\"errors\": 0"), "{}", out.report());
    assert!(
        out.stdout.contains("\"missing_file_warnings\": 1"),
        "{}",
        out.report()
    );
}
