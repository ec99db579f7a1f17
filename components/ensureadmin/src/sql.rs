//! The SQL ensureadmin runs, built from the user table's columns (sans-IO: text in, text out).
//!
//! Identifiers (`--table`, `--username-field`, known column names) are checked to be plain
//! identifiers by [`crate::options`] and double-quoted here, so they keep their case exactly as
//! Django quotes them. Every value from the user (username, email, password hash) is a bound
//! parameter; only constants (`TRUE`, `''`, `NULL`, `now()`) appear literally.

use std::fmt;

/// What PostgreSQL says about one column of the user table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub not_null: bool,
    /// A default, identity or generated value exists (e.g. `id`).
    pub has_default: bool,
    /// A unique index or constraint covers exactly this column (non-partial, no expression).
    pub unique: bool,
}

/// Reads [`Column`]s; `$1` is the table name as quoted text for `to_regclass` (which follows
/// `search_path`, as Django's unqualified table names do). No rows = the table does not exist.
pub const COLUMNS: &str = "\
SELECT a.attname, a.attnotnull::text, \
 (a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '')::text, \
 EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = a.attrelid AND i.indisunique \
  AND i.indpred IS NULL AND i.indexprs IS NULL AND i.indnkeyatts = 1 AND i.indkey[0] = a.attnum)::text \
FROM pg_catalog.pg_attribute a \
WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped \
ORDER BY a.attnum";

/// `"name"` with embedded quotes doubled.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// `schema.table` or `table`, each part quoted.
pub fn quote_table(table: &str) -> String {
    table
        .split('.')
        .map(quote_ident)
        .collect::<Vec<_>>()
        .join(".")
}

/// The user table cannot be used as asked. Configuration error (exit 78).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unusable(pub String);

/// How a column is filled on insert, as Django's `create_superuser` fills `AbstractUser`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fill {
    Username,
    Password,
    Email,
    True,
    Empty,
    Null,
    Now,
}

/// Which columns ensureadmin writes and how, for one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    table: String,
    username_field: String,
    columns: Vec<(String, Fill)>,
    /// The username column has a unique index: `INSERT ... ON CONFLICT DO NOTHING` is safe
    /// against every writer. Otherwise a transaction-scoped advisory lock serialises djinit runs.
    pub unique_username: bool,
    /// The flag columns present (`is_superuser`, and `is_staff`/`is_active` if they exist).
    pub flags: Vec<String>,
    pub writes_email: bool,
}

/// The columns every usable user table needs: `password` and `is_superuser`
/// (`AbstractBaseUser` + `PermissionsMixin`) and the username field.
const REQUIRED: [&str; 2] = ["password", "is_superuser"];

impl Plan {
    /// Decide what to write. `table` as given (`schema.table` or `table`).
    pub fn new(table: &str, username_field: &str, columns: &[Column]) -> Result<Plan, Unusable> {
        let find = |n: &str| columns.iter().find(|c| c.name == n);
        let Some(ucol) = find(username_field) else {
            return Err(Unusable(format!(
                "table {table} has no column {username_field} (--username-field)"
            )));
        };
        for r in REQUIRED {
            if find(r).is_none() {
                return Err(Unusable(format!(
                    "table {table} has no column {r}; a Django user model needs it (AbstractBaseUser, PermissionsMixin)"
                )));
            }
        }
        let mut plan = Vec::new();
        for c in columns {
            let fill = match c.name.as_str() {
                n if n == username_field => Some(Fill::Username),
                "password" => Some(Fill::Password),
                "email" => Some(Fill::Email),
                "is_superuser" | "is_staff" | "is_active" => Some(Fill::True),
                "first_name" | "last_name" => Some(Fill::Empty),
                "last_login" => Some(Fill::Null),
                "date_joined" => Some(Fill::Now),
                _ => None,
            };
            match fill {
                Some(f) => plan.push((c.name.clone(), f)),
                None if c.not_null && !c.has_default => {
                    return Err(Unusable(format!(
                        "table {table} has a required column {} (NOT NULL, no default) that ensureadmin \
                         does not know how to fill; give it a database default",
                        c.name
                    )))
                }
                None => {}
            }
        }
        let flags = ["is_superuser", "is_staff", "is_active"]
            .into_iter()
            .filter(|f| find(f).is_some())
            .map(String::from)
            .collect();
        Ok(Plan {
            table: quote_table(table),
            username_field: quote_ident(username_field),
            writes_email: plan.iter().any(|(_, f)| *f == Fill::Email),
            columns: plan,
            unique_username: ucol.unique,
            flags,
        })
    }

