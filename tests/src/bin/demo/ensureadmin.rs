//! Stories for `ensureadmin`, on the database the migration story migrated (its `auth_user` is
//! the one Django 5.2's migrations create).

use crate::lockedmigrate::APP_DB;
use crate::tour::{expect, Tour};
use crate::Story;
use djinit_tests::PASSWORD;
use std::time::Duration;

/// Shown as is: the tour's own distinctive admin password is not a secret of anything.
pub const ADMIN_PW: &str = "Demo#Quartz-Velvet/Tundra!41";
const LIMIT: Duration = Duration::from_secs(60);

pub fn stories() -> Vec<Story> {
    vec![Story {
        title: "ensureadmin: the superuser, once; a weak password refused (database `app`)",
        about: "The first run hashes the password in the component (pbkdf2_sha256, 1,000,000 \
                iterations; -v 2 shows the time) and inserts the user as create_superuser does; \
                the second finds it and leaves it alone in a few milliseconds. Django's default \
                password validators run in the component: every failed rule is named on one \
                line, exit 65, and the password itself is never printed.",
        run: ensure,
    }]
}

fn env(t: &Tour, user: &str, pw: &str) -> Vec<(&'static str, String)> {
    vec![
        ("DATABASE_URL", t.pg.url_for("postgres", PASSWORD, APP_DB)),
        ("DJANGO_ADMIN_USERNAME", user.into()),
        ("DJANGO_ADMIN_PASSWORD", pw.into()),
        ("DJANGO_ADMIN_EMAIL", "Ops@Example.COM".into()),
    ]
}

fn ensure(t: &mut Tour) {
    t.show(
        "ensureadmin/create",
        &env(t, "admin", ADMIN_PW),
        &["ensureadmin", "-v", "2"],
        expect(0, &["Admin user created from environment variables."]),
        LIMIT,
    );
    t.show(
        "ensureadmin/again",
        &env(t, "admin", ADMIN_PW),
        &["ensureadmin"],
        expect(0, &["Admin user already exists, service is ready."]),
        LIMIT,
    );
    let stored = t.pg.psql_in(
        APP_DB,
        "SELECT username || ' ' || email || ' superuser=' || is_superuser || ' staff=' || is_staff \
         || ' ' || split_part(password, '$', 1) || '$' || split_part(password, '$', 2) \
         || '$<salt>$<hash>' FROM auth_user",
    );
    t.verify(
        "ensureadmin/stored",
        "auth_user",
        "admin Ops@example.com superuser=true staff=true pbkdf2_sha256$1000000$<salt>$<hash>",
        &stored,
    );
    t.show(
        "ensureadmin/weak-password",
        &env(t, "root", "admin123"),
        &["ensureadmin"],
        expect(65, &["password rejected", "too common"]),
        LIMIT,
    );
}
