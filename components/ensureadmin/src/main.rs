//! `ensureadmin`: make sure a Django superuser exists, with credentials from a Kubernetes Secret.
//!
//! Created exactly as Django's `create_superuser` would (see [`ensureadmin::sql`] for the
//! columns), the password hashed here as `pbkdf2_sha256` with Django's default iterations; safe
//! under any number of simultaneous runs ([`ensureadmin::ensure`]). The password never appears in
//! any output: it lives in `Secret` values and no message formats it.
//! Run it: `djinit ensureadmin` (see README), or `wasmtime run -S inherit-network
//! -S allow-ip-name-lookup --env DATABASE_URL --env DJANGO_ADMIN_USERNAME ... ensureadmin.wasm`.

use djinit_cli::{Failure, Log};
use djinit_pg::config::Secret;
use djinit_pg::{Client, Config};
use djinit_wait::{retry, Deadline, Kind};
use ensureadmin::ensure::{self, Outcome, Password, Request};
use ensureadmin::options::{Options, PasswordSource};
use ensureadmin::{hash, normalize, validate};
use std::time::Duration;

fn main() -> std::process::ExitCode {
    djinit_cli::main("ensureadmin", djinit_pg::classify, run)
}

fn fail(kind: Kind, msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Failure::new(kind, msg))
}

/// The password file's content without one trailing newline. Unreadable: exit 66.
fn read_password_file(path: &str) -> anyhow::Result<Secret> {
    let bytes = std::fs::read(path).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".to_string(),
            std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
            _ => e.to_string(),
        };
        fail(
            Kind::NoInput,
            format!("cannot read the password file {path}: {why}"),
        )
    })?;
    let mut s = String::from_utf8(bytes).map_err(|_| {
        fail(
            Kind::Data,
            format!("the password file {path} is not UTF-8 text"),
        )
    })?;
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
    if s.is_empty() {
        return Err(fail(
            Kind::Usage,
            format!("the password file {path} is empty"),
        ));
    }
    Ok(Secret::new(s))
}

fn run() -> anyhow::Result<()> {
    let env = |k: &str| std::env::var(k).ok();
    let Some(opts) = Options::parse(djinit_cli::Args::from_env(), &env)?.or_print() else {
        return Ok(());
    };
    let log = Log::new("ensureadmin", opts.common.verbosity);
    let given = Given::read(&opts.password)?;
    let who = Identity::of(&opts);
    check_password(given.password(), &who, &opts, &log)?;

    let cfg = Config::for_command(&opts.common.database, "djinit ensureadmin")?;
    log.detail(format!(
        "ensuring superuser {:?} in {} table {} (username field {}, timeout {}s)",
        who.username,
        cfg.describe(),
        opts.table,
        opts.username_field,
        opts.timeout.as_secs_f64()
    ));
    let mut client = connect(&cfg, opts.timeout, &log)?;
    let plan = ensure::plan(&mut client, &opts.table, &opts.username_field)?;
    log.debug(format!("plan: {plan}"));
    if opts.email.is_some() && !plan.writes_email && !who.is_email_username {
        log.info(format!(
            "note: table {} has no email column; the email is not stored",
            opts.table
        ));
    }
    let req = Request {
        table: &opts.table,
        username_field: &opts.username_field,
        username: &who.username,
        email: &who.email,
        password: given.password(),
        iterations: opts.iterations,
        update: opts.update,
        timeout: opts.timeout,
    };
    let outcome = ensure::ensure(&mut client, &plan, &req, &log)?;
    client.close();
    if log.verbosity() >= 1 {
        // The first two lines are django-kubernetes' own, on stdout as there.
        println!("{}", said(&outcome));
    }
    log.detail(format!(
        "done in {:.1} ms",
        log.elapsed().as_secs_f64() * 1e3
    ));
    Ok(())
}

/// The password as given, owned (a password file is read here): plaintext to hash, or a hash
/// to store verbatim.
enum Given {
    Plain(Secret),
    Hash(Secret),
}

impl Given {
    fn read(source: &PasswordSource) -> anyhow::Result<Given> {
        Ok(match source {
            PasswordSource::Plain(s) => Given::Plain(s.clone()),
            PasswordSource::Hash(h) => Given::Hash(h.clone()),
            PasswordSource::File(path) => Given::Plain(read_password_file(path)?),
        })
    }

    fn password(&self) -> Password<'_> {
        match self {
            Given::Plain(s) => Password::Plain(s.expose()),
            Given::Hash(h) => Password::Hash(h.expose()),
        }
    }
}

/// The username and email as Django's create_superuser stores them (the username NFKC, the
/// email's domain lower-cased), before validation sees them.
struct Identity {
    username: String,
    email: String,
    is_email_username: bool,
}

impl Identity {
    fn of(opts: &Options) -> Identity {
        let is_email_username = opts.username_field == "email";
        Identity {
            email: normalize::normalize_email(opts.email.as_deref()),
            username: normalize::normalize_username(&if is_email_username {
                normalize::normalize_email(Some(&opts.username))
            } else {
                opts.username.clone()
            }),
            is_email_username,
        }
    }
}

/// A given hash must be one Django can verify; a plaintext password must pass Django's default
/// validators (unless `--no-validate`). Before any connection.
fn check_password(
    password: Password<'_>,
    who: &Identity,
    opts: &Options,
    log: &Log,
) -> anyhow::Result<()> {
    match password {
        Password::Hash(h) => {
            let alg = hash::identify(h).map_err(|e| {
                fail(
                    Kind::Data,
                    format!("--password-hash is not a usable Django password hash: {e}"),
                )
            })?;
            if !alg.in_default_hashers() {
                log.info(format!(
                    "note: {alg} is not in Django's default PASSWORD_HASHERS; the project must list its hasher"
                ));
            }
            log.detail(format!("storing the given {alg} hash verbatim"));
        }
        Password::Plain(pw) if opts.validate => {
            let mut attrs: Vec<(&str, &str)> = Vec::new();
            if !who.is_email_username {
                attrs.push(("username", &who.username));
            }
            attrs.push(("email address", &who.email));
            let failures = validate::validate(pw, &attrs);
            if !failures.is_empty() {
                return Err(fail(
                    Kind::Data,
                    format!(
                        "password rejected by Django's default validators (--no-validate skips them): {}",
                        validate::describe(&failures)
                    ),
                ));
            }
        }
        Password::Plain(_) => log.detail("password validation skipped (--no-validate)"),
    }
    Ok(())
}

/// Connect, retrying transient failures (a database still starting) until `--timeout`.
fn connect(cfg: &Config, timeout: Duration, log: &Log) -> anyhow::Result<Client> {
    let client = retry(
        Deadline::after(timeout),
        Duration::from_secs(1),
        |e| log.retry_event(1, &e),
        |d| Client::connect(cfg, d),
    )
    .map_err(|e| anyhow::Error::new(e).context(format!("connecting to {}", cfg.describe())))?;
    log.debug(format!(
        "connected to {} (auth {})",
        client.addr(),
        client.auth_method()
    ));
    Ok(client)
}

/// The line printed for an outcome.
fn said(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Created => "Admin user created from environment variables.",
        Outcome::Exists => "Admin user already exists, service is ready.",
        Outcome::Unchanged => "Admin user already exists and matches, service is ready.",
        Outcome::Updated {
            password: true,
            flags: false,
        } => "Admin user already existed; password updated.",
        Outcome::Updated {
            password: true,
            flags: true,
        } => "Admin user already existed; password updated and superuser flags restored.",
        Outcome::Updated {
            password: false, ..
        } => "Admin user already existed; superuser flags restored.",
    }
}
