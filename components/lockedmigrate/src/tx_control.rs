//! Finding transaction control in a migration's SQL before it runs.
//!
//! An atomic migration runs between lockedmigrate's own `BEGIN` and `COMMIT`. A `COMMIT` inside
//! its SQL (or `END`, `ROLLBACK`, `ABORT`, `BEGIN`, `START TRANSACTION`, `SAVEPOINT`, `RELEASE`,
//! `ROLLBACK TO`, `PREPARE TRANSACTION`) would commit part of it, or undo part of it, and run the
//! rest outside the transaction: all or nothing no longer holds. Such SQL is refused before
//! anything is applied.
//!
//! Statements are found with PostgreSQL's lexical rules, the way psql splits a script: `;` ends
//! a statement except inside string literals (`'...'`, `E'...'` with backslash escapes), quoted
//! identifiers (`"..."`), dollar quotes (`$$...$$`, `$tag$...$tag$`: function bodies, `DO`
//! blocks), comments (`-- ...`, nested `/* ... */`), parentheses, and the `BEGIN ... END` body
//! of `CREATE FUNCTION/PROCEDURE ... BEGIN ATOMIC` (psql's own heuristic). The first words of
//! each statement decide.
//!
//! Limit: `standard_conforming_strings` is taken to be on (the default since PostgreSQL 9.1).
//! SQL that turns it off in an earlier statement can hide a `COMMIT` from this check; the
//! transaction status the server reports after each statement still catches it (`apply`), and
//! the message then says what may have been committed.

/// A transaction-control statement found in SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The command, upper case: `COMMIT`, `START TRANSACTION`, `ROLLBACK`, ...
    pub command: String,
    /// The statement's first line, shortened, for messages.
    pub statement: String,
}

/// The first transaction-control statement in `sql`, if any.
pub fn find(sql: &str) -> Option<Found> {
    let mut found = None;
    for_each_statement(sql, |words, text| {
        if found.is_none() {
            found = command(words).map(|command| Found {
                command,
                statement: shorten(text),
            });
        }
    });
    found
}

/// The transaction-control command a statement starting with `words` (upper case) is, if any.
fn command(words: &[String]) -> Option<String> {
    let first = words.first()?.as_str();
    let second = words.get(1).map(String::as_str);
    match first {
        "BEGIN" | "COMMIT" | "END" | "ROLLBACK" | "ABORT" | "SAVEPOINT" | "RELEASE" => {
            Some(first.to_string())
        }
        "START" | "PREPARE" if second == Some("TRANSACTION") => {
            Some(format!("{first} TRANSACTION"))
        }
        _ => None,
    }
}

fn shorten(text: &str) -> String {
    let line = text.trim().lines().next().unwrap_or("").trim();
    match line.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &line[..i]),
        None => line.to_string(),
    }
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_ident_cont(c: u8) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || c == b'$'
}

