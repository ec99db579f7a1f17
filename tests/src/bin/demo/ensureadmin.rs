//! Tour steps for `ensureadmin`.

use crate::tour::{Step, Tour};
use djinit_tests::workspace_root;
use std::time::Duration;

/// Shown as is: the tour's own distinctive admin password is not a secret of anything.
const ADMIN_PW: &str = "Demo#Quartz-Velvet/Tundra!41";

pub fn steps() -> Vec<Step> {
    vec![
        Step {
            title: "ensureadmin: no user table yet",
            about: "Before `manage.py migrate` there is no auth_user: exit 69 (retry may help), \
                    so an init container waiting on a migration Job simply retries.",
            run: unmigrated,
        },
        Step {
            title: "ensureadmin: create the superuser, then again",
            about: "The table now exists (Django 5.2's auth_user). The first run hashes the \
                    password in the component (pbkdf2_sha256, 1,000,000 iterations, -v 2 shows \
                    the time) and inserts the user as create_superuser does; the second finds \
                    it and leaves it alone in a few milliseconds.",
            run: create_twice,
        },
        Step {
            title: "ensureadmin: a weak password",
            about: "Django's default validators run in the component; every failed rule is \
                    named on one line, exit 65. The password itself is never printed.",
            run: weak,
        },
    ]
}

fn env(t: &Tour, pw: &str) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", t.pg.url()),
        ("DJANGO_ADMIN_USERNAME", "admin".into()),
        ("DJANGO_ADMIN_PASSWORD", pw.into()),
        ("DJANGO_ADMIN_EMAIL", "Ops@Example.COM".into()),
    ]
}

fn unmigrated(t: &mut Tour) {
    t.show(&env(t, ADMIN_PW), &["ensureadmin"], Duration::from_secs(30));
}

fn create_twice(t: &mut Tour) {
    let ddl =
        std::fs::read_to_string(workspace_root().join("tests/fixtures/ensureadmin_auth_user.sql"))
            .expect("tests/fixtures/ensureadmin_auth_user.sql");
    t.pg.psql(&ddl);
    t.show(
        &env(t, ADMIN_PW),
        &["ensureadmin", "-v", "2"],
        Duration::from_secs(60),
    );
    t.show(&env(t, ADMIN_PW), &["ensureadmin"], Duration::from_secs(60));
    println!(
        "  stored: {}\n",
        t.pg.psql(
            "SELECT username || ' ' || email || ' superuser=' || is_superuser || ' staff=' || is_staff \
             || ' ' || split_part(password, '$', 1) || '$' || split_part(password, '$', 2) || '$<salt>$<hash>' FROM auth_user"
        )
    );
}

fn weak(t: &mut Tour) {
    let mut e = env(t, "admin123");
    e[1].1 = "root".into();
    t.show(&e, &["ensureadmin"], Duration::from_secs(30));
}
