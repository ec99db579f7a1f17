//! `--python CMD`: which migrations go to Django, with what command line, and checking that
//! Django did exactly that.
//!
//! djinit applies every migration it can itself; a migration goes to Django only when a step
//! of it is Python that the bundle cannot replace: an unguarded `RunPython` (or `RunSQL` that
//! could not be exported), or a guarded one whose guard does not hold on this database (e.g.
//! `auth.0011_update_proxy_permissions`, a no-op only while `auth_permission` is empty). It
//! goes as Django's own `migrate APP NAME`, one migration at a time, in plan order, while this
//! session keeps the advisory lock: the host runs `CMD migrate --noinput -v N APP TARGET` and
//! calls back (the lock-session export, wit/lock-session.wit). A target is used only when
//! Django's plan for it, given what is applied now, is exactly that one migration ([`step`]
//! computes it with the same planner), so Django never applies or unapplies more than the step.

use djinit_bundle::graph::{exact_target, Graph, Key, Planned, Target};
use djinit_bundle::Step;
use djinit_cli::Failure;
use djinit_pg::Client;
use djinit_wait::Kind;
use std::collections::HashSet;

/// One migration for Django (the lock-session export's `django-step`), or, after the plan, the
/// post_migrate receivers the bundle does not have ([`receivers`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handover {
    pub key: Key,
    pub backwards: bool,
    /// No migration: `migrate` to the run's target, where nothing is pending, so Django only
    /// sends post_migrate.
    pub receivers_only: bool,
    /// Appended to the host's `CMD`: `migrate --noinput -v N APP TARGET`.
    pub args: Vec<String>,
    /// Why djinit does not apply it itself.
    pub reason: String,
}

impl Handover {
    pub fn label(&self) -> String {
        if self.receivers_only {
            return "post_migrate receivers".into();
        }
        format!("{}.{}", self.key.0, self.key.1)
    }
}

/// Django's `migrate` options for `-v`: its own output at `-v 0` is nothing but errors;
/// lockedmigrate prints the steps' lines.
fn django_options(verbosity: u8) -> Vec<String> {
    let v = verbosity.saturating_sub(1).min(3);
    vec!["--noinput".into(), "-v".into(), v.to_string()]
}

/// After a plan in which Django ran steps: `migrate` once more to the same target, where
/// nothing is pending, so Django sends post_migrate as its `migrate` does at the end: the
/// receivers the bundle could not export (e.g. django-guardian's `create_anonymous_user`) then
/// see the final schema, as with `manage.py migrate`. Django is running anyway, so this costs
/// a `migrate` with nothing to do, not a start-up.
pub fn receivers(target: &Target, verbosity: u8) -> Handover {
    let mut args = vec!["migrate".to_string()];
    args.extend(django_options(verbosity));
    match target {
        Target::All => {}
        Target::App(a) => args.push(a.clone()),
        Target::Migration(a, n) => args.extend([a.clone(), n.clone()]),
        Target::Zero(a) => args.extend([a.clone(), "zero".into()]),
    }
    Handover {
        key: (String::new(), String::new()),
        backwards: false,
        receivers_only: true,
        args,
        reason: "post_migrate receivers not in the bundle".into(),
    }
}

/// Why `steps` (of a migration, in the direction planned) need Django on this database, or `None` when
/// djinit applies them itself. Guards are read on `client` (outside any transaction; the
/// migration's own transaction checks them again).
pub fn needs_django(client: &mut Client, steps: &[Step]) -> anyhow::Result<Option<String>> {
    for step in steps {
        let Step::Python {
            describe,
            callable,
            guard,
        } = step
        else {
            continue;
        };
        let name = callable.as_deref().unwrap_or(describe);
        let Some(g) = guard else {
            return Ok(Some(format!("Python: {name}")));
        };
        if !crate::apply::guard_holds(client, g, name)? {
            return Ok(Some(format!(
                "Python: {name}, a no-op only when {} ({}), which does not hold here",
                g.sql, g.reason
            )));
        }
    }
    Ok(None)
}

/// Django's `migrate APP TARGET` for exactly the step `p`, given `done` (what is applied now):
/// [`exact_target`]. Refused (exit 65, nothing changed) when no target does exactly that.
pub fn step(
    graph: &Graph<'_>,
    done: &HashSet<Key>,
    p: &Planned,
    verbosity: u8,
    reason: String,
) -> anyhow::Result<Handover> {
    let (app, name) = &p.key;
    let Some(target) = exact_target(graph, done, p) else {
        return Err(Failure::new(
            Kind::Data,
            format!(
                "unapplying {app}.{name} needs Django ({reason}), and no `migrate {app} TARGET` unapplies exactly that migration here (a merge migration, or a sibling or dependent that would be unapplied too); nothing more was done. Unapply with `djinit lockedmigrate --exec -- python manage.py migrate {app} ...`"
            ),
        )
        .into());
    };
    let mut args = vec!["migrate".to_string()];
    args.extend(django_options(verbosity));
    args.extend([app.clone(), target]);
    Ok(Handover {
        key: p.key.clone(),
        backwards: p.backwards,
        receivers_only: false,
        args,
        reason,
    })
}

/// After the host ran `h`: Django must have recorded (or, backwards, removed) the migration.
pub fn check_done(h: &Handover, applied: &HashSet<Key>) -> anyhow::Result<()> {
    if h.receivers_only || applied.contains(&h.key) != h.backwards {
        return Ok(());
    }
    Err(Failure::new(
        Kind::Data,
        format!(
            "Django's `{}` exited 0 but {} is still {}: the host's Django is not the project the bundle was exported from, or uses another database. Nothing more was applied",
            h.args.join(" "),
            h.label(),
            if h.backwards { "applied" } else { "not applied" }
        ),
    )
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(k: &[(&str, &str)]) -> HashSet<Key> {
        k.iter()
            .map(|(a, n)| (a.to_string(), n.to_string()))
            .collect()
    }

    #[test]
    fn a_step_django_did_not_bring_about_is_an_error() {
        let h = Handover {
            key: ("a".into(), "0002".into()),
            backwards: false,
            receivers_only: false,
            args: vec!["migrate".into()],
            reason: String::new(),
        };
        assert!(check_done(&h, &keys(&[("a", "0002")])).is_ok());
        let e = check_done(&h, &keys(&[("a", "0001")])).unwrap_err();
        assert!(e.to_string().contains("still not applied"), "{e}");
        let back = Handover {
            backwards: true,
            ..h
        };
        assert!(check_done(&back, &keys(&[("a", "0001")])).is_ok());
        assert!(check_done(&back, &keys(&[("a", "0002")])).is_err());
        // The receivers' run changes no migration.
        let r = receivers(&Target::Migration("a".into(), "0002".into()), 1);
        assert_eq!(r.args, ["migrate", "--noinput", "-v", "0", "a", "0002"]);
        assert!(check_done(&r, &keys(&[])).is_ok());
        assert_eq!(
            receivers(&Target::All, 3).args,
            ["migrate", "--noinput", "-v", "2"]
        );
    }
}
