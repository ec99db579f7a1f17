//! `manifest.json`, as written by `djinit_django.export.bundle` (see its docstring for the
//! format). Checksums: `sha256:` + hex of the canonical JSON (keys sorted, no whitespace, UTF-8)
//! of the object without its `checksum` key; serde_json's compact output with sorted maps is the
//! same text as Python's `json.dumps(sort_keys=True, separators=(",", ":"), ensure_ascii=False)`.
//!
//! Format version 2 adds, per migration, `depends_on` and `variants` (the SQL Django would run
//! when other migrations are applied too, see [`crate::variant`]) and the `site` post_migrate
//! row; version 1 bundles (no variants) are still read.

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub const FORMAT: &str = "djinit-migrations";
pub const VERSION: u64 = 2;
/// The oldest format version still read.
pub const MIN_VERSION: u64 = 1;
pub const FILE: &str = "manifest.json";
/// Largest manifest read (a project with thousands of migrations stays far below).
pub const MAX_BYTES: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The file is missing or unreadable (kind `NoInput`). The I/O cause is folded into the
    /// message (not a `source`), so a printed error chain names it once.
    #[error("cannot read migration bundle {path}: {io}")]
    Read { path: PathBuf, io: std::io::Error },
    /// The file is there but not a valid bundle (kind `Data`).
    #[error("invalid migration bundle {path}: {detail}")]
    Invalid { path: PathBuf, detail: String },
}

impl djinit_wait::Classify for BundleError {
    fn kind(&self) -> djinit_wait::Kind {
        match self {
            BundleError::Read { .. } => djinit_wait::Kind::NoInput,
            BundleError::Invalid { .. } => djinit_wait::Kind::Data,
        }
    }
}

/// One step of a migration in one direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Statements, each executed on its own, in order.
    Sql(Vec<String>),
    /// `RunPython.noop`: nothing to do.
    Noop(String),
    /// An operation that needs Python. Applied without Python only when it has a guard that
    /// holds (checked inside the migration's transaction). A whole migration exported as Python
    /// (its SQL depends on something only known when it runs) says why in `describe`.
    Python {
        describe: String,
        callable: Option<String>,
        guard: Option<Guard>,
    },
}

/// A SQL predicate (one row, one boolean column) that proves a Python operation is a no-op.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Guard {
    pub id: String,
    pub sql: String,
    pub reason: String,
}

/// `--fake-initial`'s check: these tables and columns exist.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
pub struct SoftApplied {
    pub tables: Vec<String>,
    pub columns: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct Migration {
    pub app: String,
    pub name: String,
    pub atomic: bool,
    pub initial: bool,
    pub dependencies: Vec<(String, String)>,
    pub replaces: Vec<(String, String)>,
    pub operations: Vec<String>,
    pub soft_applied: Option<SoftApplied>,
    /// `sqlmigrate`'s SQL: computed from the migration's ancestors' state.
    pub forward: Vec<Step>,
    /// `sqlmigrate --backwards`. `None`: irreversible.
    pub backward: Option<Vec<Step>>,
    /// Migrations (neither ancestors nor descendants) whose being applied changes the forward SQL.
    pub depends_on_forward: Vec<Key>,
    /// Migrations before this one in the full plan whose being applied changes the backward SQL.
    pub depends_on_backward: Vec<Key>,
    /// The SQL for the subsets of `depends_on_*` where it differs from `forward`/`backward`.
    pub variants: Vec<Variant>,
}

/// The steps of one direction when exactly `applied` of that direction's `depends_on` are applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    pub backwards: bool,
    pub applied: Vec<Key>,
    /// `None`: irreversible (as `backward`).
    pub steps: Option<Vec<Step>>,
}

/// `(app, name)`.
pub type Key = (String, String);

impl Migration {
    pub fn key(&self) -> (&str, &str) {
        (&self.app, &self.name)
    }

    /// `app.name`, as Django prints it.
    pub fn label(&self) -> String {
        format!("{}.{}", self.app, self.name)
    }

    /// The Python operations of `steps` that no guard covers.
    pub fn unguarded_python(steps: &[Step]) -> Vec<&str> {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Python {
                    describe,
                    guard: None,
                    callable,
                } => Some(callable.as_deref().unwrap_or(describe.as_str())),
                _ => None,
            })
            .collect()
    }

    /// Whether this direction has a Python step, guarded or not (`false` when irreversible).
    pub fn has_python(&self, backwards: bool) -> bool {
        let steps = if backwards {
            self.backward.as_deref().unwrap_or_default()
        } else {
            &self.forward
        };
        steps.iter().any(|s| matches!(s, Step::Python { .. }))
    }

    /// Whether this direction needs Django: an unguarded Python step in the steps chosen for
    /// it (`sql` / `python` in a plan). `None` when the direction is irreversible.
    pub fn needs_python(&self, backwards: bool) -> Option<bool> {
        let steps = if backwards {
            self.backward.as_deref()?
        } else {
            &self.forward
        };
        Some(!Self::unguarded_python(steps).is_empty())
    }
}

