//! Keeping secrets out of the server's texts before anything prints them.
//!
//! A server error can echo what the client sent: `Failing row contains (…, pbkdf2_sha256$…)`
//! is the password hash `ensureadmin --password-hash` was given. Two rules, applied to the
//! message, detail and hint of every error and notice:
//! - [`hashes`]: anything shaped like a Django or PostgreSQL password hash (`algorithm$…$…`,
//!   `SCRAM-SHA-256$…`, `md5` + 32 hex digits) is replaced, whatever statement ran (the startup
//!   errors and notices too);
//! - [`values`]: every bound parameter value the failing statement sent (4 bytes or longer:
//!   shorter ones cannot be told from the words around them, and no secret djinit sends is that
//!   short), as sent and as `record_out` quotes it (`"` and `\` doubled), is replaced.
//!
//! The replacement is [`REDACTED`]; the rest of the text stays readable.

use crate::error::DbError;

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Shorter parameter values are left alone (see the module comment).
pub const MIN_VALUE_LEN: usize = 4;

/// Shortest token taken for an `algorithm$…$…` hash (`md5$salt$0123…` is longer).
const MIN_HASH_LEN: usize = 20;

/// Redact `e`'s message, detail and hint: hash shapes, and the values of `sent`.
pub fn db_error(e: &mut DbError, sent: &[Option<&str>]) {
    let values: Vec<&str> = sent.iter().flatten().copied().collect();
    for text in [Some(&mut e.message), e.detail.as_mut(), e.hint.as_mut()]
        .into_iter()
        .flatten()
    {
        let v = self::values(text, &values);
        *text = hashes(&v);
    }
}

/// `text` with every occurrence of each of `values` (4 bytes or longer) replaced.
pub fn values(text: &str, values: &[&str]) -> String {
    let mut forms: Vec<String> = Vec::new();
    for v in values.iter().filter(|v| v.len() >= MIN_VALUE_LEN) {
        forms.push(v.to_string());
        let quoted = v.replace('\\', "\\\\").replace('"', "\"\"");
        if quoted != *v {
            forms.push(quoted);
        }
    }
    // Longest first: a value that contains another is replaced whole.
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    let mut out = text.to_string();
    for f in &forms {
        if out.contains(f.as_str()) {
            out = out.replace(f.as_str(), REDACTED);
        }
    }
    out
}

/// `text` with every hash-shaped token replaced.
pub fn hashes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut start = 0;
    let bytes = text.as_bytes();
    let mut i = 0;
    while i <= bytes.len() {
        if i == bytes.len() || is_boundary(bytes, i) {
            let token = &text[start..i];
            if is_hash(token) {
                out.push_str(REDACTED);
            } else {
                out.push_str(token);
            }
            if i < bytes.len() {
                // Boundaries are ASCII: one byte.
                out.push(bytes[i] as char);
            }
            start = i + 1;
        }
        i += 1;
    }
    out
}

/// Token boundaries: white space, quotes, brackets, `;`, and `,` followed by a space or a
/// closing parenthesis (a row's separator; argon2's `m=…,t=…,p=…` has none).
fn is_boundary(b: &[u8], i: usize) -> bool {
    match b[i] {
        b' ' | b'\t' | b'\n' | b'\r' | b'"' | b'\'' | b'(' | b')' | b'[' | b']' | b'{' | b'}'
        | b'<' | b'>' | b';' => true,
        b',' => matches!(b.get(i + 1), None | Some(b' ' | b')' | b'\t' | b'\n')),
        _ => false,
    }
}

/// `algorithm$…$…` (Django: pbkdf2, argon2, bcrypt, scrypt, md5, sha1, crypt), `$2b$…` (crypt),
/// `SCRAM-SHA-256$iterations:salt$stored:server` (PostgreSQL), `md5` + 32 hex (PostgreSQL).
fn is_hash(token: &str) -> bool {
    if token.len() == 35
        && token.starts_with("md5")
        && token[3..].bytes().all(|c| c.is_ascii_hexdigit())
    {
        return true;
    }
    if token.len() < MIN_HASH_LEN {
        return false;
    }
    let dollars = token.bytes().filter(|&c| c == b'$').count();
    let algorithm = token.split('$').next().unwrap_or("");
    let named = algorithm.len() >= 2
        && algorithm
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-');
    (named && dollars >= 2) || (algorithm.is_empty() && dollars >= 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PBKDF2: &str =
        "pbkdf2_sha256$1000000$c2FsdHNhbHQ$Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4MTIzNA=";

    #[test]
    fn django_and_postgres_hashes_are_redacted() {
        let argon = "argon2$argon2id$v=19$m=102400,t=2,p=8$c2FsdA$aGFzaGhhc2hoYXNo";
        let bcrypt = "bcrypt_sha256$$2b$12$abcdefghijklmnopqrstuu5GHjWnUFlZzpdWWcLrUmj3Sol1bJ0Gq";
        let scram = "SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy";
        let md5 = "md5a3556571e93b0d20722ba62be61e8c2d";
        for h in [PBKDF2, argon, bcrypt, scram, md5] {
            let text = format!("Failing row contains (1, {h}, null, t, admin).");
            let r = hashes(&text);
            assert!(!r.contains(h), "{r}");
            assert_eq!(r, "Failing row contains (1, [redacted], null, t, admin).");
            // Quoted by record_out (argon2 has commas).
            let r = hashes(&format!("Failing row contains (1, \"{h}\", null)."));
            assert_eq!(r, "Failing row contains (1, \"[redacted]\", null).");
        }
    }

    #[test]
    fn ordinary_text_is_untouched() {
        for t in [
            "syntax error at or near \"$$\"",
            "column $1 of relation \"x\" does not exist",
            "DO $body$ BEGIN RAISE NOTICE 'x'; END $body$",
            "duplicate key value violates unique constraint \"auth_user_username_key\"",
            "price is $5, $10, $20 or $1000",
            "",
        ] {
            assert_eq!(hashes(t), t);
        }
    }

    #[test]
    fn sent_values_are_redacted_as_sent_and_as_quoted() {
        let sent = [
            Some("sécret\"value"),
            Some("adm"),
            None,
            Some("admin@example.com"),
        ];
        let mut e = DbError {
            severity: "ERROR".into(),
            code: "23514".into(),
            message: "new row violates check constraint".into(),
            detail: Some(
                "Failing row contains (1, \"sécret\"\"value\", adm, admin@example.com).".into(),
            ),
            hint: Some("sécret\"value".into()),
        };
        db_error(&mut e, &sent);
        assert_eq!(
            e.detail.as_deref(),
            Some("Failing row contains (1, \"[redacted]\", adm, [redacted]).")
        );
        assert_eq!(e.hint.as_deref(), Some("[redacted]"));
        assert_eq!(e.message, "new row violates check constraint");
    }
}
