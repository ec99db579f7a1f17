//! `djinit ensureadmin` against real clusters, with Django 5.2 itself as the oracle: the users it
//! creates are authenticated by Django, Django's hashes are accepted and verified, Django's
//! validators decide which passwords are weak, and no password ever reaches the output.
//!
//! Exit codes (djinit-cli's table): 0 ok, 64 usage, 65 data (weak password, malformed hash),
//! 66 unreadable password file, 69 schema missing (retry may help), 75 hashing past `--timeout`,
//! 78 unusable table.

use crate::harness::{djinit, run, workspace_root, Auth, Cluster, DjangoProject, Output, PASSWORD};
use std::process::Command;
use std::thread;
use std::time::Duration;

/// Every run is killed after this, so a hanging command fails its test instead of hanging it.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// The admin passwords: distinctive, so tests can assert they never appear in any output.
const ADMIN_PW: &str = "Kz8#quartz-Velvet/Tundra!41";
const NEW_PW: &str = "Rotated$Mango-Fjord/Zephyr_93";

/// A cluster with a migrated Django project (auth + contenttypes).
struct Site {
    pg: Cluster,
    proj: DjangoProject,
}

impl Site {
    fn new() -> Site {
        Site::with_apps(&[])
    }

    /// `apps` besides contenttypes and auth, e.g. the `accounts` fixture app.
    fn with_apps(apps: &[&str]) -> Site {
        let pg = Cluster::start(Auth::Scram);
        let proj = DjangoProject::create(apps);
        Site { pg, proj }
    }

    fn migrate(&self) {
        self.manage(&["migrate", "-v", "0"]).assert_code(0);
    }

    fn manage(&self, args: &[&str]) -> Output {
        let mut cmd = self.proj.manage(args);
        cmd.env("DATABASE_URL", self.pg.url());
        run(cmd, RUN_LIMIT)
    }

    /// Run Python in Django (`manage.py shell -c`), with `env` (passwords travel there, never
    /// in argv); returns stdout.
    fn django(&self, code: &str, env: &[(&str, &str)]) -> String {
        let mut cmd = self.proj.manage(&["shell", "--no-imports", "-c", code]);
        cmd.env("DATABASE_URL", self.pg.url());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = run(cmd, RUN_LIMIT);
        out.assert_code(0);
        out.stdout.trim().to_string()
    }

    /// Django's own `create_superuser(name, "a@example.com", pw)`.
    fn django_superuser(&self, name: &str, pw: &str) {
        self.django(
            "import os; from django.contrib.auth import get_user_model; \
             get_user_model().objects.create_superuser(os.environ['EA_USER'], 'a@example.com', os.environ['EA_PW'])",
            &[("EA_USER", name), ("EA_PW", pw)],
        );
    }

    /// A second database `oracle` in the same cluster, migrated, for Django itself to write the
    /// same users into; its URL.
    fn oracle_database(&self) -> String {
        self.pg.create_database("oracle");
        let url = self.pg.url_for("postgres", PASSWORD, "oracle");
        let mut migrate = self.proj.manage(&["migrate", "-v", "0"]);
        migrate.env("DATABASE_URL", &url);
        run(migrate, RUN_LIMIT).assert_code(0);
        url
    }

    /// What Django says about user `name` and password `pw`, as `key=value` lines.
    fn inspect(&self, name: &str, pw: &str) -> Inspection {
        let out = self.django(INSPECT, &[("EA_USER", name), ("EA_PW", pw)]);
        Inspection(out)
    }

    /// `djinit ensureadmin <args>` with `DATABASE_URL` and `env`.
    fn ensureadmin(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        ensureadmin_cmd(&self.pg.url(), args, env)
    }

    fn sql(&self, sql: &str) -> String {
        self.pg.psql(sql)
    }
}

fn ensureadmin_cmd(url: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd: Command = djinit();
    cmd.arg("ensureadmin").args(args).env("DATABASE_URL", url);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(cmd, RUN_LIMIT)
}

/// Asserts none of the admin passwords appear in stdout or stderr.
fn no_secrets(out: &Output) -> &Output {
    for pw in [ADMIN_PW, NEW_PW, WEAK_SIMILAR] {
        out.assert_no_secret(pw);
    }
    out
}