/// A row `post_migrate` would create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Row {
    ContentType {
        app_label: String,
        model: String,
    },
    Permission {
        app_label: String,
        model: String,
        codename: String,
        name: String,
    },
    /// `django.contrib.sites`' default site, created only when `django_site` is empty; then
    /// Django's `sequence_reset` statements (the id was set explicitly).
    Site {
        id: i64,
        domain: String,
        name: String,
        sequence_reset: Vec<String>,
    },
}

/// A loaded, verified bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub path: PathBuf,
    pub django: String,
    pub database: String,
    /// `server_version_num` the SQL was generated for (e.g. 150000).
    pub pg_version: u32,
    pub recorder_table: String,
    pub recorder_sql: String,
    /// In the order `migrate` applies them on a fresh database.
    pub migrations: Vec<Migration>,
    pub post_migrate: Vec<Row>,
    /// Dotted names of `post_migrate` receivers the bundle does not reproduce.
    pub not_exported: Vec<String>,
    pub checksum: String,
}

// ---- raw serde shapes ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    format: String,
    version: u64,
    django: String,
    database: String,
    pg_version: u32,
    recorder: RawRecorder,
    migrations: Vec<RawMigration>,
    post_migrate: RawPostMigrate,
    checksum: String,
}

#[derive(Deserialize)]
struct RawRecorder {
    table: String,
    sql: String,
}

#[derive(Deserialize)]
struct RawMigration {
    app: String,
    name: String,
    atomic: bool,
    initial: bool,
    dependencies: Vec<(String, String)>,
    replaces: Vec<(String, String)>,
    #[serde(default)]
    operations: Vec<String>,
    soft_applied: Option<SoftApplied>,
    forward: Vec<RawStep>,
    backward: Option<Vec<RawStep>>,
    #[serde(default)]
    depends_on: RawDependsOn,
    #[serde(default)]
    variants: Vec<RawVariant>,
}

#[derive(Deserialize, Default)]
struct RawDependsOn {
    forward: Vec<Key>,
    backward: Vec<Key>,
}

#[derive(Deserialize)]
struct RawVariant {
    direction: String,
    applied: Vec<Key>,
    steps: Option<Vec<RawStep>>,
}

#[derive(Deserialize)]
struct RawStep {
    sql: Option<Vec<String>>,
    noop: Option<String>,
    python: Option<String>,
    callable: Option<String>,
    guard: Option<Guard>,
}

#[derive(Deserialize)]
struct RawPostMigrate {
    rows: Vec<RawRow>,
    not_exported: Vec<String>,
}

#[derive(Deserialize)]
struct RawRow {
    content_type: Option<(String, String)>,
    permission: Option<(String, String, String, String)>,
    site: Option<RawSite>,
}

#[derive(Deserialize)]
struct RawSite {
    id: i64,
    domain: String,
    name: String,
    sequence_reset: Vec<String>,
}

