//! Django's `BaseUserManager.normalize_email`: strip surrounding whitespace and lower-case the
//! domain part (after the last `@`). An address without `@` is returned unchanged (not even
//! stripped), exactly as Django does. No email (None) becomes the empty string, as
//! `create_superuser(email=None)` stores it.

use crate::validate::py_isspace;

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
    fn like_django() {
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
    }
}