/// Django's view of one user (`check_password` without the rehash-on-success side effect,
/// `authenticate` through the ModelBackend, the flags and fields).
const INSPECT: &str = r#"
import os
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.hashers import check_password, identify_hasher
U = get_user_model()
name, pw = os.environ["EA_USER"], os.environ["EA_PW"]
qs = U._default_manager.filter(**{U.USERNAME_FIELD: name})
print("count=%d" % qs.count())
u = qs.first()
if u is not None:
    h = identify_hasher(u.password)
    print("check=%s" % check_password(pw, u.password))
    print("must_update=%s" % h.must_update(u.password))
    print("algorithm=%s" % h.algorithm)
    print("superuser=%s staff=%s active=%s" % (u.is_superuser, getattr(u, "is_staff", None), u.is_active))
    print("email=%r" % getattr(u, "email", None))
    print("names=%r,%r" % (getattr(u, "first_name", None), getattr(u, "last_name", None)))
    print("last_login_null=%s" % (u.last_login is None))
    print("date_joined_set=%s" % (getattr(u, "date_joined", "n/a") is not None))
    print("hash=%s" % u.password)
    a = authenticate(username=name, password=pw)
    print("authenticate=%s" % (a is not None and a.pk == u.pk))
"#;

struct Inspection(String);

impl Inspection {
    fn has(&self, line: &str) -> bool {
        self.0.lines().any(|l| l == line)
    }

    #[track_caller]
    fn assert(&self, line: &str) {
        assert!(
            self.has(line),
            "Django's view lacks {line:?}:\n{}",
            self.redacted()
        );
    }

    fn hash(&self) -> String {
        self.0
            .lines()
            .find_map(|l| l.strip_prefix("hash="))
            .unwrap_or_default()
            .to_string()
    }

    fn redacted(&self) -> String {
        self.0
            .replace(ADMIN_PW, "<ADMIN_PW>")
            .replace(NEW_PW, "<NEW_PW>")
    }
}

fn admin_env(pw: &str) -> Vec<(&'static str, String)> {
    vec![
        ("DJANGO_ADMIN_USERNAME", "admin".to_string()),
        ("DJANGO_ADMIN_PASSWORD", pw.to_string()),
        ("DJANGO_ADMIN_EMAIL", "Ops.Team@Example.COM".to_string()),
    ]
}

fn as_refs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

// ---- creating ---------------------------------------------------------------------------------

#[test]
fn creates_a_superuser_django_authenticates_and_leaves_it_alone_next_time() {
    let site = Site::new();
    site.migrate();
    let env = admin_env(ADMIN_PW);
    let out = site.ensureadmin(&["-v", "3"], &as_refs(&env));
    no_secrets(out.assert_code(0));
    assert!(
        out.stdout.contains("Admin user created"),
        "{}",
        out.report()
    );

    let d = site.inspect("admin", ADMIN_PW);
    for line in [
        "count=1",
        "check=True",
        "must_update=False",
        "algorithm=pbkdf2_sha256",
        "superuser=True staff=True active=True",
        "email='Ops.Team@example.com'",
        "names='',''",
        "last_login_null=True",
        "date_joined_set=True",
        "authenticate=True",
    ] {
        d.assert(line);
    }
    let hash = d.hash();
    let parts: Vec<&str> = hash.split('$').collect();
    assert_eq!(parts.len(), 4, "{hash}");
    assert_eq!(parts[1], "1000000", "Django 5.2's default iterations");
    assert_eq!(parts[2].len(), 22, "22-character salt");
    assert!(parts[2].bytes().all(|b| b.is_ascii_alphanumeric()));
    // Django rejects a wrong password for this hash.
    site.inspect("admin", NEW_PW).assert("check=False");

    // Second run: compatible "already exists", nothing touched.
    let again = site.ensureadmin(&["-v", "3"], &as_refs(&env));
    no_secrets(again.assert_code(0));
    assert!(
        again.stdout.contains("Admin user already exists"),
        "{}",
        again.report()
    );
    assert_eq!(site.inspect("admin", ADMIN_PW).hash(), hash);
}

