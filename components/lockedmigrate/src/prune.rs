//! `--prune`: delete django_migrations rows of an app that the bundle no longer has (Django's
//! `migrate --prune`).

use djinit_bundle::graph::Key;
use djinit_bundle::{Bundle, Migration};
use djinit_cli::print_line;
use djinit_cli::Log;
use djinit_pg::Client;
use std::collections::HashSet;

pub fn prune(
    client: &mut Client,
    bundle: &Bundle,
    app: &str,
    recorded: &HashSet<Key>,
    log: &Log,
) -> anyhow::Result<()> {
    let known: HashSet<Key> = bundle
        .migrations
        .iter()
        .map(|m| (m.app.clone(), m.name.clone()))
        .collect();
    let mut to_prune: Vec<&Key> = recorded
        .iter()
        .filter(|k| k.0 == app && !known.contains(*k))
        .collect();
    to_prune.sort();
    let out = log.verbosity() >= 1;
    if out {
        print_line("Pruning migrations:");
    }
    let blocked: Vec<&Migration> = bundle
        .migrations
        .iter()
        .filter(|m| m.replaces.iter().any(|r| to_prune.contains(&r)))
        .collect();
    if !blocked.is_empty() {
        print_line("  Cannot use --prune because the following squashed migrations have their 'replaces' attributes and may not be recorded as applied:");
        for m in blocked {
            print_line(format!("    {}", m.label()));
        }
        return Ok(());
    }
    if to_prune.is_empty() && out {
        print_line("  No migrations to prune.");
    }
    for (a, n) in to_prune {
        client.execute(
            "DELETE FROM django_migrations WHERE app = $1 AND name = $2",
            &[Some(a), Some(n)],
        )?;
        if out {
            print_line(format!("  Pruning {a}.{n} OK"));
        }
    }
    Ok(())
}
