//! Which SQL of a migration Django would run, given what is applied.
//!
//! A migration's `forward`/`backward` steps are `sqlmigrate`'s: computed from its ancestors'
//! state. `manage.py migrate` computes them from the state of everything applied at that moment,
//! which differs when another applied migration changed the same models (the sibling
//! migrations of a merged branch: django-celery-beat's two `0006_auto_*` alter the same columns,
//! and the one applied second does nothing). The exporter records, per direction, the
//! migrations that make a difference (`depends_on_*`) and the steps for each subset of them that
//! changes the SQL (`variants`); see `djinit_django/export/variants.py`.
//!
//! Django's rule, which [`resolve`] follows:
//! - forwards, a migration sees every migration applied when it runs: recorded before the run
//!   or applied earlier in it;
//! - backwards, it sees the migrations applied when the run started that come before it in the
//!   full plan (`MigrationExecutor._migrate_all_backwards` computes the states up front). The
//!   exporter only lists such migrations in `depends_on_backward`, so the applied set at the start
//!   of the run is all it takes.

use crate::graph::{Graph, Planned};
use crate::manifest::{Key, Migration, Step};
use std::borrow::Cow;
use std::collections::HashSet;

impl Migration {
    /// The steps of one direction when `applied` holds what Django's state includes (see the
    /// module docs); `None` when that direction is irreversible.
    pub fn steps_given(&self, backwards: bool, applied: &HashSet<Key>) -> Option<&[Step]> {
        let depends = if backwards {
            &self.depends_on_backward
        } else {
            &self.depends_on_forward
        };
        let present: HashSet<&Key> = depends.iter().filter(|k| applied.contains(*k)).collect();
        if !present.is_empty() {
            if let Some(v) = self.variants.iter().find(|v| {
                v.backwards == backwards
                    && v.applied.len() == present.len()
                    && v.applied.iter().all(|k| present.contains(k))
            }) {
                return v.steps.as_deref();
            }
        }
        if backwards {
            self.backward.as_deref()
        } else {
            Some(&self.forward)
        }
    }

    /// This migration with `forward`/`backward` replaced by the steps for `applied` (borrowed
    /// when there is nothing to choose).
    pub fn given(&self, backwards: bool, applied: &HashSet<Key>) -> Cow<'_, Migration> {
        let depends = if backwards {
            &self.depends_on_backward
        } else {
            &self.depends_on_forward
        };
        if depends.is_empty() {
            return Cow::Borrowed(self);
        }
        let steps = self.steps_given(backwards, applied).map(<[Step]>::to_vec);
        let mut m = self.clone();
        if backwards {
            m.backward = steps;
        } else {
            m.forward = steps.unwrap_or_default();
        }
        Cow::Owned(m)
    }
}

/// The planned migrations, each with the steps Django would run for it in this plan, given the
/// migrations `applied` when the run starts.
pub fn resolve<'a>(
    graph: &Graph<'a>,
    planned: &[Planned],
    applied: &HashSet<Key>,
) -> Vec<Cow<'a, Migration>> {
    let mut now = applied.clone();
    planned
        .iter()
        .map(|p| {
            let m: &'a Migration = graph.nodes[&p.key];
            if p.backwards {
                m.given(true, applied)
            } else {
                let chosen = m.given(false, &now);
                now.insert(p.key.clone());
                chosen
            }
        })
        .collect()
}