#[test]
fn flags_win_over_environment() {
    let site = Site::new();
    site.migrate();
    let env = admin_env(NEW_PW);
    let out = site.ensureadmin(
        &[
            "-u",
            "root",
            "-p",
            ADMIN_PW,
            "-e",
            "root@Example.org",
            "--iterations",
            "1000",
        ],
        &as_refs(&env),
    );
    no_secrets(out.assert_code(0));
    let d = site.inspect("root", ADMIN_PW);
    d.assert("authenticate=True");
    d.assert("email='root@example.org'");
    assert!(d.hash().starts_with("pbkdf2_sha256$1000$"));
    site.inspect("admin", NEW_PW).assert("count=0");
}

#[test]
fn sixteen_simultaneous_runs_make_exactly_one_user_and_all_exit_0() {
    let site = Site::new();
    site.migrate();
    let url = site.pg.url();
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let url = url.clone();
            thread::spawn(move || {
                let env = admin_env(ADMIN_PW);
                ensureadmin_cmd(&url, &[], &as_refs(&env))
            })
        })
        .collect();
    let outs: Vec<Output> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for out in &outs {
        no_secrets(out.assert_code(0));
    }
    let created = outs.iter().filter(|o| o.stdout.contains("created")).count();
    assert_eq!(created, 1, "exactly one run creates the user");
    assert_eq!(site.sql("SELECT count(*) FROM auth_user"), "1");
    site.inspect("admin", ADMIN_PW).assert("authenticate=True");
}

// ---- hashes made by Django ----------------------------------------------------------------------

#[test]
fn django_made_hash_is_stored_verbatim_and_verified_by_update_without_rewrite() {
    let site = Site::new();
    site.migrate();
    let made = site.django(
        "import os; from django.contrib.auth.hashers import make_password; print(make_password(os.environ['EA_PW']))",
        &[("EA_PW", ADMIN_PW)],
    );
    let out = site.ensureadmin(&["-u", "hashed", "--password-hash", &made, "-v", "3"], &[]);
    no_secrets(out.assert_code(0));
    assert_eq!(
        site.sql("SELECT password FROM auth_user WHERE username = 'hashed'"),
        made
    );
    site.inspect("hashed", ADMIN_PW).assert("authenticate=True");

    // A user Django's own create_superuser made: --update verifies its hash in the component
    // and does not rewrite it.
    site.django(
        "import os; from django.contrib.auth import get_user_model; \
         get_user_model().objects.create_superuser('bob', 'bob@example.com', os.environ['EA_PW'])",
        &[("EA_PW", ADMIN_PW)],
    );
    let before = site.sql("SELECT password FROM auth_user WHERE username = 'bob'");
    let out = site.ensureadmin(&["-u", "bob", "-p", ADMIN_PW, "--update", "-v", "3"], &[]);
    no_secrets(out.assert_code(0));
    assert!(out.stdout.contains("matches"), "{}", out.report());
    assert_eq!(
        site.sql("SELECT password FROM auth_user WHERE username = 'bob'"),
        before
    );

    // The same hash given with --update: equal, so nothing rewritten either.
    let out = site.ensureadmin(&["-u", "hashed", "--password-hash", &made, "--update"], &[]);
    out.assert_code(0);
    assert!(out.stdout.contains("matches"), "{}", out.report());
}

#[test]
fn malformed_or_unknown_hashes_are_rejected() {
    let site = Site::new();
    site.migrate();
    for bad in [
        "pbkdf2_sha256$1000000$salt",
        "sha512$$abcdef",
        "!unusable-password-marker-0123456789abcdef",
        "plain-text-password",
    ] {
        let out = site.ensureadmin(&["-u", "x", "--password-hash", bad], &[]);
        out.assert_code(65)
            .assert_stderr_contains("not a usable Django password hash");
        assert!(
            !out.stderr.contains(bad),
            "the hash is not echoed:\n{}",
            out.report()
        );
    }
    assert_eq!(site.sql("SELECT count(*) FROM auth_user"), "0");
}

// ---- existing users and --update ------------------------------------------------------------------

