//! Tour steps for `wait4db`.

use crate::tour::{Step, Tour};
use djinit_tests::WRONG_PASSWORD;
use std::time::Duration;

pub fn steps() -> Vec<Step> {
    vec![
        Step {
            title: "wait4db: is the database ready?",
            about: "Connects, authenticates (SCRAM here), runs SELECT 1. `-s 0` returns at the \
                    first success instead of watching a 5 s stability window.",
            run: ready,
        },
        Step {
            title: "wait4db: a wrong password",
            about: "Retrying cannot fix a wrong password, so it fails at once with exit 77 and \
                    one line on stderr, without printing the password.",
            run: wrong_password,
        },
    ]
}

fn ready(t: &mut Tour) {
    t.show(
        &[("DATABASE_URL", t.pg.url())],
        &["wait4db", "-s", "0"],
        Duration::from_secs(30),
    );
}

fn wrong_password(t: &mut Tour) {
    let url = t.pg.url_for("postgres", WRONG_PASSWORD, "postgres");
    t.show(
        &[("DATABASE_URL", url)],
        &["wait4db", "-t", "10"],
        Duration::from_secs(30),
    );
}
