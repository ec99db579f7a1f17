//! Stories for `wait4db`: the database comes up while it waits; a wrong password.

use crate::tour::{expect, Tour};
use crate::Story;
use djinit_tests::WRONG_PASSWORD;
use std::time::Duration;

/// How long after wait4db starts the cluster comes up.
const DOWN_FOR: Duration = Duration::from_secs(3);

pub fn stories() -> Vec<Story> {
    vec![
        Story {
            title: "wait4db: the database comes up while it waits",
            about: "The cluster is stopped, as a database Pod that is not ready yet. wait4db \
                    probes every 0.5 s (connect, authenticate, SELECT 1), one line per failed \
                    attempt; the cluster starts 3 s later, and it waits until the database has \
                    stayed ready for 2 s (-s).",
            run: comes_up,
        },
        Story {
            title: "wait4db: a wrong password",
            about: "Retrying cannot fix a wrong password, so it fails at once with exit 77 and \
                    one line on stderr, without printing the password.",
            run: wrong_password,
        },
    ]
}

fn comes_up(t: &mut Tour) {
    const ID: &str = "wait4db/comes-up";
    t.pg.stop();
    let (line, cmd) = t.djinit(
        ID,
        &[("DATABASE_URL", t.pg.url())],
        &["wait4db", "-t", "60", "-i", "0.5", "-s", "2"],
    );
    let running = t.start(&line, cmd);
    std::thread::sleep(DOWN_FOR);
    println!("    ({} s later: the cluster starts)", DOWN_FOR.as_secs());
    t.pg.start_again();
    let out = running.wait(Duration::from_secs(90));
    t.report(
        ID,
        expect(0, &["attempt 1 ", "connection refused", "is ready"]),
        out,
    );
}

fn wrong_password(t: &mut Tour) {
    let url = t.pg.url_for("postgres", WRONG_PASSWORD, "postgres");
    t.show(
        "wait4db/wrong-password",
        &[("DATABASE_URL", url)],
        &["wait4db", "-t", "10"],
        expect(77, &["password authentication failed"]),
        Duration::from_secs(30),
    );
}
