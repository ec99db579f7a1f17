//! Django's migration graph (`django.db.migrations.graph.MigrationGraph`) rebuilt from the
//! manifest's edges, with the same plan orders: a depth-first walk over sorted parents
//! (forwards) or children (backwards), as `MigrationGraph.iterative_dfs` does.

pub use crate::manifest::Key;
use crate::manifest::{Bundle, Migration};
use std::collections::{BTreeMap, BTreeSet, HashSet};

pub struct Graph<'a> {
    pub nodes: BTreeMap<Key, &'a Migration>,
    parents: BTreeMap<Key, BTreeSet<Key>>,
    children: BTreeMap<Key, BTreeSet<Key>>,
}

impl<'a> Graph<'a> {
    pub fn new(bundle: &'a Bundle) -> Self {
        let mut nodes = BTreeMap::new();
        let mut parents: BTreeMap<Key, BTreeSet<Key>> = BTreeMap::new();
        let mut children: BTreeMap<Key, BTreeSet<Key>> = BTreeMap::new();
        for m in &bundle.migrations {
            let k = (m.app.clone(), m.name.clone());
            nodes.insert(k.clone(), m);
            parents.entry(k.clone()).or_default();
            children.entry(k.clone()).or_default();
        }
        for m in &bundle.migrations {
            let k = (m.app.clone(), m.name.clone());
            for d in &m.dependencies {
                parents.entry(k.clone()).or_default().insert(d.clone());
                children.entry(d.clone()).or_default().insert(k.clone());
            }
        }
        Graph {
            nodes,
            parents,
            children,
        }
    }

    fn dfs(&self, start: &Key, forwards: bool) -> Vec<Key> {
        let mut visited = Vec::new();
        let mut seen = HashSet::new();
        let mut stack = vec![(start.clone(), false)];
        while let Some((node, processed)) = stack.pop() {
            if seen.contains(&node) {
                continue;
            }
            if processed {
                seen.insert(node.clone());
                visited.push(node);
            } else {
                stack.push((node.clone(), true));
                let next = if forwards {
                    &self.parents
                } else {
                    &self.children
                };
                if let Some(n) = next.get(&node) {
                    // sorted ascending, pushed in order: the largest is visited first, as in Django.
                    stack.extend(n.iter().map(|k| (k.clone(), false)));
                }
            }
        }
        visited
    }

    /// `target` and everything it depends on, dependencies first.
    pub fn forwards_plan(&self, target: &Key) -> Vec<Key> {
        self.dfs(target, true)
    }

    /// `target` and everything depending on it, dependents first.
    pub fn backwards_plan(&self, target: &Key) -> Vec<Key> {
        self.dfs(target, false)
    }

    /// Per app, the nodes without a child in the same app; sorted.
    pub fn leaf_nodes(&self, app: Option<&str>) -> Vec<Key> {
        self.nodes
            .keys()
            .filter(|k| app.is_none_or(|a| k.0 == a))
            .filter(|k| self.children[*k].iter().all(|c| c.0 != k.0))
            .cloned()
            .collect()
    }

    /// Per app, the nodes without a parent in the same app; sorted.
    pub fn root_nodes(&self, app: &str) -> Vec<Key> {
        self.nodes
            .keys()
            .filter(|k| k.0 == app)
            .filter(|k| self.parents[*k].iter().all(|p| p.0 != k.0))
            .cloned()
            .collect()
    }

    /// Children of `key` in the same app.
    pub fn children_in_app(&self, key: &Key) -> Vec<Key> {
        self.children
            .get(key)
            .map(|c| c.iter().filter(|c| c.0 == key.0).cloned().collect())
            .unwrap_or_default()
    }
}

/// Where to migrate to, as `migrate [app_label] [migration_name]` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// All apps to their leaves.
    All,
    /// One app to its leaves.
    App(String),
    /// One app to exactly this migration (forwards or backwards).
    Migration(String, String),
    /// Unapply all of an app's migrations.
    Zero(String),
}

/// One planned step: the migration and whether it is unapplied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub key: Key,
    pub backwards: bool,
}

/// `MigrationExecutor.migration_plan(targets)` for the given applied set.
pub fn plan(graph: &Graph<'_>, target: &Target, applied: &HashSet<Key>) -> Vec<Planned> {
    let mut out = Vec::new();
    let mut done: HashSet<Key> = applied.clone();
    let mut undone: HashSet<Key> = HashSet::new();
    let targets: Vec<(Key, bool)> = match target {
        Target::All => graph
            .leaf_nodes(None)
            .into_iter()
            .map(|k| (k, false))
            .collect(),
        Target::App(app) => graph
            .leaf_nodes(Some(app))
            .into_iter()
            .map(|k| (k, false))
            .collect(),
        Target::Migration(a, n) => vec![((a.clone(), n.clone()), false)],
        Target::Zero(app) => graph
            .root_nodes(app)
            .into_iter()
            .map(|k| (k, true))
            .collect(),
    };
    for (t, zero) in targets {
        if zero {
            // Unapply the root and everything after it.
            for k in graph.backwards_plan(&t) {
                if done.contains(&k) && undone.insert(k.clone()) {
                    done.remove(&k);
                    out.push(Planned {
                        key: k,
                        backwards: true,
                    });
                }
            }
        } else if applied.contains(&t) && matches!(target, Target::Migration(..)) {
            // Already applied: unapply its same-app children and what depends on them.
            for child in graph.children_in_app(&t) {
                for k in graph.backwards_plan(&child) {
                    if done.contains(&k) && undone.insert(k.clone()) {
                        done.remove(&k);
                        out.push(Planned {
                            key: k,
                            backwards: true,
                        });
                    }
                }
            }
        } else {
            for k in graph.forwards_plan(&t) {
                if !done.contains(&k) {
                    done.insert(k.clone());
                    out.push(Planned {
                        key: k,
                        backwards: false,
                    });
                }
            }
        }
    }
    out
}

/// The target of Django's `migrate APP TARGET` whose plan, given `applied`, is exactly the one
/// step `p`: forwards the migration itself; backwards its parent in the same app (`zero` for
/// the app's first). `None` when no target does exactly that (unapplying a merge migration, or
/// a parent whose other applied children or their dependents would be unapplied too). Checked
/// with [`plan`] itself, Django's planner, so the answer cannot disagree with what Django does.
pub fn exact_target(graph: &Graph<'_>, applied: &HashSet<Key>, p: &Planned) -> Option<String> {
    let (app, name) = &p.key;
    let target = if !p.backwards {
        Target::Migration(app.clone(), name.clone())
    } else {
        let parents: Vec<&Key> = graph
            .parents
            .get(&p.key)?
            .iter()
            .filter(|k| &k.0 == app)
            .collect();
        match parents.as_slice() {
            [] => Target::Zero(app.clone()),
            [parent] => Target::Migration(app.clone(), parent.1.clone()),
            _ => return None,
        }
    };
    if plan(graph, &target, applied) != [p.clone()] {
        return None;
    }
    Some(match target {
        Target::Migration(_, n) => n,
        _ => "zero".to_string(),
    })
}
