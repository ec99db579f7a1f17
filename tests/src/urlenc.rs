//! Percent-encoding for the parts of a `postgres://` URL (RFC 3986 unreserved characters pass).

/// Percent-encodes everything except `A-Z a-z 0-9 - . _ ~`.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes_url_specials() {
        assert_eq!(super::encode("a/b:c@d#e?f%g"), "a%2Fb%3Ac%40d%23e%3Ff%25g");
        assert_eq!(super::encode("safe-._~9"), "safe-._~9");
    }
}
