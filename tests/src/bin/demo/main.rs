//! `just demo`: a short guided tour of djinit against a throwaway PostgreSQL cluster.
//!
//! Adding your command: write `src/bin/demo/<command>.rs` with `pub fn steps() -> Vec<Step>`
//! (see `wait4db.rs`), add `mod <command>;` below and one entry to `steps()`.

mod dns_discover;
mod ensureadmin;
mod lockedmigrate;
mod tour;
mod wait4db;

use djinit_tests::{Auth, Cluster};
use tour::{Step, Tour};

/// The tour, in order. Extension points for the other commands are marked.
fn steps() -> Vec<Step> {
    [
        wait4db::steps(),
        ensureadmin::steps(),
        lockedmigrate::steps(),
        dns_discover::steps(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn main() {
    println!("djinit demo: starting a throwaway PostgreSQL cluster (scram-sha-256) ...");
    let pg = Cluster::start(Auth::Scram);
    println!(
        "  listening on {}:{}, superuser `postgres`, password shown as <PASSWORD> below\n",
        pg.host(),
        pg.port()
    );
    let mut tour = Tour { pg };
    let steps = steps();
    for (i, step) in steps.iter().enumerate() {
        println!("[{}/{}] {}", i + 1, steps.len(), step.title);
        println!(
            "  {}\n",
            step.about.split_whitespace().collect::<Vec<_>>().join(" ")
        );
        (step.run)(&mut tour);
    }
    println!("Done; the cluster is stopped and removed.");
}