#[test]
fn existing_user_is_untouched_by_default_and_rotated_with_update() {
    let site = Site::new();
    site.migrate();
    site.django(
        "import os; from django.contrib.auth import get_user_model; \
         u = get_user_model().objects.create_superuser('admin', 'a@example.com', os.environ['EA_PW']); \
         u.is_staff = False; u.save()",
        &[("EA_PW", ADMIN_PW)],
    );
    let old_hash = site.inspect("admin", ADMIN_PW).hash();

    // Default: compatible, untouched.
    let env = admin_env(NEW_PW);
    let out = site.ensureadmin(&["-v", "3"], &as_refs(&env));
    no_secrets(out.assert_code(0));
    assert!(out.stdout.contains("already exists"));
    let d = site.inspect("admin", ADMIN_PW);
    d.assert("authenticate=True");
    d.assert("superuser=True staff=False active=True");
    assert_eq!(d.hash(), old_hash);

    // --update: rotated and flags restored; Django takes the new password, refuses the old.
    let out = site.ensureadmin(&["--update", "-v", "3"], &as_refs(&env));
    no_secrets(out.assert_code(0));
    assert!(out.stdout.contains("password updated"), "{}", out.report());
    let d = site.inspect("admin", NEW_PW);
    d.assert("authenticate=True");
    d.assert("superuser=True staff=True active=True");
    site.inspect("admin", ADMIN_PW).assert("authenticate=False");
    let new_hash = d.hash();
    assert_ne!(new_hash, old_hash);

    // DJANGO_ADMIN_UPDATE=1 with the same password: verified, not rewritten.
    let mut env2 = admin_env(NEW_PW);
    env2.push(("DJANGO_ADMIN_UPDATE", "1".into()));
    let out = site.ensureadmin(&[], &as_refs(&env2));
    no_secrets(out.assert_code(0));
    assert!(out.stdout.contains("matches"), "{}", out.report());
    assert_eq!(site.inspect("admin", NEW_PW).hash(), new_hash);

    // A deactivated user gets its flags back without a password rewrite.
    site.sql("UPDATE auth_user SET is_active = false, is_superuser = false");
    let out = site.ensureadmin(&[], &as_refs(&env2));
    out.assert_code(0);
    assert!(out.stdout.contains("flags restored"), "{}", out.report());
    let d = site.inspect("admin", NEW_PW);
    d.assert("superuser=True staff=True active=True");
    assert_eq!(d.hash(), new_hash);
}

/// A `pbkdf2_sha256` hash with `iterations`, of no password anyone knows (a valid shape).
fn hash_with_iterations(iterations: u64) -> String {
    format!("pbkdf2_sha256${iterations}$aEv27rEIKLvytpQvRm2kgQ$16EJltqzC2hAEwyK4vCNU6tl1kNuDfW609XYPO8WWlM=")
}

/// Issue 9 item 6: `--update` computed whatever iteration count the stored hash named, without
/// any deadline (4,000,000,000 iterations: an hour of CPU). Above the cap (10 x Django 5.2's
/// default) the hash is not computed but rewritten, at once.
#[test]
fn update_rewrites_a_stored_hash_with_absurd_iterations_without_computing_it() {
    let site = Site::new();
    site.migrate();
    site.django_superuser("admin", ADMIN_PW);
    site.sql(&format!(
        "UPDATE auth_user SET password = '{}'",
        hash_with_iterations(4_000_000_000)
    ));
    let mut cmd = djinit();
    cmd.args([
        "ensureadmin",
        "--update",
        "-u",
        "admin",
        "-p",
        ADMIN_PW,
        "-t",
        "5",
    ])
    .env("DATABASE_URL", site.pg.url());
    // Before the fix this ran for an hour; the limit turns that into a failure.
    let out = run(cmd, Duration::from_secs(60));
    no_secrets(out.assert_code(0));
    out.assert_stderr_contains(
        "the stored hash asks for 4000000000 PBKDF2 iterations, more than the 10000000",
    );
    assert!(out.stdout.contains("password updated"), "{}", out.report());
    let d = site.inspect("admin", ADMIN_PW);
    d.assert("authenticate=True");
    d.assert("must_update=False");
    assert!(
        d.hash().starts_with("pbkdf2_sha256$1000000$"),
        "{}",
        d.hash()
    );
}

