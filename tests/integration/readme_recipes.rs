//! The README's "Other WASI hosts" recipes, run verbatim against real services: one throwaway
//! cluster (a database per command that changes one), a migration bundle exported by Django, a
//! password file, and a DNS server standing in for CoreDNS behind a Kubernetes-style
//! resolv.conf. Used by `wasmtime_cli.rs` and `jco.rs`; every recipe the README gives for a host
//! must be one of the five commands below, each exactly once, so a recipe cannot be added or
//! changed without being run.

use crate::harness::{
    run, wasi_hosts, workspace_root, Auth, Cluster, DnsServer, Host, Output, Recipe, PASSWORD,
};
use crate::lockedmigrate::export;
use std::path::Path;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(180);
const COMPONENTS: [&str; 5] = [
    "wait4db",
    "ensureadmin",
    "checkmigrations",
    "lockedmigrate",
    "dns-discover",
];
const ADMIN_PASSWORD: &str = "Readme#Recipe-Walrus/Ozone!73";

/// Runs every README recipe of `host` and checks what each command did.
pub fn run_all(host: Host) {
    let recipes = wasi_hosts::recipes(host);
    let mut names: Vec<&str> = recipes.iter().filter_map(Recipe::component).collect();
    names.sort_unstable();
    let mut expected = COMPONENTS.to_vec();
    expected.sort_unstable();
    assert_eq!(
        names, expected,
        "{host:?}: the README's recipes must run each command once: {recipes:#?}"
    );
    let recipe = |name: &str| {
        recipes
            .iter()
            .find(|r| r.component() == Some(name))
            .unwrap()
            .clone()
    };

    let pg = Cluster::start(Auth::Scram);
    let bundle = export("django_project");
    let secrets = tempfile::tempdir().unwrap();
    std::fs::write(secrets.path().join("password"), ADMIN_PASSWORD).unwrap();
    let dns = DnsServer::start();
    dns.set_srv(
        "_memcache._tcp.memcached.default.svc.cluster.local",
        &[(
            0,
            10,
            11211,
            "memcached-0.memcached.default.svc.cluster.local",
        )],
    );
    dns.set_addrs(
        "memcached-0.memcached.default.svc.cluster.local",
        &["127.0.0.2".parse().unwrap()],
    );
    // What a pod's resolv.conf says, with the test server as the nameserver.
    let etc = tempfile::tempdir().unwrap();
    let resolv = etc.path().join("resolv.conf");
    std::fs::write(
        &resolv,
        format!(
            "nameserver {}\nsearch default.svc.cluster.local svc.cluster.local cluster.local\n\
             options ndots:5 timeout:2 attempts:2\n",
            dns.addr()
        ),
    )
    .unwrap();
    let paths: [(&str, &Path); 3] = [
        ("/migrations", bundle.path()),
        ("/secrets", secrets.path()),
        ("/etc/resolv.conf", &resolv),
    ];
    let run_recipe = |name: &str, env: &[(&str, String)]| -> Output {
        let r = recipe(name);
        let out = run(host.command(&r, &paths, env), LIMIT);
        out.assert_no_secret(PASSWORD)
            .assert_no_secret(ADMIN_PASSWORD);
        eprintln!("{host:?} `{}`: {}", r.text, out.status_text());
        out
    };

    // wait4db (its default 5 s stability window).
    run_recipe("wait4db", &[("DATABASE_URL", pg.url())])
        .assert_success()
        .assert_stderr_contains("is ready");

    // ensureadmin on a database holding Django 5.2's auth_user, password from the file.
    pg.create_database("admin");
    let ddl =
        std::fs::read_to_string(workspace_root().join("tests/fixtures/ensureadmin_auth_user.sql"))
            .unwrap();
    pg.psql_in("admin", &ddl);
    let out = run_recipe(
        "ensureadmin",
        &[
            ("DATABASE_URL", pg.url_for("postgres", PASSWORD, "admin")),
            ("DJANGO_ADMIN_USERNAME", "admin".into()),
            ("DJANGO_ADMIN_EMAIL", "ops@example.com".into()),
        ],
    );
    out.assert_success();
    assert!(
        out.stdout.contains("Admin user created"),
        "{}",
        out.report()
    );
    assert_eq!(
        pg.psql_in(
            "admin",
            "SELECT count(*) FROM auth_user WHERE username = 'admin' AND is_superuser \
             AND password LIKE 'pbkdf2_sha256$%'"
        ),
        "1"
    );

    // The migration commands on their own database: the bundle is readable (24 pending),
    // applied, then complete.
    pg.create_database("app");
    let app = [("DATABASE_URL", pg.url_for("postgres", PASSWORD, "app"))];
    run_recipe("checkmigrations", &app)
        .assert_code(1)
        .assert_stderr_contains("24 of 24 migrations pending");
    let out = run_recipe("lockedmigrate", &app);
    out.assert_success();
    assert!(
        out.stdout
            .contains("Applying shop.0002_order_note_irreversible... OK"),
        "{}",
        out.report()
    );
    let out = run_recipe("checkmigrations", &app);
    out.assert_success();
    assert!(
        out.stdout.contains("Migrations complete."),
        "{}",
        out.report()
    );

    // dns-discover: the SRV name through the search list, over UDP to the nameserver.
    let out = run_recipe("dns-discover", &[]);
    out.assert_success();
    assert_eq!(out.stdout, "127.0.0.2:11211\n", "{}", out.report());
    assert!(dns.udp_queries() > 0, "{}", out.report());
}
