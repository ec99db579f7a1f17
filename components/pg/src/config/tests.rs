use super::*;
use std::collections::HashMap;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let m: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| m.get(k).cloned()
}

#[test]
fn full_url() {
    let c = Config::from_url(
        "postgresql://app%40corp:p%3Ass%2Fw%40rd@db.example:6543/my%20db?sslmode=disable&connect_timeout=1&application_name=web&options=-c%20search_path%3Dapp",
        "DATABASE_URL",
    )
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
    let c = Config::from_url("postgres://u@[::1]:5433,[fe80::2],h3:7/d", "X").unwrap();
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
    let c = Config::from_url("postgres://u:a/b@h/db", "X").unwrap();
    assert_eq!(c.password.unwrap().expose(), "a/b");
    assert_eq!(c.dbname, "db");
}

#[test]
fn defaults() {
    let c = Config::from_url("postgres://", "X").unwrap();
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
        let e = Config::from_url(url, "DATABASE_URL")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.starts_with("DATABASE_URL"), "{e}");
        assert_eq!(e.lines().count(), 1);
    }
}

#[test]
fn unix_socket_refused() {
    let e = Config::from_url("postgres:///db?host=/var/run/postgresql", "X").unwrap_err();
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
    assert_eq!(c.source, "DATABASE_URL");
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
    assert_eq!(c.source, "PG* variables");
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
    let c = Config::from_url("postgres://u:topsecret@h/db", "X").unwrap();
    assert!(!format!("{c:?}").contains("topsecret"));
    assert!(!c.describe().contains("topsecret"));
    assert_eq!(c.describe(), "u@h:5432/db");
}

#[test]
fn tls_settings_are_checked_when_read() {
    let c = Config::from_url("postgres://h/db?sslrootcert=system", "X").unwrap();
    assert_eq!(
        c.sslmode,
        SslMode::VerifyFull,
        "libpq 16: system implies verify-full"
    );
    let c = Config::from_url("postgres://h/db?sslrootcert=system&sslmode=require", "X").unwrap();
    assert_eq!(
        c.sslmode,
        SslMode::Require,
        "refused at connect, with a clear message"
    );
    for (url, msg) in [
        (
            "postgres://h/db?channel_binding=maybe",
            "invalid channel_binding",
        ),
        (
            "postgres://h/db?sslnegotiation=later",
            "invalid sslnegotiation",
        ),
    ] {
        let e = Config::from_url(url, "X").unwrap_err();
        assert!(e.to_string().contains(msg), "{e}");
        assert_eq!(e.kind(), crate::ErrorKind::Config);
    }
    let c = Config::from_url("postgres://h/db?channel_binding=require", "X").unwrap();
    assert_eq!(
        c.channel_binding_mode(),
        crate::proto::startup::ChannelBindingMode::Require
    );
}
