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
    // A guarded Python step is applied as SQL (the guard is checked); irreversible has no answer.
    assert_eq!(b.migrations[0].needs_python(false), Some(false));
    assert_eq!(b.migrations[0].needs_python(true), None);
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

fn sql_of(steps: Option<&[Step]>) -> Vec<String> {
    steps
        .unwrap_or_default()
        .iter()
        .flat_map(|s| match s {
            Step::Sql(v) => v.clone(),
            _ => vec![],
        })
        .collect()
}

/// Two siblings of a merged branch altering the same column (django-celery-beat's 0006s): the
/// one applied second has a variant for "the other one is applied".
fn siblings() -> Bundle {
    let mut first = mig("a", "0002_x", &[("a", "0001")]);
    first["forward"] = serde_json::json!([{"sql": ["ALTER x TYPE 240;"]}]);
    first["depends_on"] = serde_json::json!({"forward": [["a", "0002_y"]], "backward": []});
    first["variants"] =
        serde_json::json!([{"direction": "forward", "applied": [["a", "0002_y"]], "steps": []}]);
    let mut second = mig("a", "0002_y", &[("a", "0001")]);
    second["forward"] = serde_json::json!([{"sql": ["ALTER x TYPE 240;"]}]);
    second["backward"] = serde_json::json!([{"sql": ["ALTER x TYPE 64;"]}]);
    second["depends_on"] =
        serde_json::json!({"forward": [["a", "0002_x"]], "backward": [["a", "0002_x"]]});
    second["variants"] = serde_json::json!([
        {"direction": "forward", "applied": [["a", "0002_x"]], "steps": []},
        {"direction": "backward", "applied": [["a", "0002_x"]], "steps": [{"noop": "n"}]},
    ]);
    let mut v = manifest(vec![mig("a", "0001", &[]), first, second]);
    // version 2 manifest
    let mut j: Value = serde_json::from_slice(&v).unwrap();
    j["version"] = 2.into();
    let c = checksum_of(&j);
    j["checksum"] = c.into();
    v = serde_json::to_vec(&j).unwrap();
    Bundle::parse(&v, "x".as_ref()).unwrap()
}

#[test]
fn variants_follow_what_is_applied() {
    let b = siblings();
    let k = |n: &str| ("a".to_string(), n.to_string());
    let y = b.get("a", "0002_y").unwrap();
    let none = HashSet::from([k("0001")]);
    let with_x = HashSet::from([k("0001"), k("0002_x")]);
    assert_eq!(sql_of(y.steps_given(false, &none)), ["ALTER x TYPE 240;"]);
    assert!(sql_of(y.steps_given(false, &with_x)).is_empty());
    assert_eq!(sql_of(y.steps_given(true, &none)), ["ALTER x TYPE 64;"]);
    assert!(matches!(
        y.steps_given(true, &with_x),
        Some([Step::Noop(_)])
    ));

    // Forwards, a sibling applied earlier in the same run counts.
    let g = Graph::new(&b);
    let planned = plan(&g, &Target::All, &HashSet::new());
    let chosen = crate::variant::resolve(&g, &planned, &HashSet::new());
    let sql: Vec<Vec<String>> = chosen.iter().map(|m| sql_of(Some(&m.forward))).collect();
    assert_eq!(keys(&planned), ["a.0001", "a.0002_x", "a.0002_y"]);
    assert_eq!(sql[1], ["ALTER x TYPE 240;"]);
    assert!(sql[2].is_empty(), "{sql:?}");
    // Backwards, what was applied when the run started counts, not what it unapplied before.
    let all: HashSet<_> = g.nodes.keys().cloned().collect();
    let planned = plan(&g, &Target::Zero("a".into()), &all);
    let chosen = crate::variant::resolve(&g, &planned, &all);
    let y_back = chosen.iter().find(|m| m.name == "0002_y").unwrap();
    assert!(matches!(y_back.backward.as_deref(), Some([Step::Noop(_)])));
}

