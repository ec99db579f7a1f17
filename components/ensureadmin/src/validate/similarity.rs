//! Django's `UserAttributeSimilarityValidator` (max_similarity 0.7), ported exactly:
//! the lower-cased password is compared with each attribute value, lower-cased, and with every
//! part of it split on `\W+` (so `admin@example.com` gives `admin`, `example`, `com` and the whole
//! address), using `difflib.SequenceMatcher.quick_ratio` (multiset intersection of characters);
//! parts far shorter than the password are skipped as Django's `exceeds_maximum_length_ratio`
//! does.

/// Django's default.
pub const MAX_SIMILARITY: f64 = 0.7;

/// Python's `\w` for `str` patterns: alphanumeric or underscore. (Rust's `is_alphanumeric`
/// follows the same Unicode categories closely enough for this check.)
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// `re.split(r"\W+", value)`: empty strings at the edges are kept, as Python does.
fn split_non_word(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_sep = false;
    let mut sep_start = 0;
    for (i, c) in value.char_indices() {
        if is_word(c) {
            if in_sep {
                parts.push(&value[start..sep_start]);
                start = i;
                in_sep = false;
            }
        } else if !in_sep {
            in_sep = true;
            sep_start = i;
        }
    }
    if in_sep {
        parts.push(&value[start..sep_start]);
        parts.push("");
    } else {
        parts.push(&value[start..]);
    }
    parts
}

/// `SequenceMatcher(a=a, b=b).quick_ratio()`.
pub fn quick_ratio(a: &[char], b: &[char]) -> f64 {
    let mut avail: std::collections::HashMap<char, i64> = std::collections::HashMap::new();
    for &c in b {
        *avail.entry(c).or_insert(0) += 1;
    }
    let mut matches = 0usize;
    for c in a {
        if let Some(n) = avail.get_mut(c) {
            if *n > 0 {
                matches += 1;
            }
            *n -= 1;
        }
    }
    let length = a.len() + b.len();
    if length == 0 {
        1.0
    } else {
        2.0 * matches as f64 / length as f64
    }
}

/// Django's `exceeds_maximum_length_ratio`.
fn exceeds_maximum_length_ratio(pwd_len: usize, max_similarity: f64, value_len: usize) -> bool {
    let length_bound_similarity = max_similarity / 2.0 * pwd_len as f64;
    pwd_len >= 10 * value_len && (value_len as f64) < length_bound_similarity
}

/// Whether `password` is too similar to `value` (an attribute of the user).
pub fn too_similar(password: &str, value: &str) -> bool {
    if value.is_empty() {
        return false; // Django: `if not value: continue`
    }
    let pw: Vec<char> = password.to_lowercase().chars().collect();
    let value_lower = value.to_lowercase();
    let mut parts = split_non_word(&value_lower);
    parts.push(&value_lower);
    parts.iter().any(|part| {
        let part: Vec<char> = part.chars().collect();
        !exceeds_maximum_length_ratio(pw.len(), MAX_SIMILARITY, part.len())
            && quick_ratio(&pw, &part) >= MAX_SIMILARITY
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    #[test]
    fn split_like_python() {
        // re.split(r"\W+", ...) results from CPython.
        assert_eq!(
            split_non_word("admin@example.com"),
            ["admin", "example", "com"]
        );
        assert_eq!(split_non_word("@a..b@"), ["", "a", "b", ""]);
        assert_eq!(split_non_word("under_score-x"), ["under_score", "x"]);
        assert_eq!(split_non_word(""), [""]);
    }

    #[test]
    fn quick_ratio_like_difflib() {
        // difflib.SequenceMatcher(a=..., b=...).quick_ratio()
        assert_eq!(quick_ratio(&chars("abcd"), &chars("bcde")), 0.75);
        assert_eq!(quick_ratio(&chars("aaab"), &chars("ab")), 2.0 * 2.0 / 6.0);
        assert_eq!(quick_ratio(&chars(""), &chars("")), 1.0);
        assert_eq!(
            quick_ratio(&chars("A"), &chars(&"A".repeat(10))),
            2.0 / 11.0
        );
    }

    #[test]
    fn django_cases() {
        assert!(too_similar("admin1234", "admin"));
        assert!(too_similar("Example.Com!", "root@example.com"));
        assert!(too_similar("superadmin", "superadmin@corp.io"));
        assert!(!too_similar("correct-horse-battery", "admin"));
        assert!(!too_similar("anything", ""));
    }
}
