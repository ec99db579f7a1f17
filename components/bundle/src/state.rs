//! What `django_migrations` records, and what of the bundle is pending.

use crate::graph::Key;
use crate::manifest::{Bundle, Migration};
use djinit_pg::Client;
use std::collections::HashSet;

/// Django's recorder table.
pub const TABLE: &str = "django_migrations";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Pg(#[from] djinit_pg::Error),
    /// Some, not all, migrations a squashed migration replaces are recorded: Django would apply
    /// the originals, which the bundle does not carry.
    #[error("squashed migration {squash} is partially applied ({applied} of {total} replaced migrations recorded); finish it with the original migrations (lockedmigrate --exec -- python manage.py migrate)")]
    PartialSquash {
        squash: String,
        applied: usize,
        total: usize,
    },
}

impl djinit_wait::Classify for StateError {
    /// A database error keeps its kind; a state the bundle cannot continue is rejected input.
    fn kind(&self) -> djinit_wait::Kind {
        match self {
            StateError::Pg(e) => djinit_wait::Classify::kind(e),
            StateError::PartialSquash { .. } => djinit_wait::Kind::Data,
        }
    }
}

/// Whether `django_migrations` exists (visible on the search path, as Django looks it up).
pub fn table_exists(client: &mut Client) -> Result<bool, djinit_pg::Error> {
    let rows = client.query(
        "SELECT 1 FROM pg_catalog.pg_class c WHERE c.relname = $1 \
         AND c.relkind IN ('f','m','p','r','v') AND pg_catalog.pg_table_is_visible(c.oid)",
        &[Some(TABLE)],
    )?;
    Ok(!rows.is_empty())
}

/// The `(app, name)` rows of `django_migrations`; empty when the table does not exist.
pub fn recorded(client: &mut Client) -> Result<HashSet<Key>, djinit_pg::Error> {
    if !table_exists(client)? {
        return Ok(HashSet::new());
    }
    let rows = client.query("SELECT app, name FROM django_migrations", &[])?;
    Ok(rows
        .iter()
        .filter_map(|r| Some((r.get(0)?.to_string(), r.get(1)?.to_string())))
        .collect())
}

/// The bundle's migrations Django would consider applied, given the recorded rows: recorded,
/// or a squashed migration whose replaced migrations are all recorded.
pub fn applied(bundle: &Bundle, recorded: &HashSet<Key>) -> Result<HashSet<Key>, StateError> {
    let mut out = HashSet::new();
    for m in &bundle.migrations {
        let key = (m.app.clone(), m.name.clone());
        if recorded.contains(&key) {
            out.insert(key);
            continue;
        }
        if !m.replaces.is_empty() {
            let n = m.replaces.iter().filter(|r| recorded.contains(*r)).count();
            if n == m.replaces.len() {
                out.insert(key);
            } else if n > 0 {
                return Err(StateError::PartialSquash {
                    squash: m.label(),
                    applied: n,
                    total: m.replaces.len(),
                });
            }
        }
    }
    Ok(out)
}

/// The migrations not applied yet, in the order `migrate` would apply them.
pub fn pending_given<'a>(bundle: &'a Bundle, applied: &HashSet<Key>) -> Vec<&'a Migration> {
    bundle
        .migrations
        .iter()
        .filter(|m| !applied.contains(&(m.app.clone(), m.name.clone())))
        .collect()
}

/// Read `django_migrations` and return what is pending (what `migrate --check` would fail on).
pub fn pending<'a>(
    client: &mut Client,
    bundle: &'a Bundle,
) -> Result<Vec<&'a Migration>, StateError> {
    let rec = recorded(client)?;
    let app = applied(bundle, &rec)?;
    Ok(pending_given(bundle, &app))
}
