//! Stories for `dns-discover` (an in-process DNS server stands in for CoreDNS).

use crate::tour::{expect, Tour};
use crate::Story;
use djinit_tests::dns_server::DnsServer;
use std::net::IpAddr;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);
const NAME: &str = "memcached.default.svc.cluster.local";

pub fn stories() -> Vec<Story> {
    vec![
        Story {
            title: "dns-discover: the memcached pods behind a name",
            about: "A headless Service lists its ready pods as A records. dns-discover asks the \
                    nameserver itself (UDP, TCP if truncated) and prints ip:port, sorted.",
            run: oneshot,
        },
        Story {
            title: "dns-discover: a name that does not exist (yet)",
            about: "NXDOMAIN is exit 69, 'retry may help': a Service being created answers \
                    NXDOMAIN until its first pod is ready. With --min N -t SEC it waits instead.",
            run: nxdomain,
        },
        Story {
            title: "dns-discover --watch: following the pods",
            about: "A sidecar keeps a file current for the Django cache backend: rewritten \
                    atomically only when the list changes, each change logged; a failing lookup \
                    keeps the last good list. SIGTERM, which every Pod stop sends, ends it normally (exit 0).",
            run: watch,
        },
    ]
}

fn ips(last: &[u8]) -> Vec<IpAddr> {
    last.iter().map(|i| IpAddr::from([127, 0, 0, *i])).collect()
}

fn oneshot(t: &mut Tour) {
    let dns = DnsServer::start();
    dns.set_addrs(NAME, &ips(&[4, 2, 3]));
    let ns = dns.addr().to_string();
    t.show(
        "dns/lines",
        &[],
        &["dns-discover", "--nameserver", &ns, NAME],
        expect(0, &["127.0.0.2:11211\n127.0.0.3:11211\n127.0.0.4:11211\n"]),
        LIMIT,
    );
    t.show(
        "dns/env",
        &[],
        &[
            "dns-discover",
            "--nameserver",
            &ns,
            NAME,
            "-f",
            "env",
            "--var",
            "MEMCACHED",
        ],
        expect(
            0,
            &["MEMCACHED=127.0.0.2:11211,127.0.0.3:11211,127.0.0.4:11211"],
        ),
        LIMIT,
    );
}

fn nxdomain(t: &mut Tour) {
    let dns = DnsServer::start();
    let ns = dns.addr().to_string();
    t.show(
        "dns/nxdomain",
        &[],
        &["dns-discover", "--nameserver", &ns, NAME],
        expect(69, &["does not exist (NXDOMAIN"]),
        LIMIT,
    );
}

fn watch(t: &mut Tour) {
    const ID: &str = "dns/watch";
    let dns = DnsServer::start();
    dns.set_addrs(NAME, &ips(&[2, 3]));
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("servers");
    let ns = dns.addr().to_string();
    let fs = file.display().to_string();
    let (line, cmd) = t.djinit(
        ID,
        &[],
        &[
            "dns-discover",
            "--nameserver",
            &ns,
            NAME,
            "--watch",
            "-i",
            "0.5",
            "-o",
            &fs,
        ],
    );
    let running = t.start(&line, cmd);
    let pause = Duration::from_millis(700);
    std::thread::sleep(pause);
    println!("    (scaling to 3 pods)");
    dns.set_addrs(NAME, &ips(&[2, 3, 4]));
    std::thread::sleep(pause);
    println!("    (pod 127.0.0.2 gone)");
    dns.set_addrs(NAME, &ips(&[3, 4]));
    std::thread::sleep(pause);
    println!("    (DNS failing: SERVFAIL)");
    dns.set_servfail(NAME, true);
    std::thread::sleep(pause);
    println!("    (SIGTERM, as when the Pod stops)");
    running.signal(libc::SIGTERM);
    let out = running.wait(Duration::from_secs(10));
    t.report(
        ID,
        expect(
            0,
            &[
                "stopped by SIGTERM: normal shutdown",
                "added 127.0.0.4:11211",
                "removed 127.0.0.2:11211",
                "keeping the last good list",
            ],
        ),
        out,
    );
    let kept = std::fs::read_to_string(&file).unwrap_or_default();
    t.verify(
        "dns/watch-file",
        &format!("{fs} (the last good list)"),
        "127.0.0.3:11211\n127.0.0.4:11211\n",
        &kept,
    );
}