/// Issue 9 item 6, the other half: `-t` bounds the hashing itself, checked inside the PBKDF2
/// loop. 10,000,000 iterations (at the cap, so computed) take seconds; `-t 1` stops them with
/// the timeout code, and nothing is written.
#[test]
fn timeout_stops_verifying_a_costly_stored_hash() {
    let site = Site::new();
    site.migrate();
    site.django_superuser("admin", ADMIN_PW);
    let costly = hash_with_iterations(10_000_000);
    site.sql(&format!("UPDATE auth_user SET password = '{costly}'"));
    let out = site.ensureadmin(&["--update", "-u", "admin", "-p", ADMIN_PW, "-t", "1"], &[]);
    no_secrets(out.assert_code(75));
    out.assert_stderr_contains(
        "verifying the stored password hash did not finish within --timeout 1s",
    );
    assert!(!out.stderr.contains(&costly), "{}", out.report());
    assert_eq!(site.sql("SELECT password FROM auth_user"), costly);
}

// ---- non-ASCII identities, Django's own variables -------------------------------------------------

/// Django's login view (`AuthenticationForm`: the username NFKC-normalised by `UsernameField`,
/// then `authenticate`) with the raw username as typed; prints True/False.
const LOGIN_FORM: &str = r#"
import os
from django.contrib.auth.forms import AuthenticationForm
f = AuthenticationForm(None, data={"username": os.environ["EA_USER"], "password": os.environ["EA_PW"]})
print(f.is_valid())
"#;

/// The rows that matter, to compare with what Django itself stored.
const IDENTITY_ROWS: &str =
    "SELECT username, email, is_superuser, is_staff, is_active, first_name, \
     last_name, last_login IS NULL FROM auth_user ORDER BY username";

/// Issue 9 item 2: every non-ASCII username failed (`column "nfkc" does not exist`, exit 65).
/// Composed, decomposed, full-width and ligature usernames and IDN email domains are stored as
/// Django's `create_superuser` stores them (checked against Django itself, in a second database),
/// and Django's `authenticate()` and login form find them.
#[test]
fn non_ascii_usernames_and_idn_emails_are_stored_as_django_stores_them() {
    let site = Site::new();
    site.migrate();
    let oracle_url = site.oracle_database();
    // (as given, as Django stores it (NFKC), email as given)
    let cases = [
        ("josé", "josé", "José.Ops@Bücher.EXAMPLE"),
        ("rene\u{301}e", "ren\u{e9}e", "renee@ÜBER.de"),
        ("ｍａｒｉａ", "maria", "maria@ΠΑΡΆΔΕΙΓΜΑ.ΔΟΚΙΜΉ"),
        ("\u{fb01}ona", "fiona", "fiona@例え.テスト"),
    ];
    for (raw, stored, email) in cases {
        let out = site.ensureadmin(
            &["-v", "2"],
            &[
                ("DJANGO_ADMIN_USERNAME", raw),
                ("DJANGO_ADMIN_PASSWORD", ADMIN_PW),
                ("DJANGO_ADMIN_EMAIL", email),
            ],
        );
        no_secrets(out.assert_code(0));
        assert!(out.stdout.contains("created"), "{}", out.report());
        // Django's own create_superuser, same input, the oracle database.
        let mut cmd = site.proj.manage(&[
            "shell",
            "--no-imports",
            "-c",
            "import os; from django.contrib.auth import get_user_model; \
             get_user_model().objects.create_superuser(os.environ['EA_USER'], os.environ['EA_EMAIL'], os.environ['EA_PW'])",
        ]);
        cmd.env("DATABASE_URL", &oracle_url)
            .env("EA_USER", raw)
            .env("EA_EMAIL", email)
            .env("EA_PW", ADMIN_PW);
        run(cmd, RUN_LIMIT).assert_code(0);

        let d = site.inspect(stored, ADMIN_PW);
        d.assert("count=1");
        d.assert("authenticate=True");
        d.assert("superuser=True staff=True active=True");
        let login = site.django(LOGIN_FORM, &[("EA_USER", raw), ("EA_PW", ADMIN_PW)]);
        assert_eq!(login, "True", "Django's login form with {raw:?}");
        // Running again finds the user (no second row under another normal form).
        let again = site.ensureadmin(&["-u", raw, "-p", ADMIN_PW, "-e", email], &[]);
        again.assert_code(0);
        assert!(
            again.stdout.contains("already exists"),
            "{}",
            again.report()
        );
    }
    assert_eq!(
        site.sql(IDENTITY_ROWS),
        site.pg.psql_in("oracle", IDENTITY_ROWS),
        "djinit stored what Django's create_superuser stores"
    );
    assert_eq!(site.sql("SELECT count(*) FROM auth_user"), "4");
}

