use super::*;
use std::collections::HashMap;
use std::ffi::OsString;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
    let m: HashMap<String, OsString> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), OsString::from(v)))
        .collect();
    move |k| m.get(k).cloned()
}

fn url(u: &str) -> Result<Config> {
    Config::from_url(u)
}

#[test]
fn full_url() {
    let c = url("postgresql://app%40corp:p%3Ass%2Fw%40rd@db.example:6543/my%20db?sslmode=disable&connect_timeout=1&application_name=web&options=-c%20search_path%3Dapp")
    .unwrap();
    assert_eq!(c.user, "app@corp");
    assert_eq!(c.password.as_ref().unwrap().expose(), "p:ss/w@rd");
    assert_eq!(
        c.hosts,
        vec![HostPort {
            host: "db.example".into(),
            port: 6543
        }]
    );
    assert_eq!(c.dbname, "my db");
    assert_eq!(c.sslmode, SslMode::Disable);
    assert_eq!(
        c.connect_timeout,
        Some(Duration::from_secs(2)),
        "libpq minimum is 2 s"
    );
    assert_eq!(c.application_name.as_deref(), Some("web"));
    assert_eq!(c.options.as_deref(), Some("-c search_path=app"));
}

#[test]
fn ipv6_and_multiple_hosts() {
    let c = url("postgres://u@[::1]:5433,[fe80::2],h3:7/d").unwrap();
    assert_eq!(
        c.hosts,
        vec![
            HostPort {
                host: "::1".into(),
                port: 5433
            },
            HostPort {
                host: "fe80::2".into(),
                port: 5432
            },
            HostPort {
                host: "h3".into(),
                port: 7
            },
        ]
    );
    assert_eq!(c.hosts[0].to_string(), "[::1]:5433");
}

#[test]
fn unencoded_slash_in_password() {
    let c = url("postgres://u:a/b@h/db").unwrap();
    assert_eq!(c.password.unwrap().expose(), "a/b");
    assert_eq!(c.dbname, "db");
}

#[test]
fn defaults() {
    let c = url("postgres://").unwrap();
    assert_eq!(
        c.hosts,
        vec![HostPort {
            host: "localhost".into(),
            port: 5432
        }]
    );
    assert_eq!(c.user, "postgres");
    assert_eq!(c.dbname, "postgres");
    assert_eq!(c.sslmode, SslMode::Prefer);
    assert!(c.password.is_none());
}

#[test]
fn errors_never_echo_the_url() {
    for url in [
        "mysql://u:hunter2@h/db",
        "postgres://u:hunter2@h:99999/db",
        "postgres://u:hunter2@h/db?bogus=1",
        "postgres://u:hunter2@[::1/db",
        "postgres://u:hunter2@h/db?sslmode=sometimes",
        "postgres://u:hunter2@h:abc/db",
    ] {
        let e = Config::from_url(url).unwrap_err().to_string();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.starts_with("DATABASE_URL"), "{e}");
        assert_eq!(e.lines().count(), 1);
    }
}

#[test]
fn unix_socket_refused() {
    let e = url("postgres:///db?host=/var/run/postgresql").unwrap_err();
    assert!(e.to_string().contains("Unix-domain socket"));
}

#[test]
fn url_wins_and_pg_vars_fill_in() {
    let c = Config::from_env(
        "default",
        &env(&[
            ("DATABASE_URL", "postgres://urluser@urlhost/urldb"),
            ("PGHOST", "envhost"),
            ("PGPORT", "6000"),
            ("PGPASSWORD", "envpw"),
            ("PGAPPNAME", "app"),
        ]),
    )
    .unwrap();
    assert_eq!(
        c.hosts,
        vec![HostPort {
            host: "urlhost".into(),
            port: 6000
        }]
    );
    assert_eq!(c.user, "urluser");
    assert_eq!(c.password.unwrap().expose(), "envpw");
    assert_eq!(c.application_name.as_deref(), Some("app"));
    assert_eq!(c.source.to_string(), "DATABASE_URL");
}

#[test]
fn pg_vars_alone() {
    let c = Config::from_env(
        "default",
        &env(&[
            ("PGHOST", "a,b"),
            ("PGPORT", "1,2"),
            ("PGUSER", "u"),
            ("PGSSLMODE", "disable"),
        ]),
    )
    .unwrap();
    assert_eq!(c.hosts.len(), 2);
    assert_eq!(
        c.hosts[1],
        HostPort {
            host: "b".into(),
            port: 2
        }
    );
    assert_eq!(c.dbname, "u");
    assert_eq!(c.source.to_string(), "PG* variables");
}