/// `sha256:<hex>` of the canonical JSON of `v` without its `checksum` key.
pub fn checksum_of(v: &Value) -> String {
    let mut v = v.clone();
    if let Value::Object(m) = &mut v {
        m.remove("checksum");
    }
    let text = serde_json::to_vec(&v).expect("a Value always serializes");
    let digest = Sha256::digest(&text);
    let mut s = String::from("sha256:");
    for b in digest {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn verify(v: &mut Value, what: &str) -> Result<(), String> {
    // Hash without the key, then put it back (no copy of the whole manifest).
    let stated = match v.as_object_mut().and_then(|m| m.remove("checksum")) {
        Some(Value::String(s)) => s,
        _ => String::new(),
    };
    let text = serde_json::to_vec(&*v).expect("a Value always serializes");
    let mut actual = String::from("sha256:");
    for b in Sha256::digest(&text) {
        actual.push_str(&format!("{b:02x}"));
    }
    if let Some(m) = v.as_object_mut() {
        m.insert("checksum".into(), Value::String(stated.clone()));
    }
    if stated != actual {
        return Err(format!(
            "checksum mismatch for {what} (manifest says {stated:?}, content is {actual}); re-export the bundle"
        ));
    }
    Ok(())
}

impl Bundle {
    /// Read and verify `dir/manifest.json`.
    pub fn load(dir: &Path) -> Result<Bundle, BundleError> {
        let path = dir.join(FILE);
        let read_err = |io| BundleError::Read {
            path: path.clone(),
            io,
        };
        let meta = std::fs::metadata(&path).map_err(read_err)?;
        if meta.len() > MAX_BYTES {
            return Err(BundleError::Invalid {
                path,
                detail: format!("larger than {} MiB", MAX_BYTES >> 20),
            });
        }
        let text = std::fs::read(&path).map_err(read_err)?;
        Self::parse(&text, dir).map_err(|detail| BundleError::Invalid { path, detail })
    }

    /// Parse and verify manifest text (`dir` is only recorded).
    pub fn parse(text: &[u8], dir: &Path) -> Result<Bundle, String> {
        let mut v: Value = serde_json::from_slice(text).map_err(|e| format!("not JSON: {e}"))?;
        match v.get("format").and_then(Value::as_str) {
            Some(FORMAT) => {}
            other => return Err(format!("not a djinit migration bundle (format {other:?})")),
        }
        match v.get("version").and_then(Value::as_u64) {
            Some(n) if (MIN_VERSION..=VERSION).contains(&n) => {}
            other => {
                return Err(format!(
                    "bundle format version {other:?} is not supported (this djinit reads versions {MIN_VERSION} to {VERSION}); export the bundle with the djinit-django of this djinit release"
                ))
            }
        }
        // The manifest's checksum covers everything; the per-migration ones are checked only to
        // name what changed when it does not match.
        if let Err(whole) = verify(&mut v, "the manifest") {
            if let Some(Value::Array(ms)) = v.get_mut("migrations") {
                for m in ms {
                    let label = format!(
                        "migration {}.{}",
                        m.get("app").and_then(Value::as_str).unwrap_or("?"),
                        m.get("name").and_then(Value::as_str).unwrap_or("?")
                    );
                    verify(m, &label)?;
                }
            }
            return Err(whole);
        }
        let raw: RawManifest = serde_json::from_value(v).map_err(|e| e.to_string())?;
        let _ = (&raw.format, raw.version);
        let mut migrations = Vec::with_capacity(raw.migrations.len());
        let mut seen = std::collections::HashSet::new();
        for m in raw.migrations {
            let label = format!("{}.{}", m.app, m.name);
            if !seen.insert((m.app.clone(), m.name.clone())) {
                return Err(format!("migration {label} is listed twice"));
            }
            let mut variants = Vec::with_capacity(m.variants.len());
            for v in m.variants {
                let backwards = match v.direction.as_str() {
                    "forward" => false,
                    "backward" => true,
                    other => {
                        return Err(format!(
                            "migration {label} has a variant of unknown direction {other:?}"
                        ))
                    }
                };
                let depends = if backwards {
                    &m.depends_on.backward
                } else {
                    &m.depends_on.forward
                };
                if v.applied.is_empty() || v.applied.iter().any(|k| !depends.contains(k)) {
                    return Err(format!(
                        "migration {label} has a {} variant for migrations it does not depend on",
                        v.direction
                    ));
                }
                variants.push(Variant {
                    backwards,
                    applied: v.applied,
                    steps: v.steps.map(|s| steps(s, &label)).transpose()?,
                });
            }
            migrations.push(Migration {
                forward: steps(m.forward, &label)?,
                backward: m.backward.map(|b| steps(b, &label)).transpose()?,
                depends_on_forward: m.depends_on.forward,
                depends_on_backward: m.depends_on.backward,
                variants,
                app: m.app,
                name: m.name,
                atomic: m.atomic,
                initial: m.initial,
                dependencies: m.dependencies,
                replaces: m.replaces,
                operations: m.operations,
                soft_applied: m.soft_applied,
            });
        }
        for m in &migrations {
            for d in m
                .dependencies
                .iter()
                .chain(&m.depends_on_forward)
                .chain(&m.depends_on_backward)
            {
                if !seen.contains(d) {
                    return Err(format!(
                        "migration {} depends on {}.{}, which is not in the bundle",
                        m.label(),
                        d.0,
                        d.1
                    ));
                }
            }
        }
        let mut rows = Vec::with_capacity(raw.post_migrate.rows.len());
        for r in raw.post_migrate.rows {
            rows.push(match (r.content_type, r.permission, r.site) {
                (Some((app_label, model)), None, None) => Row::ContentType { app_label, model },
                (None, Some((app_label, model, codename, name)), None) => Row::Permission {
                    app_label,
                    model,
                    codename,
                    name,
                },
                (None, None, Some(s)) => Row::Site {
                    id: s.id,
                    domain: s.domain,
                    name: s.name,
                    sequence_reset: s.sequence_reset,
                },
                _ => {
                    return Err(
                        "a post_migrate row is not one content type, permission or site".into(),
                    )
                }
            });
        }
        Ok(Bundle {
            path: dir.to_path_buf(),
            django: raw.django,
            database: raw.database,
            pg_version: raw.pg_version,
            recorder_table: raw.recorder.table,
            recorder_sql: raw.recorder.sql,
            migrations,
            post_migrate: rows,
            not_exported: raw.post_migrate.not_exported,
            checksum: raw.checksum,
        })
    }

    pub fn get(&self, app: &str, name: &str) -> Option<&Migration> {
        self.migrations
            .iter()
            .find(|m| m.app == app && m.name == name)
    }

    pub fn has_app(&self, app: &str) -> bool {
        self.migrations.iter().any(|m| m.app == app)
    }
}

fn steps(raw: Vec<RawStep>, label: &str) -> Result<Vec<Step>, String> {
    raw.into_iter()
        .map(|s| match (s.sql, s.noop, s.python) {
            (Some(sql), None, None) => Ok(Step::Sql(sql)),
            (None, Some(n), None) => Ok(Step::Noop(n)),
            (None, None, Some(p)) => Ok(Step::Python {
                describe: p,
                callable: s.callable,
                guard: s.guard,
            }),
            _ => Err(format!("migration {label} has a step of unknown kind")),
        })
        .collect()
}

#[cfg(test)]
mod tests;
