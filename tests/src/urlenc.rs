//! Percent-encoding for the parts of a `postgres://` URL (RFC 3986 unreserved characters pass),
//! by the `percent-encoding` crate (the one `url` and djinit-pg use).

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Everything but RFC 3986's unreserved `A-Z a-z 0-9 - . _ ~`.
const NOT_UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes everything except `A-Z a-z 0-9 - . _ ~` (UTF-8 bytes of other characters).
pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, NOT_UNRESERVED).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes_url_specials() {
        assert_eq!(super::encode("a/b:c@d#e?f%g"), "a%2Fb%3Ac%40d%23e%3Ff%25g");
        assert_eq!(super::encode("safe-._~9"), "safe-._~9");
        assert_eq!(super::encode("é "), "%C3%A9%20");
    }
}