    /// `$1` username, `$2` password hash, `$3` email (only when [`Plan::writes_email`]).
    pub fn insert(&self) -> String {
        let names: Vec<String> = self.columns.iter().map(|(n, _)| quote_ident(n)).collect();
        let values: Vec<&str> = self
            .columns
            .iter()
            .map(|(_, f)| match f {
                Fill::Username => "$1",
                Fill::Password => "$2",
                Fill::Email => "$3",
                Fill::True => "TRUE",
                Fill::Empty => "''",
                Fill::Null => "NULL",
                Fill::Now => "now()",
            })
            .collect();
        let mut sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            self.table,
            names.join(", "),
            values.join(", ")
        );
        if self.unique_username {
            sql.push_str(&format!(
                " ON CONFLICT ({}) DO NOTHING",
                self.username_field
            ));
        }
        sql
    }

    /// The stored password and flags (as `true`/`false` text) of user `$1`.
    pub fn select(&self) -> String {
        let mut cols = vec!["\"password\"".to_string()];
        cols.extend(
            self.flags
                .iter()
                .map(|f| format!("{}::text", quote_ident(f))),
        );
        format!(
            "SELECT {} FROM {} WHERE {} = $1",
            cols.join(", "),
            self.table,
            self.username_field
        )
    }

    /// Whether user `$1` exists.
    pub fn exists(&self) -> String {
        format!(
            "SELECT 1 FROM {} WHERE {} = $1 LIMIT 1",
            self.table, self.username_field
        )
    }

    /// Set the password to `$2` and every flag to true for user `$1`, only if the stored hash is
    /// still `$3` (optimistic concurrency: a concurrent rotation is noticed, not overwritten).
    pub fn update_password(&self) -> String {
        let mut sets = vec!["\"password\" = $2".to_string()];
        sets.extend(
            self.flags
                .iter()
                .map(|f| format!("{} = TRUE", quote_ident(f))),
        );
        format!(
            "UPDATE {} SET {} WHERE {} = $1 AND \"password\" = $3",
            self.table,
            sets.join(", "),
            self.username_field
        )
    }

    /// Set every flag to true for user `$1`.
    pub fn update_flags(&self) -> String {
        let sets: Vec<String> = self
            .flags
            .iter()
            .map(|f| format!("{} = TRUE", quote_ident(f)))
            .collect();
        format!(
            "UPDATE {} SET {} WHERE {} = $1",
            self.table,
            sets.join(", "),
            self.username_field
        )
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.columns.iter().map(|(n, _)| n.as_str()).collect();
        write!(
            f,
            "{} ({}; {})",
            self.table,
            names.join(", "),
            if self.unique_username {
                "unique username: INSERT ... ON CONFLICT DO NOTHING"
            } else {
                "no unique index on the username: advisory lock"
            }
        )
    }
}

/// The transaction-scoped advisory lock taken when the username column has no unique index:
/// two int4 keys (the table's regclass text and the username, hashed by the server), a key
/// space apart from the single-bigint locks of lockedmigrate.
pub const ADVISORY_LOCK: &str =
    "SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext($1), pg_catalog.hashtext($2))";

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, not_null: bool, has_default: bool, unique: bool) -> Column {
        Column {
            name: name.into(),
            not_null,
            has_default,
            unique,
        }
    }

    /// `auth_user` as Django 5.2's migrations create it.
    fn auth_user() -> Vec<Column> {
        vec![
            col("id", true, true, true),
            col("password", true, false, false),
            col("last_login", false, false, false),
            col("is_superuser", true, false, false),
            col("username", true, false, true),
            col("first_name", true, false, false),
            col("last_name", true, false, false),
            col("email", true, false, false),
            col("is_staff", true, false, false),
            col("is_active", true, false, false),
            col("date_joined", true, false, false),
        ]
    }

    #[test]
    fn auth_user_like_create_superuser() {
        let p = Plan::new("auth_user", "username", &auth_user()).unwrap();
        assert_eq!(
            p.insert(),
            "INSERT INTO \"auth_user\" (\"password\", \"last_login\", \"is_superuser\", \"username\", \
             \"first_name\", \"last_name\", \"email\", \"is_staff\", \"is_active\", \"date_joined\") \
             VALUES ($2, NULL, TRUE, $1, '', '', $3, TRUE, TRUE, now()) ON CONFLICT (\"username\") DO NOTHING"
        );
        assert!(p.writes_email && p.unique_username);
        assert_eq!(
            p.select(),
            "SELECT \"password\", \"is_superuser\"::text, \"is_staff\"::text, \"is_active\"::text \
             FROM \"auth_user\" WHERE \"username\" = $1"
        );
        assert_eq!(
            p.update_password(),
            "UPDATE \"auth_user\" SET \"password\" = $2, \"is_superuser\" = TRUE, \"is_staff\" = TRUE, \
             \"is_active\" = TRUE WHERE \"username\" = $1 AND \"password\" = $3"
        );
    }

    #[test]
    fn custom_email_model() {
        let cols = vec![
            col("id", true, true, true),
            col("password", true, false, false),
            col("last_login", false, false, false),
            col("is_superuser", true, false, false),
            col("email", true, false, true),
            col("is_staff", true, false, false),
            col("nickname", false, false, false),
        ];
        let p = Plan::new("accounts.Member", "email", &cols).unwrap();
        assert_eq!(
            p.insert(),
            "INSERT INTO \"accounts\".\"Member\" (\"password\", \"last_login\", \"is_superuser\", \"email\", \"is_staff\") \
             VALUES ($2, NULL, TRUE, $1, TRUE) ON CONFLICT (\"email\") DO NOTHING"
        );
        assert!(
            !p.writes_email,
            "the email is the username: bound once as $1"
        );
        assert_eq!(p.flags, ["is_superuser", "is_staff"]);
    }

    #[test]
    fn without_unique_index_no_on_conflict() {
        let mut cols = auth_user();
        cols[4].unique = false;
        let p = Plan::new("auth_user", "username", &cols).unwrap();
        assert!(!p.unique_username);
        assert!(!p.insert().contains("ON CONFLICT"));
    }

    #[test]
    fn unusable_tables() {
        let e = Plan::new("auth_user", "login", &auth_user()).unwrap_err();
        assert!(e.0.contains("no column login"));
        let cols: Vec<Column> = auth_user()
            .into_iter()
            .filter(|c| c.name != "is_superuser")
            .collect();
        assert!(Plan::new("auth_user", "username", &cols)
            .unwrap_err()
            .0
            .contains("is_superuser"));
        let mut cols = auth_user();
        cols.push(col("tenant_id", true, false, false));
        assert!(Plan::new("auth_user", "username", &cols)
            .unwrap_err()
            .0
            .contains("tenant_id"));
        cols.last_mut().unwrap().has_default = true;
        assert!(Plan::new("auth_user", "username", &cols).is_ok());
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_table("s.t"), "\"s\".\"t\"");
    }
}