/// Issue 12 item 6: Django's own `DJANGO_SUPERUSER_USERNAME/PASSWORD/EMAIL` (what
/// `createsuperuser --noinput` reads) work through the runner when no `DJANGO_ADMIN_*` is set,
/// and give the user `createsuperuser` gives; `DJANGO_ADMIN_*` and flags win over them.
#[test]
fn django_superuser_variables_work_through_the_runner_like_createsuperuser() {
    let site = Site::new();
    site.migrate();
    let oracle_url = site.oracle_database();
    let env = [
        ("DJANGO_SUPERUSER_USERNAME", "ｒｏｏｔ"),
        ("DJANGO_SUPERUSER_PASSWORD", ADMIN_PW),
        ("DJANGO_SUPERUSER_EMAIL", "Root@Bücher.Example"),
    ];
    let out = site.ensureadmin(&["-v", "2"], &env);
    no_secrets(out.assert_code(0));
    assert!(out.stdout.contains("created"), "{}", out.report());
    let mut cmd = site.proj.manage(&["createsuperuser", "--noinput"]);
    cmd.env("DATABASE_URL", &oracle_url);
    for (k, v) in env {
        cmd.env(k, v);
    }
    no_secrets(run(cmd, RUN_LIMIT).assert_code(0));
    assert_eq!(
        site.sql(IDENTITY_ROWS),
        site.pg.psql_in("oracle", IDENTITY_ROWS),
        "djinit stored what createsuperuser --noinput stores"
    );
    site.inspect("root", ADMIN_PW).assert("authenticate=True");

    // DJANGO_ADMIN_* win, field by field (here the username and the password).
    let mut both = env.to_vec();
    both.extend([
        ("DJANGO_ADMIN_USERNAME", "ops"),
        ("DJANGO_ADMIN_PASSWORD", NEW_PW),
    ]);
    let out = site.ensureadmin(&[], &both);
    no_secrets(out.assert_code(0));
    let d = site.inspect("ops", NEW_PW);
    d.assert("authenticate=True");
    d.assert("email='Root@bücher.example'");
    // Flags win over both.
    let out = site.ensureadmin(&["-u", "flagged"], &both);
    no_secrets(out.assert_code(0));
    site.inspect("flagged", NEW_PW).assert("authenticate=True");
    assert_eq!(site.sql("SELECT count(*) FROM auth_user"), "3");
}

// ---- validation -----------------------------------------------------------------------------------

const WEAK_SIMILAR: &str = "OpsTeam@Example.co";

