//! The identity fields as Django normalises them before storing a user:
//! `AbstractBaseUser.normalize_username` (NFKC) and `BaseUserManager.normalize_email` (the domain
//! part lower-cased). Done here, in the component, not by the server: PostgreSQL's `normalize()`
//! needs a UTF-8 database and version 13, and Django itself never asks the database.

use crate::validate::py_isspace;
use unicode_normalization::UnicodeNormalization;

/// Django's `AbstractBaseUser.normalize_username`: `unicodedata.normalize("NFKC", username)`,
/// so `jose\u{301}` (decomposed) and `josé` are one user and full-width `ａｄｍｉｎ` is `admin`.
///
/// The tables are `unicode-normalization`'s (Unicode 16+), which postgres-protocol's SASLprep
/// links into every component already. Python 3.11 ships Unicode 14: the results differ only for
/// characters assigned after 14.0 that have a compatibility mapping (Unicode's stability policy
/// fixes the normal form of every character once assigned).
pub fn normalize_username(username: &str) -> String {
    if username.is_ascii() {
        // ASCII is NFKC already.
        return username.to_string();
    }
    username.nfkc().collect()
}

/// Django's `BaseUserManager.normalize_email`: strip surrounding whitespace and lower-case the
/// domain part (after the last `@`) with Python's `str.lower()` (full Unicode lower-casing, so an
/// IDN domain such as `BÜCHER.example` becomes `bücher.example`; no IDNA/punycode conversion, as
/// in Django). An address without `@` is returned unchanged (not even stripped), exactly as
/// Django does. No email (None) becomes the empty string, as `create_superuser(email=None)`
/// stores it.
pub fn normalize_email(email: Option<&str>) -> String {
    let email = email.unwrap_or("");
    match email.trim_matches(py_isspace).rsplit_once('@') {
        Some((name, domain)) => format!("{name}@{}", domain.to_lowercase()),
        None => email.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_like_django() {
        // BaseUserManager.normalize_email outputs from Django 5.2.
        assert_eq!(normalize_email(None), "");
        assert_eq!(normalize_email(Some("")), "");
        assert_eq!(
            normalize_email(Some("  Ops.Team@Example.COM \n")),
            "Ops.Team@example.com"
        );
        assert_eq!(normalize_email(Some("a@b@EXAMPLE.org")), "a@b@example.org");
        assert_eq!(normalize_email(Some(" no-at-sign ")), " no-at-sign ");
        assert_eq!(normalize_email(Some("x@ÜBER.DE")), "x@über.de");
        // Python's str.lower(): final sigma, dotted capital I, the local part untouched.
        assert_eq!(normalize_email(Some("Ünï@ΟΔΟΣ.ΕΛ")), "Ünï@οδοσ.ελ");
        assert_eq!(normalize_email(Some("x@ΟΔΟΣ")), "x@οδος");
        assert_eq!(
            normalize_email(Some("a@İSTANBUL.tr")),
            "a@i\u{307}stanbul.tr"
        );
    }

    #[test]
    fn username_like_django() {
        // unicodedata.normalize("NFKC", ...) outputs from Python 3.11.
        let cases = [
            ("admin", "admin"),
            ("josé", "jos\u{e9}"),
            ("jose\u{301}", "jos\u{e9}"),
            ("ｊｏｓｅ", "jose"),
            ("\u{fb01}ona", "fiona"),
            ("Ⅻ", "XII"),
            ("ｱﾄﾞﾐﾝ", "アドミン"),
            ("Å", "\u{c5}"),
            ("ﬀ①", "ff1"),
            ("ǅ", "D\u{17e}"),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_username(raw), want, "{raw:?}");
        }
    }
}