#[test]
fn nothing_configured() {
    let e = Config::from_env("default", &env(&[])).unwrap_err();
    assert!(e.to_string().contains("DATABASE_URL"));
}

#[test]
fn alias_reads_its_own_variable_only() {
    let vars = env(&[
        ("DATABASE_URL_REPLICA", "postgres://r@replica/db"),
        ("PGPASSWORD", "not-for-replica"),
    ]);
    let c = Config::from_env("replica", &vars).unwrap();
    assert_eq!(c.hosts[0].host, "replica");
    assert!(c.password.is_none());
    let e = Config::from_env("other", &vars).unwrap_err().to_string();
    assert!(e.contains("DATABASE_URL_OTHER"), "{e}");
    assert!(Config::from_env("bad-alias!", &vars).is_err());
    assert_eq!(
        env_vars("replica"),
        vec!["DATABASE_URL_REPLICA".to_string()]
    );
}

#[test]
fn secret_is_never_printed() {
    let c = url("postgres://u:topsecret@h/db").unwrap();
    assert!(!format!("{c:?}").contains("topsecret"));
    assert!(!c.describe().contains("topsecret"));
    assert_eq!(c.describe(), "u@h:5432/db");
}

#[test]
fn tls_settings_are_checked_when_read() {
    let c = url("postgres://h/db?sslrootcert=system").unwrap();
    assert_eq!(
        c.sslmode,
        SslMode::VerifyFull,
        "libpq 16: system implies verify-full"
    );
    let c = url("postgres://h/db?sslrootcert=system&sslmode=require").unwrap();
    assert_eq!(
        c.sslmode,
        SslMode::Require,
        "refused at connect, with a clear message"
    );
    for (url, msg) in [
        (
            "postgres://h/db?channel_binding=maybe",
            "channel_binding: invalid value",
        ),
        (
            "postgres://h/db?sslnegotiation=later",
            "sslnegotiation: invalid value",
        ),
    ] {
        let e = Config::from_url(url).unwrap_err();
        assert!(e.to_string().contains(msg), "{e}");
        assert_eq!(
            crate::Error::from(e.clone()).kind(),
            crate::ErrorKind::Config
        );
    }
    let c = url("postgres://h/db?channel_binding=require").unwrap();
    assert_eq!(
        c.channel_binding_mode(),
        crate::proto::startup::ChannelBindingMode::Require
    );
}

/// Issue 9: passwords pasted into the URL without percent-encoding. Everything up to the last
/// `@` is the user name and password, so none of these is split early.
#[test]
fn unencoded_password_ends_at_the_last_at() {
    for (u, password) in [
        (
            "postgres://app:4711?sslmode=SECRET@127.0.0.1:5432/app",
            "4711?sslmode=SECRET",
        ),
        (
            "postgres://app:4711?channel_binding=SECRET@127.0.0.1:5432/app",
            "4711?channel_binding=SECRET",
        ),
        (
            "postgres://app:4711?port=SECRET@127.0.0.1:5432/app",
            "4711?port=SECRET",
        ),
        (
            "postgres://app:abc?xSECRET@127.0.0.1:5432/app",
            "abc?xSECRET",
        ),
        (
            "postgres://app:p@ss/w?#:&=x@127.0.0.1:5432/app",
            "p@ss/w?#:&=x",
        ),
        ("postgres://app:a%40b@127.0.0.1:5432/app", "a@b"),
    ] {
        let c = url(u).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.user, "app");
        assert_eq!(c.password.as_ref().map(Secret::expose), Some(password));
        assert_eq!(c.hosts[0].to_string(), "127.0.0.1:5432");
        assert_eq!(c.dbname, "app");
        assert_eq!(c.sslmode, SslMode::Prefer);
    }
    // An Azure-style user name with '@' needs no encoding either.
    let c = url("postgres://me@srv:pw@db.example/app").unwrap();
    assert_eq!(
        (c.user.as_str(), c.hosts[0].host.as_str()),
        ("me@srv", "db.example")
    );
    assert_eq!(c.password.unwrap().expose(), "pw");
}

