//! The plain components under Node.js with jco (`jco run`, preview2-shim), installed with npm
//! by the README's own install block into `target/jco/` (see `harness::wasi_hosts`). Needs
//! `node` and `npm`: without them these tests fail with the reason, they never skip.

use crate::harness::{run, wasi_hosts, Auth, Cluster, Host, Recipe, PASSWORD};
use crate::lockedmigrate::export;
use std::time::Duration;

/// Every recipe of the README's "Node.js with jco" section: wait4db, ensureadmin (password file
/// through a preopen), checkmigrations and lockedmigrate (bundle through a preopen), and
/// dns-discover (UDP to the nameserver of a resolv.conf given in the environment).
#[test]
fn readme_recipes_run_under_jco() {
    crate::readme_recipes::run_all(Host::Jco);
}

/// What the README says the preopen module is for: without `--jco-import` jco gives the
/// component no directory, so the bundle cannot be opened (66) although the database is fine.
#[test]
fn without_the_preopen_module_the_bundle_is_unreadable() {
    let pg = Cluster::start(Auth::Scram);
    let bundle = export("django_project");
    let plain = Recipe {
        text: "jco run target/components/checkmigrations.wasm --bundle /migrations".into(),
    };
    let out = run(
        Host::Jco.command(
            &plain,
            &[("/migrations", bundle.path())],
            &[("DATABASE_URL", pg.url())],
        ),
        Duration::from_secs(180),
    );
    out.assert_code(66)
        .assert_stderr_contains("manifest.json")
        .assert_no_secret(PASSWORD);
    // The README's recipe differs only by the preopen.
    let readme = wasi_hosts::recipes(Host::Jco)
        .into_iter()
        .find(|r| r.component() == Some("checkmigrations"))
        .expect("a checkmigrations recipe");
    assert_eq!(
        readme.text,
        "WASI_PREOPENS=/migrations jco run --jco-import \"$JCO_DIR/preopens.mjs\" \
         target/components/checkmigrations.wasm --bundle /migrations"
    );
}