/// Call `f` with each statement's first two top-level words (upper case) and its text.
fn for_each_statement(sql: &str, mut f: impl FnMut(&[String], &str)) {
    let b = sql.as_bytes();
    let mut i = 0;
    let mut start = 0;
    let mut words: Vec<String> = Vec::new();
    // psql's heuristic for `CREATE [OR REPLACE] FUNCTION|PROCEDURE ... BEGIN ATOMIC ... END`:
    // the first letters of the statement's first four words when they are one of those.
    let mut ident_count = 0usize;
    let mut idents = [0u8; 4];
    let mut paren_depth = 0usize;
    let mut begin_depth = 0usize;
    while i < b.len() {
        let c = b[i];
        match c {
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0usize;
                while i < b.len() {
                    if b[i..].starts_with(b"/*") {
                        depth += 1;
                        i += 2;
                    } else if b[i..].starts_with(b"*/") {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
            }
            b'\'' => i = skip_quoted(b, i, b'\'', false),
            b'"' => i = skip_quoted(b, i, b'"', false),
            b'$' => i = skip_dollar(b, i),
            b'(' => {
                paren_depth += 1;
                i += 1;
            }
            b')' => {
                paren_depth = paren_depth.saturating_sub(1);
                i += 1;
            }
            b';' if paren_depth == 0 && begin_depth == 0 => {
                f(&words, &sql[start..i]);
                words.clear();
                ident_count = 0;
                i += 1;
                start = i;
            }
            c if is_ident_start(c) => {
                let s = i;
                while i < b.len() && is_ident_cont(b[i]) {
                    i += 1;
                }
                let word = sql[s..i].to_ascii_uppercase();
                // E'...': a string with backslash escapes (other prefixes, N B X U&, quote as usual).
                if word == "E" && b.get(i) == Some(&b'\'') {
                    i = skip_quoted(b, i, b'\'', true);
                    continue;
                }
                if ident_count == 0 {
                    idents = [0; 4];
                }
                if ident_count < 4
                    && ["CREATE", "FUNCTION", "PROCEDURE", "OR", "REPLACE"].contains(&word.as_str())
                {
                    idents[ident_count] = word.as_bytes()[0];
                }
                ident_count += 1;
                let in_routine = idents[0] == b'C'
                    && (idents[1] == b'F'
                        || idents[1] == b'P'
                        || (idents[1] == b'O'
                            && idents[2] == b'R'
                            && (idents[3] == b'F' || idents[3] == b'P')));
                if in_routine && paren_depth == 0 {
                    match word.as_str() {
                        "BEGIN" => begin_depth += 1,
                        "CASE" if begin_depth >= 1 => begin_depth += 1,
                        "END" => begin_depth = begin_depth.saturating_sub(1),
                        _ => {}
                    }
                }
                if words.len() < 2 {
                    words.push(word);
                }
            }
            c if c.is_ascii_digit() => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_')
                {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    if start < b.len() && !sql[start..].trim().is_empty() {
        f(&words, &sql[start..]);
    }
}

/// Past the literal or quoted identifier opening at `i` (`q` doubled inside stands for itself;
/// with `backslash`, `\` escapes the next character). Unterminated: the end of the text.
fn skip_quoted(b: &[u8], i: usize, q: u8, backslash: bool) -> usize {
    let mut j = i + 1;
    while j < b.len() {
        if backslash && b[j] == b'\\' {
            j += 2;
        } else if b[j] == q {
            if b.get(j + 1) == Some(&q) {
                j += 2;
            } else {
                return j + 1;
            }
        } else {
            j += 1;
        }
    }
    b.len()
}

/// Past the dollar-quoted string opening at `i` (`$$` or `$tag$`), or past a lone `$`/`$1`.
fn skip_dollar(b: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    if j < b.len() && is_ident_start(b[j]) {
        while j < b.len() && is_ident_cont(b[j]) && b[j] != b'$' {
            j += 1;
        }
    }
    if b.get(j) != Some(&b'$') {
        // `$1` (a parameter) or a stray `$`: not a quote.
        return (i + 1).max(j);
    }
    let tag = &b[i..=j];
    let body = j + 1;
    match b[body..].windows(tag.len()).position(|w| w == tag) {
        Some(p) => body + p + tag.len(),
        None => b.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(sql: &str) -> Option<String> {
        find(sql).map(|f| f.command)
    }

    #[test]
    fn finds_every_transaction_control_statement() {
        for (sql, want) in [
            ("COMMIT", "COMMIT"),
            ("commit;", "COMMIT"),
            (
                "CREATE TABLE a (id int); COMMIT; CREATE TABLE b (id int);",
                "COMMIT",
            ),
            ("ALTER TABLE a ADD b int;\nend;", "END"),
            ("ROLLBACK", "ROLLBACK"),
            ("rollback to savepoint s", "ROLLBACK"),
            ("abort", "ABORT"),
            ("BEGIN; SELECT 1", "BEGIN"),
            ("begin isolation level serializable", "BEGIN"),
            ("START TRANSACTION", "START TRANSACTION"),
            ("SAVEPOINT s1", "SAVEPOINT"),
            ("RELEASE SAVEPOINT s1", "RELEASE"),
            ("release s1", "RELEASE"),
            ("PREPARE TRANSACTION 'x'", "PREPARE TRANSACTION"),
            ("COMMIT PREPARED 'x'", "COMMIT"),
            (
                "  -- leading comment\n  /* and /* nested */ one */ COMMIT",
                "COMMIT",
            ),
            ("SELECT 'it''s'; COMMIT", "COMMIT"),
            ("SELECT E'a\\'b'; COMMIT", "COMMIT"),
            ("SELECT $1; COMMIT", "COMMIT"),
            ("SELECT a$b$ FROM t; COMMIT", "COMMIT"),
            (
                "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; END; COMMIT",
                "COMMIT",
            ),
        ] {
            assert_eq!(cmd(sql).as_deref(), Some(want), "{sql}");
        }
    }

    #[test]
    fn ignores_literals_comments_quotes_and_bodies() {
        for sql in [
            "CREATE TABLE t (id int)",
            "SELECT 'COMMIT'",
            "SELECT 'x; COMMIT; y'",
            "SELECT E'it\\'s; COMMIT'",
            "SELECT \"commit\" FROM t",
            "SELECT 1 AS \"x;\"\"commit\"",
            "-- COMMIT\nSELECT 1",
            "/* ; COMMIT; /* nested ; COMMIT */ ; COMMIT */ SELECT 1",
            "DO $$ BEGIN COMMIT; END $$",
            "DO $body$ BEGIN PERFORM 1; ROLLBACK; END $body$ LANGUAGE plpgsql",
            "CREATE FUNCTION f() RETURNS void AS $f$ BEGIN COMMIT; END $f$ LANGUAGE plpgsql",
            "CREATE OR REPLACE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC SELECT 1; END",
            "CREATE FUNCTION g(i int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN i > 0 THEN 1 ELSE 0 END; END",
            "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            "PREPARE q AS SELECT 1",
            "UPDATE t SET started = true; SELECT begin_date FROM t",
            "CREATE INDEX i ON t ((a)); SELECT 'end'",
            "",
            ";;",
        ] {
            assert_eq!(cmd(sql), None, "{sql}");
        }
    }

    #[test]
    fn reports_the_statement() {
        let f = find("CREATE TABLE a (id int);\n  COMMIT  ;").unwrap();
        assert_eq!(f.statement, "COMMIT");
        let long = format!("SAVEPOINT {}", "x".repeat(200));
        assert!(find(&long).unwrap().statement.ends_with("..."));
    }
}