#[test]
fn version_1_bundles_are_read_and_unknown_versions_refused() {
    let b = Bundle::parse(&manifest(vec![mig("a", "0001", &[])]), "x".as_ref()).unwrap();
    assert!(b.migrations[0].variants.is_empty());
    let mut j: Value = serde_json::from_slice(&manifest(vec![mig("a", "0001", &[])])).unwrap();
    j["version"] = 3.into();
    let c = checksum_of(&j);
    j["checksum"] = c.into();
    let e = Bundle::parse(&serde_json::to_vec(&j).unwrap(), "x".as_ref()).unwrap_err();
    assert!(e.contains("version Some(3) is not supported"), "{e}");
}

#[test]
fn a_variant_outside_depends_on_is_invalid() {
    let mut m = mig("a", "0001", &[]);
    m["variants"] =
        serde_json::json!([{"direction": "forward", "applied": [["a", "0001"]], "steps": []}]);
    let e = Bundle::parse(&manifest(vec![m]), "x".as_ref()).unwrap_err();
    assert!(e.contains("does not depend on"), "{e}");
}

#[test]
fn site_rows_parse() {
    let mut j: Value = serde_json::from_slice(&manifest(vec![mig("a", "0001", &[])])).unwrap();
    j["post_migrate"]["rows"] = serde_json::json!([
        {"site": {"id": 1, "domain": "example.com", "name": "example.com", "sequence_reset": ["SELECT 1;"]}}
    ]);
    let c = checksum_of(&j);
    j["checksum"] = c.into();
    let b = Bundle::parse(&serde_json::to_vec(&j).unwrap(), "x".as_ref()).unwrap();
    assert!(
        matches!(&b.post_migrate[0], Row::Site { id: 1, sequence_reset, .. } if sequence_reset.len() == 1)
    );
}

/// `lockedmigrate --python`: the `migrate APP TARGET` that Django runs for exactly one step.
#[test]
fn exact_target_is_one_step_or_none() {
    use crate::graph::exact_target;
    // a: 0001 <- 0002 <- 0003, 0002 <- 0002b (a sibling of 0003); b.0001 depends on a.0002.
    let text = manifest(vec![
        mig("a", "0001", &[]),
        mig("a", "0002", &[("a", "0001")]),
        mig("a", "0003", &[("a", "0002")]),
        mig("a", "0002b", &[("a", "0002")]),
        mig("b", "0001", &[("a", "0002")]),
    ]);
    let b = Bundle::parse(&text, "x".as_ref()).unwrap();
    let g = Graph::new(&b);
    let keys = |k: &[(&str, &str)]| -> HashSet<Key> {
        k.iter()
            .map(|(a, n)| (a.to_string(), n.to_string()))
            .collect()
    };
    let p = |app: &str, name: &str, backwards: bool| Planned {
        key: (app.into(), name.into()),
        backwards,
    };
    let t = |applied: &[(&str, &str)], step: Planned| exact_target(&g, &keys(applied), &step);
    // Forwards: the migration itself, when its dependencies are applied.
    assert_eq!(
        t(&[("a", "0001")], p("a", "0002", false)).as_deref(),
        Some("0002")
    );
    assert_eq!(t(&[], p("a", "0002", false)), None);
    // Backwards: the parent, or zero for the first.
    let chain = [("a", "0001"), ("a", "0002"), ("a", "0003")];
    assert_eq!(t(&chain, p("a", "0003", true)).as_deref(), Some("0002"));
    assert_eq!(
        t(&[("a", "0001")], p("a", "0001", true)).as_deref(),
        Some("zero")
    );
    // `migrate a 0002` would also unapply the applied sibling 0002b.
    let siblings = [("a", "0001"), ("a", "0002"), ("a", "0003"), ("a", "0002b")];
    assert_eq!(t(&siblings, p("a", "0003", true)), None);
    // `migrate a 0001` would also unapply b.0001, which depends on a.0002.
    let dependent = [("a", "0001"), ("a", "0002"), ("b", "0001")];
    assert_eq!(t(&dependent, p("a", "0002", true)), None);
}