/// Issue 9: malformed URLs with the secret in them; the error names the part, never the text.
#[test]
fn malformed_urls_never_echo_any_part() {
    for (u, part) in [
        // `&` unencoded in a query password: the rest reads as a parameter without a value.
        (
            "postgres://app@127.0.0.1/app?password=abc&defSECRET",
            "query parameter 2",
        ),
        (
            "postgres://app@127.0.0.1/app?password=abc&defSECRET=1",
            "query parameter 2",
        ),
        // No '@': `user:password` reads as `host:port`.
        ("postgres://app:SECRET127.0.0.1:5432/app", "the host list"),
        ("postgres://app:SECRET127.0.0.1/app", "a port"),
        ("postgres://app:SECRET@127.0.0.1:SECRET/app", "a port"),
        (
            "postgres://app:SECRET@127.0.0.1/app?sslmode=SECRET",
            "sslmode",
        ),
        (
            "postgres://app:SECRET@127.0.0.1/app?connect_timeout=SECRET",
            "connect_timeout",
        ),
        (
            "postgres://app:SECRET@127.0.0.1/app?channel_binding=SECRET",
            "channel_binding",
        ),
        (
            "postgres://app:SECRET@127.0.0.1/app?sslnegotiation=SECRET",
            "sslnegotiation",
        ),
        ("postgres://app:SECRET@127.0.0.1/app?port=SECRET", "port"),
        ("postgres://app:SECRET@127.0.0.1/app?host=SECRET:x", "host"),
        ("postgres://app:SECRET@[SECRET]/app", "the host list"),
        ("postgres://app:SECRET@SECRET!/app", "the host list"),
        (
            "postgres://app:SECRET@127.0.0.1/app?SECRET=1",
            "query parameter 1",
        ),
        (
            "postgres://app:SECRET@127.0.0.1/app?%SECRET=1",
            "query parameter 1",
        ),
        ("postgres://app:SECRET%zz@127.0.0.1/app", "the password"),
        ("postgres://app:SECRET%00@127.0.0.1/app", "the password"),
        ("postgres://app:SECRET%ff@127.0.0.1/app", "the password"),
        ("postgres://app:pw@127.0.0.1/SECRET%00", "the database name"),
        (
            "postgres://app:pw@127.0.0.1/app?application_name=SECRET%00",
            "application_name",
        ),
        (
            "postgres://app:pw@127.0.0.1/app?options=%00SECRET",
            "options",
        ),
        // A '@' in a query value must be %40: otherwise it ends the userinfo.
        ("postgres:///app?host=h&user=SECRET@corp", "the user name"),
        (
            "postgres://app:pw@h/app?application_name=SECRET@corp&sslmode=disable",
            "the host list",
        ),
        ("mysql://app:SECRET@127.0.0.1/app", "the scheme"),
    ] {
        let e = url(u).unwrap_err();
        let text = e.to_string();
        assert_eq!(
            crate::Error::from(e.clone()).kind(),
            crate::ErrorKind::Config,
            "{text}"
        );
        assert!(!text.contains("SECRET"), "{u}: {text}");
        assert!(
            text.starts_with(&format!("DATABASE_URL: {part}: ")),
            "{u}: {text}"
        );
        assert_eq!(text.lines().count(), 1);
        // The secret's neighbours never show either.
        for piece in ["def", "corp", "127.0.0.1", "app:"] {
            assert!(!text.contains(piece), "{u}: {text}");
        }
    }
}

#[test]
fn not_utf8_is_reported_as_such() {
    use std::os::unix::ffi::OsStringExt;
    let bad = || Some(OsString::from_vec(b"postgres://u:\xff@h/db".to_vec()));
    let e =
        Config::from_env("default", &|k| (k == "DATABASE_URL").then(bad).flatten()).unwrap_err();
    assert_eq!(
        crate::Error::from(e.clone()).kind(),
        crate::ErrorKind::Config
    );
    assert!(
        e.to_string().starts_with("DATABASE_URL: not valid UTF-8"),
        "{e}"
    );
    let e = Config::from_env("replica", &|k| {
        (k == "DATABASE_URL_REPLICA").then(bad).flatten()
    })
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("DATABASE_URL_REPLICA: not valid UTF-8"),
        "{e}"
    );
    let e = Config::from_env("default", &|k| match k {
        "PGHOST" => Some("h".into()),
        "PGPASSWORD" => bad(),
        _ => None,
    })
    .unwrap_err();
    assert!(
        e.to_string().starts_with("PGPASSWORD: not valid UTF-8"),
        "{e}"
    );
}

