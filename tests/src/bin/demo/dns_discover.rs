//! Tour steps for `dns-discover` (an in-process DNS server stands in for CoreDNS).

use crate::tour::{Step, Tour};
use djinit_tests::dns_server::DnsServer;
use djinit_tests::process::spawn;
use std::net::IpAddr;
use std::time::Duration;

pub fn steps() -> Vec<Step> {
    vec![
        Step {
            title: "dns-discover: the memcached pods behind a name",
            about: "A headless Service lists its ready pods as A records. dns-discover asks the \
                    nameserver itself (UDP, TCP if truncated) and prints ip:port, sorted.",
            run: oneshot,
        },
        Step {
            title: "dns-discover: a name that does not exist (yet)",
            about: "NXDOMAIN is exit 69, 'retry may help': a Service being created answers \
                    NXDOMAIN until its first pod is ready. With --min N -t SEC it waits instead.",
            run: nxdomain,
        },
        Step {
            title: "dns-discover --watch: following the pods",
            about: "A sidecar keeps a file current for the Django cache backend: rewritten \
                    atomically only when the list changes, each change logged.",
            run: watch,
        },
    ]
}

fn ips(last: &[u8]) -> Vec<IpAddr> {
    last.iter().map(|i| IpAddr::from([127, 0, 0, *i])).collect()
}

fn oneshot(t: &mut Tour) {
    let dns = DnsServer::start();
    dns.set_addrs("memcached.default.svc.cluster.local", &ips(&[4, 2, 3]));
    let ns = dns.addr().to_string();
    t.show(
        &[],
        &[
            "dns-discover",
            "--nameserver",
            &ns,
            "memcached.default.svc.cluster.local",
        ],
        Duration::from_secs(30),
    );
    t.show(
        &[],
        &[
            "dns-discover",
            "--nameserver",
            &ns,
            "memcached.default.svc.cluster.local",
            "-f",
            "env",
            "--var",
            "MEMCACHED",
        ],
        Duration::from_secs(30),
    );
}

fn nxdomain(t: &mut Tour) {
    let dns = DnsServer::start();
    let ns = dns.addr().to_string();
    t.show(
        &[],
        &[
            "dns-discover",
            "--nameserver",
            &ns,
            "memcached.default.svc.cluster.local",
        ],
        Duration::from_secs(30),
    );
}

fn watch(_t: &mut Tour) {
    let dns = DnsServer::start();
    let name = "memcached.default.svc.cluster.local";
    dns.set_addrs(name, &ips(&[2, 3]));
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("servers");
    let ns = dns.addr().to_string();
    println!(
        "  $ djinit dns-discover --nameserver {ns} {name} --watch -i 0.5 -o {}",
        file.display()
    );
    let mut c = djinit_tests::djinit();
    c.args([
        "dns-discover",
        "--nameserver",
        &ns,
        name,
        "--watch",
        "-i",
        "0.5",
        "-o",
    ])
    .arg(&file);
    let running = spawn(c);
    std::thread::sleep(Duration::from_millis(700));
    println!("    (scaling to 3 pods)");
    dns.set_addrs(name, &ips(&[2, 3, 4]));
    std::thread::sleep(Duration::from_millis(700));
    println!("    (pod 127.0.0.2 gone)");
    dns.set_addrs(name, &ips(&[3, 4]));
    std::thread::sleep(Duration::from_millis(700));
    println!("    (DNS failing: SERVFAIL)");
    dns.set_servfail(name, true);
    std::thread::sleep(Duration::from_millis(700));
    running.signal(libc::SIGTERM);
    let out = running.wait(Duration::from_secs(10));
    for l in out.stderr.lines() {
        println!("    {l}");
    }
    println!("  → {} (SIGTERM)", out.status_text());
    println!("  {}:", file.display());
    for l in std::fs::read_to_string(&file).unwrap_or_default().lines() {
        println!("    {l}");
    }
    println!();
}
