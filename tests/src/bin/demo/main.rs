//! `just demo`: a guided tour of djinit against a throwaway PostgreSQL cluster, in stories, each
//! on the state it needs (its own database where it changes one). Every step is checked against
//! what the tour says it does (exit code and key lines); the tour ends with a summary and exits
//! 1 if any step differed, 2 if `DJINIT_DEMO_BREAK` names no step.
//!
//! Adding a story: write it in `src/bin/demo/<command>.rs` as `pub fn stories() -> Vec<Story>`
//! (see `wait4db.rs`), add `mod <command>;` below and one entry to `stories()`. Give every step
//! a unique id (`<story>/<step>`) and an [`tour::Expect`].

mod dns_discover;
mod ensureadmin;
mod lockedmigrate;
mod tour;
mod wait4db;

use djinit_tests::{Auth, Cluster};
use tour::Tour;

/// A heading, what to look for, and the steps.
pub struct Story {
    pub title: &'static str,
    /// One or two sentences shown before the commands: what to look for.
    pub about: &'static str,
    pub run: fn(&mut Tour),
}

/// The tour, in order: later stories use what earlier ones left (the migrated database `app`).
fn stories() -> Vec<Story> {
    [
        wait4db::stories(),
        lockedmigrate::stories(),
        ensureadmin::stories(),
        dns_discover::stories(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn main() {
    let broken = std::env::var("DJINIT_DEMO_BREAK")
        .ok()
        .filter(|s| !s.is_empty());
    println!("djinit demo: starting a throwaway PostgreSQL cluster (scram-sha-256) ...");
    let pg = Cluster::start(Auth::Scram);
    println!(
        "  listening on {}:{}, superuser `postgres`, password shown as <PASSWORD> below\n",
        pg.host(),
        pg.port()
    );
    let mut tour = Tour::new(pg, broken.clone());
    let stories = stories();
    for (i, story) in stories.iter().enumerate() {
        println!("[{}/{}] {}", i + 1, stories.len(), story.title);
        println!(
            "  {}\n",
            story.about.split_whitespace().collect::<Vec<_>>().join(" ")
        );
        (story.run)(&mut tour);
    }
    let (text, all_ok) = tour::summary(tour.records());
    println!("Summary: each step, expected vs actual\n{text}");
    let unknown_break = broken.filter(|_| !tour.break_applied());
    // Stop and remove the cluster before exiting (process::exit runs no destructors).
    drop(tour);
    println!("The cluster is stopped and removed.");
    if let Some(b) = unknown_break {
        eprintln!(
            "demo: DJINIT_DEMO_BREAK={b:?} names no step that runs a command (ids: see the summary)"
        );
        std::process::exit(2);
    }
    std::process::exit(if all_ok { 0 } else { 1 });
}
