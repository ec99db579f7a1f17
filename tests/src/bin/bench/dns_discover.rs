//! dns-discover: one-shot discovery end to end (runner start, DNS over UDP to an in-process
//! server, output) and, under `--watch`, the delay from a DNS change to the rewritten file.
//! Targets: one-shot median under 20 ms on loopback; every change visible within the interval
//! plus 50 ms.

use crate::stats::{measure, ms, print_table, Samples};
use crate::Bench;
use djinit_tests::dns_server::DnsServer;
use djinit_tests::{djinit, process::spawn, python};
use std::net::IpAddr;
use std::process::Command;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(60);

pub fn run(b: &mut Bench) -> Result<(), String> {
    println!(
        "== dns-discover: one-shot discovery and --watch change delay, {} runs each",
        b.runs
    );
    let dns = DnsServer::start();
    let ips: Vec<IpAddr> = (2..=4u8).map(|i| IpAddr::from([127, 0, 0, i])).collect();
    dns.set_addrs("mc.test", &ips);
    let ns = dns.addr().to_string();
    let oneshot = measure(
        "djinit dns-discover --nameserver NS mc.test",
        2,
        b.runs,
        LIMIT,
        || {
            let mut c = djinit();
            c.args(["dns-discover", "--nameserver", &ns, "mc.test"]);
            c
        },
    )?;
    let host = measure(
        "djinit dns-discover localhost (host resolver)",
        2,
        b.runs,
        LIMIT,
        || {
            let mut c = djinit();
            c.args(["dns-discover", "localhost"]);
            c
        },
    )?;
    // What django-k8s does at start-up: socket.gethostbyname_ex in a Python process.
    let py = measure(
        "python -c socket.gethostbyname_ex('localhost')",
        1,
        b.runs.clamp(1, 10),
        LIMIT,
        || {
            let mut c = Command::new(python());
            c.args([
                "-c",
                "import socket; print(socket.gethostbyname_ex('localhost'))",
            ]);
            c
        },
    )?;
    print_table(&oneshot, &[&host, &py]);
    let target = Duration::from_millis(20);
    b.report.target(
        "dns-discover one-shot < 20 ms (median, loopback)",
        oneshot.median() < target,
        ms(oneshot.median()),
    );

    // --watch: change the records, time until the file holds the new list.
    let interval = Duration::from_millis(500);
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = dir.path().join("servers");
    let mut c = djinit();
    c.args([
        "dns-discover",
        "--nameserver",
        &ns,
        "mc.test",
        "--watch",
        "-i",
        "0.5",
        "-o",
    ])
    .arg(&file);
    let watcher = spawn(c);
    let read = || std::fs::read_to_string(&file).unwrap_or_default();
    let start = Instant::now();
    while read().lines().count() != 3 {
        if start.elapsed() > Duration::from_secs(10) {
            return Err("dns-discover --watch wrote no first list within 10 s".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut delays = Samples {
        label: "--watch -i 0.5: DNS change → file rewritten".into(),
        times: Vec::new(),
        max_rss_kib: 0,
    };
    let changes = b.runs.clamp(1, 10);
    for i in 0..changes {
        let n = if i.is_multiple_of(2) { 2 } else { 3 };
        dns.set_addrs("mc.test", &ips[..n]);
        let t = Instant::now();
        while read().lines().count() != n {
            if t.elapsed() > Duration::from_secs(10) {
                return Err(format!("change {i} not written within 10 s"));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        delays.times.push(t.elapsed());
        // Next change at a random phase of the interval.
        std::thread::sleep(Duration::from_millis(137));
    }
    watcher.signal(libc::SIGTERM);
    let _ = watcher.wait(LIMIT);
    let worst = delays.percentile(1.0);
    println!(
        "  {:<48} median {}, p90 {}, max {} ({} changes)\n",
        delays.label,
        ms(delays.median()),
        ms(delays.p90()),
        ms(worst),
        changes
    );
    b.report.target(
        "dns-discover --watch change visible within interval + 50 ms (max)",
        worst <= interval + Duration::from_millis(50),
        format!("max {} with interval {}", ms(worst), ms(interval)),
    );
    Ok(())
}
