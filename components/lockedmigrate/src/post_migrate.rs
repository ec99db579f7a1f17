//! The rows Django's `post_migrate` handlers (`create_contenttypes`, `create_permissions`)
//! create, from the bundle, inserted only where missing and in the bundle's order (so ids match
//! a `manage.py migrate` run on the same database). One transaction, under the advisory lock.
//!
//! Two statements whatever the number of rows: the rows travel as one bound JSON parameter
//! (never spliced into SQL) and `json_to_recordset` turns them back into rows; `ORDER BY` keeps
//! the bundle's order, so the serial ids come out as Django's (content types and permissions have
//! separate sequences, so Django's per-app interleaving does not change them).

use anyhow::Context;
use djinit_bundle::Row;
use djinit_pg::Client;
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

fn exists(client: &mut Client, table: &str) -> anyhow::Result<bool> {
    Ok(!client
        .query(
            "SELECT 1 FROM pg_catalog.pg_class c WHERE c.relname = $1 AND c.relkind IN ('r','p') \
             AND pg_catalog.pg_table_is_visible(c.oid)",
            &[Some(table)],
        )?
        .is_empty())
}

/// Insert the missing rows; returns (content types, permissions) added.
pub fn apply(client: &mut Client, rows: &[Row]) -> anyhow::Result<(u64, u64)> {
    if rows.is_empty() || !exists(client, "django_content_type")? {
        return Ok((0, 0));
    }
    let perms = exists(client, "auth_permission")?;
    let mut cts = Vec::new();
    let mut ps = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        match row {
            Row::ContentType { app_label, model } => {
                cts.push(json!({"i": i, "app": app_label, "model": model}))
            }
            Row::Permission { app_label, model, codename, name } => ps.push(
                json!({"i": i, "app": app_label, "model": model, "codename": codename, "name": name}),
            ),
        }
    }
    let cts = serde_json::Value::Array(cts).to_string();
    let ps = serde_json::Value::Array(ps).to_string();
    client.batch("BEGIN")?;
    let r = (|| -> anyhow::Result<(u64, u64)> {
        let ct = client
            .execute(CONTENT_TYPES, &[Some(&cts)])
            .context("adding content types")?;
        let p = if perms {
            client
                .execute(PERMISSIONS, &[Some(&ps)])
                .context("adding permissions")?
        } else {
            0
        };
        Ok((ct, p))
    })();
    match r {
        Ok(n) => {
            client.batch("COMMIT")?;
            Ok(n)
        }
        Err(e) => {
            let _ = client.batch("ROLLBACK");
            Err(e.context("post_migrate rows (content types, permissions) were not added"))
        }
    }
}