#[test]
fn pg_variables_are_checked_and_named() {
    for (var, value) in [
        ("PGPORT", "SECRET"),
        ("PGPORT", "0"),
        ("PGHOST", "SECRET:1"),
        ("PGSSLMODE", "SECRET"),
        ("PGCONNECT_TIMEOUT", "SECRET"),
        ("PGCHANNELBINDING", "SECRET"),
        ("PGSSLNEGOTIATION", "SECRET"),
        ("PGHOST", "/run/SECRET"),
    ] {
        let e = Config::from_env("default", &env(&[("PGUSER", "u"), (var, value)])).unwrap_err();
        let text = e.to_string();
        assert!(text.starts_with(&format!("{var}: ")), "{text}");
        assert!(!text.contains("SECRET"), "{text}");
        assert_eq!(
            crate::Error::from(e.clone()).kind(),
            crate::ErrorKind::Config
        );
    }
    // As in libpq, a variable is read only for what the URL leaves unset.
    let c = Config::from_env(
        "default",
        &env(&[("DATABASE_URL", "postgres://h:7/db"), ("PGPORT", "bogus")]),
    )
    .unwrap();
    assert_eq!(c.hosts[0].port, 7);
    let e =
        Config::from_env("default", &env(&[("PGHOST", "a,b,c"), ("PGPORT", "1,2")])).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("PG* variables: the number of ports"),
        "{e}"
    );
}

/// Every libpq variable in the documented list is read.
#[test]
fn every_pg_variable_is_read() {
    let base = Config::from_env("default", &env(&[("PGUSER", "u")])).unwrap();
    for var in PG_ENV_VARS {
        let value = match *var {
            "PGHOST" => "h2",
            "PGPORT" => "7",
            "PGCONNECT_TIMEOUT" => "9",
            "PGSSLMODE" => "disable",
            "PGCHANNELBINDING" => "require",
            "PGSSLNEGOTIATION" => "direct",
            "PGUSER" => "u2",
            _ => "x",
        };
        let c = Config::from_env("default", &env(&[("PGUSER", "u"), (var, value)])).unwrap();
        assert_ne!(c, base, "{var} had no effect");
    }
}

#[test]
fn nul_anywhere_is_a_config_error() {
    for u in [
        "postgres://u%00:pw@h/db",
        "postgres://u:p%00w@h/db",
        "postgres://u@h/d%00b",
        "postgres://u@h/db?user=%00",
        "postgres://u@h/db?sslrootcert=%00",
    ] {
        let e = url(u).unwrap_err();
        assert!(e.to_string().contains("NUL"), "{e}");
    }
}

#[test]
fn ipv4_mapped_ipv6_literal_is_kept_as_written() {
    // The transport connects to the IPv4 address; the settings keep what the user wrote.
    let c = url("postgres://u@[::ffff:127.0.0.1]:5433/db").unwrap();
    assert_eq!(c.hosts[0].to_string(), "[::ffff:127.0.0.1]:5433");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any password of printable ASCII without '%' parses back unencoded; any parses back
        /// percent-encoded.
        #[test]
        fn any_password_round_trips(pw in "[ -~]{1,40}") {
            let enc: String = percent_encoding::utf8_percent_encode(&pw, percent_encoding::NON_ALPHANUMERIC).collect();
            let c = url(&format!("postgres://u:{enc}@h:5/db?sslmode=disable")).unwrap();
            prop_assert_eq!(c.password.as_ref().map(Secret::expose), Some(pw.as_str()));
            if !pw.contains('%') {
                let c = url(&format!("postgres://u:{pw}@h:5/db?sslmode=disable")).unwrap();
                prop_assert_eq!(c.password.as_ref().map(Secret::expose), Some(pw.as_str()));
                prop_assert_eq!(c.hosts[0].to_string(), "h:5");
                prop_assert_eq!(c.sslmode, SslMode::Disable);
            }
        }

        /// Whatever follows a marked secret, a configuration error never contains it.
        #[test]
        fn errors_never_contain_the_secret(
            before in "[ -~]{0,12}",
            after in "[ -~]{0,24}",
        ) {
            let secret = "Zq9SECRETqZ";
            for u in [
                format!("postgres://{before}{secret}{after}"),
                format!("postgres://u:{before}{secret}{after}"),
                format!("postgres://u@h/db?{before}{secret}{after}"),
                format!("postgres://u@h/db?password={before}{secret}{after}"),
            ] {
                if let Err(e) = url(&u) {
                    prop_assert!(!e.to_string().contains("SECRET"), "{}", e);
                }
            }
        }
    }
}