#[test]
fn weak_passwords_are_rejected_as_django_would_and_no_validate_accepts_them() {
    let site = Site::new();
    site.migrate();
    // Django's default validators decide (the oracle), for the same username and email.
    let oracle = r#"
import os
from django.conf import settings
from django.contrib.auth.password_validation import get_password_validators, validate_password
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
vs = get_password_validators([{"NAME": "django.contrib.auth.password_validation." + n} for n in
    ["UserAttributeSimilarityValidator", "MinimumLengthValidator", "CommonPasswordValidator", "NumericPasswordValidator"]])
u = get_user_model()(username="admin", email="ops.team@example.com")
try:
    validate_password(os.environ["EA_PW"], u, vs)
    print("")
except ValidationError as e:
    print(" ".join(x.code for x in e.error_list))
"#;
    let cases = [
        ("Sh0rt!", "password_too_short"),
        ("8675309112358", "password_entirely_numeric"),
        ("baseball", "password_too_common"),
        (WEAK_SIMILAR, "password_too_similar"),
        ("Admin1", "password_too_similar"),
    ];
    for (pw, rule) in cases {
        let codes = site.django(oracle, &[("EA_PW", pw)]);
        assert!(
            codes.split(' ').any(|c| c == rule),
            "oracle says {codes:?} for {pw:?}"
        );
        let out = site.ensureadmin(
            &[
                "-u",
                "admin",
                "-e",
                "ops.team@Example.com",
                "-p",
                pw,
                "-v",
                "3",
            ],
            &[],
        );
        out.assert_code(65);
        // Every rule Django names is named, and no other.
        for code in codes.split(' ') {
            out.assert_stderr_contains(code);
        }
        for code in [
            "password_too_short",
            "password_entirely_numeric",
            "password_too_common",
            "password_too_similar",
        ] {
            if !codes.split(' ').any(|c| c == code) {
                assert!(
                    !out.stderr.contains(code),
                    "{code} not expected for {pw:?}:\n{}",
                    out.report()
                );
            }
        }
        assert_eq!(
            out.stderr.trim().lines().count(),
            1,
            "one line:\n{}",
            out.report()
        );
        assert!(
            !out.stderr.contains(pw) && !out.stdout.contains(pw),
            "password echoed:\n{}",
            out.report()
        );
        assert_eq!(site.sql("SELECT count(*) FROM auth_user"), "0");
    }
    // --no-validate: accepted, and Django authenticates it.
    let out = site.ensureadmin(&["-u", "admin", "-p", "baseball", "--no-validate"], &[]);
    out.assert_code(0);
    site.inspect("admin", "baseball")
        .assert("authenticate=True");
}

// ---- inputs ---------------------------------------------------------------------------------------

#[test]
fn password_file_is_read_through_the_runner_mount() {
    let site = Site::new();
    site.migrate();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("admin-password");
    std::fs::write(&file, format!("{ADMIN_PW}\n")).unwrap();
    let path = file.to_str().unwrap();
    let out = site.ensureadmin(&["-u", "filed", "--password-file", path, "-v", "3"], &[]);
    no_secrets(out.assert_code(0));
    site.inspect("filed", ADMIN_PW).assert("authenticate=True");
    // From the environment too.
    let out = site.ensureadmin(&["-u", "filed2"], &[("DJANGO_ADMIN_PASSWORD_FILE", path)]);
    no_secrets(out.assert_code(0));
    site.inspect("filed2", ADMIN_PW).assert("authenticate=True");
}

#[test]
fn usage_errors_have_the_right_codes_and_never_show_the_password() {
    let site = Site::new();
    site.migrate();
    let missing = format!("{}/no-such-dir-xyz/pw", std::env::temp_dir().display());
    let dir = tempfile::tempdir().unwrap();
    let absent_in_existing_dir = dir.path().join("absent");
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, i32, &'a str);
    let cases: Vec<Case> = vec![
        (vec!["-p", ADMIN_PW], vec![], 64, "Username is required"),
        (vec!["-u", "a"], vec![], 64, "Password is required"),
        (
            vec![
                "-u",
                "a",
                "-p",
                ADMIN_PW,
                "--password-hash",
                "pbkdf2_sha256$1$a$b",
            ],
            vec![],
            64,
            "exactly one",
        ),
        (
            vec![
                "-u",
                "a",
                "--password-file",
                absent_in_existing_dir.to_str().unwrap(),
            ],
            vec![],
            66,
            "cannot read the password file",
        ),
        (vec!["-u", "a", "--password-file", &missing], vec![], 66, ""),
        (
            vec!["-u", "a", "-p", ADMIN_PW, "--table", "x;drop"],
            vec![],
            64,
            "not a plain identifier",
        ),
        (
            vec!["-u", "a", "-p", ADMIN_PW, "--bogus"],
            vec![],
            64,
            "--bogus",
        ),
        (
            vec!["-u", "a", "-p", ADMIN_PW, "--iterations", "10000001"],
            vec![],
            64,
            "--iterations must be at most 10000000",
        ),
    ];
    for (args, env, code, msg) in cases {
        let out = site.ensureadmin(&args, &env);
        no_secrets(out.assert_code(code));
        if !msg.is_empty() {
            out.assert_stderr_contains(msg);
        }
    }
}

