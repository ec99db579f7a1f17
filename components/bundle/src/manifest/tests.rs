use super::*;

use crate::graph::{plan, Graph, Planned, Target};
use crate::state;
use std::collections::HashSet;

/// A manifest with valid checksums, built the way the exporter builds it.
fn manifest(migrations: Vec<Value>) -> Vec<u8> {
    let ms: Vec<Value> = migrations
        .into_iter()
        .map(|mut m| {
            let c = checksum_of(&m);
            m.as_object_mut()
                .unwrap()
                .insert("checksum".into(), c.into());
            m
        })
        .collect();
    let mut v = serde_json::json!({
        "format": FORMAT, "version": 1, "django": "5.2", "database": "default", "pg_version": 150000,
        "recorder": {"table": "django_migrations", "sql": "CREATE TABLE x ();"},
        "migrations": ms,
        "post_migrate": {"rows": [{"content_type": ["a", "m"]}, {"permission": ["a", "m", "add_m", "Can add m ü"]}], "not_exported": []},
    });
    let c = checksum_of(&v);
    v.as_object_mut()
        .unwrap()
        .insert("checksum".into(), c.into());
    serde_json::to_vec_pretty(&v).unwrap()
}

fn mig(app: &str, name: &str, deps: &[(&str, &str)]) -> Value {
    serde_json::json!({
        "app": app, "name": name, "atomic": true, "initial": deps.is_empty(),
        "dependencies": deps, "replaces": [], "operations": ["Create model M"],
        "soft_applied": null,
        "forward": [{"sql": ["CREATE TABLE \"t\" (\"s\" text DEFAULT '100%');"]}, {"noop": "Raw Python operation"},
                    {"python": "Raw Python operation", "callable": "m.f", "guard": {"id": "g", "sql": "SELECT true", "reason": "r"}}],
        "backward": null,
    })
}

#[test]
fn parses_and_verifies() {
    let text = manifest(vec![
        mig("a", "0001", &[]),
        mig("a", "0002", &[("a", "0001")]),
    ]);
    let b = Bundle::parse(&text, "x".as_ref()).unwrap();
    assert_eq!(b.migrations.len(), 2);
    assert_eq!(b.pg_version, 150000);
    assert!(matches!(&b.migrations[0].forward[0], Step::Sql(s) if s[0].contains("100%")));
    assert!(
        matches!(&b.migrations[0].forward[2], Step::Python { guard: Some(g), .. } if g.id == "g")
    );
    assert!(b.migrations[0].backward.is_none());
    assert_eq!(b.post_migrate.len(), 2);
}

#[test]
fn tampering_is_detected() {
    let text = manifest(vec![mig("a", "0001", &[])]);
    let s = String::from_utf8(text)
        .unwrap()
        .replace("CREATE TABLE", "DROP TABLE");
    let e = Bundle::parse(s.as_bytes(), "x".as_ref()).unwrap_err();
    assert!(e.contains("checksum mismatch"), "{e}");
    let e = Bundle::parse(b"{\"format\": \"other\"}", "x".as_ref()).unwrap_err();
    assert!(e.contains("not a djinit migration bundle"), "{e}");
    let e = Bundle::parse(b"[1,", "x".as_ref()).unwrap_err();
    assert!(e.contains("not JSON"), "{e}");
}

#[test]
fn missing_dependency_is_invalid() {
    let text = manifest(vec![mig("a", "0002", &[("a", "0001")])]);
    let e = Bundle::parse(&text, "x".as_ref()).unwrap_err();
    assert!(e.contains("not in the bundle"), "{e}");
}

fn keys(p: &[Planned]) -> Vec<String> {
    p.iter()
        .map(|p| {
            format!(
                "{}{}.{}",
                if p.backwards { "-" } else { "" },
                p.key.0,
                p.key.1
            )
        })
        .collect()
}

#[test]
fn plans_follow_django() {
    let text = manifest(vec![
        mig("a", "0001", &[]),
        mig("b", "0001", &[("a", "0001")]),
        mig("a", "0002", &[("a", "0001")]),
        mig("b", "0002", &[("a", "0002"), ("b", "0001")]),
    ]);
    let b = Bundle::parse(&text, "x".as_ref()).unwrap();
    let g = Graph::new(&b);
    let none = HashSet::new();
    assert_eq!(
        keys(&plan(&g, &Target::All, &none)),
        ["a.0001", "a.0002", "b.0001", "b.0002"]
    );
    assert_eq!(
        keys(&plan(&g, &Target::App("a".into()), &none)),
        ["a.0001", "a.0002"]
    );
    let all: HashSet<_> = g.nodes.keys().cloned().collect();
    assert!(plan(&g, &Target::All, &all).is_empty());
    assert_eq!(
        keys(&plan(&g, &Target::Zero("a".into()), &all)),
        ["-b.0002", "-b.0001", "-a.0002", "-a.0001"]
    );
    assert_eq!(
        keys(&plan(
            &g,
            &Target::Migration("a".into(), "0001".into()),
            &all
        )),
        ["-b.0002", "-a.0002"]
    );
}

#[test]
fn squash_state() {
    let mut s = mig("a", "0001_squashed_0002", &[]);
    s["replaces"] = serde_json::json!([["a", "0001"], ["a", "0002"]]);
    let b = Bundle::parse(&manifest(vec![s]), "x".as_ref()).unwrap();
    let k = |n: &str| ("a".to_string(), n.to_string());
    let rec: HashSet<_> = [k("0001"), k("0002")].into();
    assert!(state::applied(&b, &rec)
        .unwrap()
        .contains(&k("0001_squashed_0002")));
    let rec: HashSet<_> = [k("0001")].into();
    assert!(state::applied(&b, &rec).is_err());
    assert_eq!(state::pending_given(&b, &HashSet::new()).len(), 1);
}
