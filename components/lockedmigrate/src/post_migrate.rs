//! The rows Django's `post_migrate` handlers (`create_contenttypes`, `create_permissions`,
//! the sites framework's `create_default_site`) create, from the bundle, inserted only where
//! missing and in the bundle's order (so ids match a `manage.py migrate` run on the same
//! database). One transaction, under the advisory lock (txn.rs: behind transaction pooling the
//! transaction takes it itself, so concurrent runs do not insert the same rows). Receivers the bundle does not reproduce
//! are listed after every run ([`report_not_exported`]), as Django would have run them.
//!
//! Two statements whatever the number of rows: the rows travel as one bound JSON parameter
//! (never spliced into SQL) and `json_to_recordset` turns them back into rows; `ORDER BY` keeps
//! the bundle's order, so the serial ids come out as Django's (content types and permissions have
//! separate sequences, so Django's per-app interleaving does not change them).

use anyhow::Context;
use djinit_bundle::Row;
use djinit_cli::Log;
use djinit_pg::Client;

use crate::txn::Txn;
use serde_json::json;

const CONTENT_TYPES: &str = "INSERT INTO django_content_type (app_label, model) \
     SELECT r.app, r.model FROM json_to_recordset($1::json) AS r(i int, app text, model text) \
     WHERE NOT EXISTS (SELECT 1 FROM django_content_type c \
                       WHERE c.app_label = r.app AND c.model = r.model) \
     ORDER BY r.i";
const PERMISSIONS: &str = "INSERT INTO auth_permission (name, content_type_id, codename) \
     SELECT r.name, ct.id, r.codename \
     FROM json_to_recordset($1::json) AS r(i int, app text, model text, codename text, name text) \
     JOIN django_content_type ct ON ct.app_label = r.app AND ct.model = r.model \
     WHERE NOT EXISTS (SELECT 1 FROM auth_permission p \
                       WHERE p.content_type_id = ct.id AND p.codename = r.codename) \
     ORDER BY r.i";

/// `create_default_site`: the site only when the table is empty (Django checks `exists()`).
const SITE: &str = "INSERT INTO django_site (id, domain, name) \
     SELECT $1::bigint, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM django_site)";

fn exists(client: &mut Client, table: &str) -> anyhow::Result<bool> {
    Ok(!client
        .query(
            "SELECT 1 FROM pg_catalog.pg_class c WHERE c.relname = $1 AND c.relkind IN ('r','p') \
             AND pg_catalog.pg_table_is_visible(c.oid)",
            &[Some(table)],
        )?
        .is_empty())
}

/// Insert the missing rows (and log what was added at `-v 2`).
pub fn apply(client: &mut Client, txn: &Txn, rows: &[Row], log: &Log) -> anyhow::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let cts_exist = exists(client, "django_content_type")?;
    let perms = cts_exist && exists(client, "auth_permission")?;
    let sites = exists(client, "django_site")?;
    let mut cts = Vec::new();
    let mut ps = Vec::new();
    let mut site = None;
    for (i, row) in rows.iter().enumerate() {
        match row {
            Row::ContentType { app_label, model } => {
                cts.push(json!({"i": i, "app": app_label, "model": model}))
            }
            Row::Permission { app_label, model, codename, name } => ps.push(
                json!({"i": i, "app": app_label, "model": model, "codename": codename, "name": name}),
            ),
            Row::Site { id, domain, name, sequence_reset } => {
                site = Some((id.to_string(), domain, name, sequence_reset))
            }
        }
    }
    let cts = serde_json::Value::Array(cts).to_string();
    let ps = serde_json::Value::Array(ps).to_string();
    txn.begin(client)?;
    let r = (|| -> anyhow::Result<(u64, u64, u64)> {
        let ct = if cts_exist {
            client
                .execute(CONTENT_TYPES, &[Some(&cts)])
                .context("adding content types")?
        } else {
            0
        };
        let p = if perms {
            client
                .execute(PERMISSIONS, &[Some(&ps)])
                .context("adding permissions")?
        } else {
            0
        };
        let mut s = 0;
        if let (Some((id, domain, name, reset)), true) = (&site, sites) {
            s = client
                .execute(SITE, &[Some(id), Some(domain), Some(name)])
                .context("adding the default site")?;
            if s > 0 {
                for sql in reset.iter() {
                    client
                        .batch(sql)
                        .context("resetting django_site's sequence")?;
                }
            }
        }
        Ok((ct, p, s))
    })();
    let r = r.and_then(|counts| {
        client.batch("COMMIT")?;
        Ok(counts)
    });
    txn.ended(client);
    match r {
        Ok((ct, perm, site)) => {
            if ct + perm + site > 0 {
                log.detail(format!(
                    "post_migrate: added {ct} content types, {perm} permissions and {site} sites"
                ));
            }
            Ok(())
        }
        Err(e) => {
            let _ = client.batch("ROLLBACK");
            Err(e.context(
                "post_migrate rows (content types, permissions, default site) were not added",
            ))
        }
    }
}

/// One line per `post_migrate` receiver the bundle does not reproduce (`-v 1`): Django would
/// have run it after this migrate, djinit did not.
pub fn report_not_exported(receivers: &[String], log: &Log) {
    for r in receivers {
        log.info(format!(
            "post_migrate receiver {r} did not run (it is not in the bundle): run it with Django, e.g. `djinit lockedmigrate --exec -- python manage.py migrate` or a Job"
        ));
    }
}