#[test]
fn unmigrated_database_says_schema_missing_with_the_retry_code() {
    let site = Site::new();
    let env = admin_env(ADMIN_PW);
    let out = site.ensureadmin(&["-v", "3"], &as_refs(&env));
    no_secrets(out.assert_code(69));
    out.assert_stderr_contains("schema missing: run migrations first");
    out.assert_stderr_contains("migrate");
}

// ---- custom user models -----------------------------------------------------------------------------

/// The fixture app `accounts` (custom user model `Member`, email as USERNAME_FIELD) copied into a
/// project, migrations made and applied.
fn accounts_site() -> Site {
    let site = Site::with_apps(&["accounts"]);
    let app = site.proj.path().join("accounts");
    std::fs::create_dir(&app).unwrap();
    let fixture = workspace_root().join("tests/fixtures/ensureadmin_accounts");
    for f in ["__init__.py", "apps.py", "models.py"] {
        std::fs::copy(fixture.join(f), app.join(f)).unwrap();
    }
    site.proj
        .add_settings("AUTH_USER_MODEL = \"accounts.Member\"");
    site.manage(&["makemigrations", "accounts", "-v", "0"])
        .assert_code(0);
    site.migrate();
    site
}

#[test]
fn custom_user_table_with_email_as_username_field() {
    let site = accounts_site();
    let args = [
        "--table",
        "accounts_member",
        "--username-field",
        "email",
        "-e",
        "Boss@Corp.IO",
        "-p",
        ADMIN_PW,
        "-v",
        "3",
    ];
    let out = site.ensureadmin(&args, &[]);
    no_secrets(out.assert_code(0));
    assert!(out.stdout.contains("created"), "{}", out.report());
    let d = site.inspect("Boss@corp.io", ADMIN_PW);
    d.assert("count=1");
    d.assert("authenticate=True");
    d.assert("superuser=True staff=True active=True");
    d.assert("last_login_null=True");
    // Simultaneous runs: still one row (the email column is unique: ON CONFLICT).
    let url = site.pg.url();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            thread::spawn(move || ensureadmin_cmd(&url, &args, &[]))
        })
        .collect();
    for h in handles {
        h.join().unwrap().assert_code(0);
    }
    assert_eq!(site.sql("SELECT count(*) FROM accounts_member"), "1");
    // A table without the username column is a configuration error.
    let out = site.ensureadmin(
        &["--table", "accounts_member", "-u", "x", "-p", ADMIN_PW],
        &[],
    );
    out.assert_code(78)
        .assert_stderr_contains("no column username");
}

#[test]
fn table_without_unique_username_is_serialised_by_advisory_lock() {
    let pg = Cluster::start(Auth::Scram);
    pg.psql(
        "CREATE TABLE plain_users (id serial PRIMARY KEY, password varchar(128) NOT NULL, \
         is_superuser boolean NOT NULL, login text NOT NULL, last_login timestamptz)",
    );
    let url = pg.url();
    let args = [
        "--table",
        "plain_users",
        "--username-field",
        "login",
        "-u",
        "root",
        "-p",
        ADMIN_PW,
        "--iterations",
        "1000",
    ];
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            thread::spawn(move || ensureadmin_cmd(&url, &args, &[]))
        })
        .collect();
    for h in handles {
        no_secrets(h.join().unwrap().assert_code(0));
    }
    assert_eq!(pg.psql("SELECT count(*) FROM plain_users"), "1");
    assert_eq!(pg.psql("SELECT is_superuser FROM plain_users"), "t");
    // A required column ensureadmin cannot fill: refused before writing.
    pg.psql(
        "CREATE TABLE strict_users (password text NOT NULL, is_superuser boolean NOT NULL, \
             login text UNIQUE NOT NULL, tenant int NOT NULL)",
    );
    let out = ensureadmin_cmd(
        &url,
        &[
            "--table",
            "strict_users",
            "--username-field",
            "login",
            "-u",
            "r",
            "-p",
            ADMIN_PW,
        ],
        &[],
    );
    out.assert_code(78).assert_stderr_contains("tenant");
}
