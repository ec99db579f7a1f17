//! Django's default password validators (the `AUTH_PASSWORD_VALIDATORS` that `startproject`
//! writes), in Django's order, with Django's messages and error codes:
//! `UserAttributeSimilarityValidator` (username, email; max similarity 0.7),
//! `MinimumLengthValidator` (8), `CommonPasswordValidator` (Django 5.2's list) and
//! `NumericPasswordValidator`. Every failed rule is reported, as Django's `validate_password` does.

pub mod common;
mod digits;
pub mod similarity;

/// Django's `MinimumLengthValidator` default.
pub const MIN_LENGTH: usize = 8;

/// One failed rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Django's `ValidationError.code`, e.g. `password_too_short`.
    pub code: &'static str,
    /// Django's message.
    pub message: String,
}

/// What the similarity check compares with: `(verbose name, value)`, e.g.
/// `("username", "admin")`, `("email address", "admin@example.com")`.
pub type Attributes<'a> = [(&'a str, &'a str)];

/// Python's `str.isspace()` (used by `str.strip()`): Unicode White_Space plus U+001C..U+001F.
pub fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// All failed rules, in Django's order (empty = valid).
pub fn validate(password: &str, attributes: &Attributes) -> Vec<Failure> {
    let mut out = Vec::new();
    if let Some((name, _)) = attributes
        .iter()
        .find(|(_, value)| similarity::too_similar(password, value))
    {
        out.push(Failure {
            code: "password_too_similar",
            message: format!("The password is too similar to the {name}."),
        });
    }
    if password.chars().count() < MIN_LENGTH {
        out.push(Failure {
            code: "password_too_short",
            message: format!(
                "This password is too short. It must contain at least {MIN_LENGTH} characters."
            ),
        });
    }
    if common::contains(password.to_lowercase().trim_matches(py_isspace)) {
        out.push(Failure {
            code: "password_too_common",
            message: "This password is too common.".into(),
        });
    }
    if !password.is_empty() && password.chars().all(digits::is_digit) {
        out.push(Failure {
            code: "password_entirely_numeric",
            message: "This password is entirely numeric.".into(),
        });
    }
    out
}

/// The failures as one line: `This password is too short. ... (password_too_short); ...`.
pub fn describe(failures: &[Failure]) -> String {
    failures
        .iter()
        .map(|f| format!("{} ({})", f.message.trim_end_matches('.'), f.code))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(pw: &str, attrs: &Attributes) -> Vec<&'static str> {
        validate(pw, attrs).into_iter().map(|f| f.code).collect()
    }

    #[test]
    fn each_rule() {
        let attrs = [("username", "admin"), ("email address", "ops@example.com")];
        assert!(codes("K8s-init-Pa55phrase!", &attrs).is_empty());
        assert_eq!(codes("Xy7$k", &attrs), ["password_too_short"]);
        assert_eq!(
            codes("1234567890123", &attrs),
            ["password_too_common", "password_entirely_numeric"]
        );
        assert_eq!(
            codes("80235711131719", &attrs),
            ["password_entirely_numeric"]
        );
        assert_eq!(codes("  PassWord  ", &attrs), ["password_too_common"]);
        assert_eq!(codes("admin123!", &attrs), ["password_too_similar"]);
        assert_eq!(codes("ops@example.org", &attrs), ["password_too_similar"]);
        assert_eq!(
            codes("123", &attrs),
            [
                "password_too_short",
                "password_too_common",
                "password_entirely_numeric"
            ]
        );
        // Python's isdigit: superscripts and Arabic-Indic digits count, fractions do not.
        assert_eq!(codes("²³¹٠١٢٣٤", &[]), ["password_entirely_numeric"]);
        assert!(codes("½½½½½½½½", &[]).is_empty());
    }

    #[test]
    fn one_line_with_every_rule() {
        let line = describe(&validate("admin", &[("username", "admin")]));
        assert_eq!(
            line,
            "The password is too similar to the username (password_too_similar); \
             This password is too short. It must contain at least 8 characters (password_too_short); \
             This password is too common (password_too_common)"
        );
    }
}
