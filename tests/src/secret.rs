//! The distinctive passwords the harness uses, and redaction for what the harness itself prints.

use crate::urlenc;

/// Password of the superuser `postgres` in every throwaway cluster.
///
/// Distinctive (so tests can assert it never appears in output) and full of characters that are
/// special in URLs (`/ : @ # ? % & = +`), so every URL the harness builds must percent-encode it.
pub const PASSWORD: &str = "Pw/with:special@chars-#?%&=+-q7Zx";

/// A wrong password, just as distinctive, for authentication-failure tests.
pub const WRONG_PASSWORD: &str = "Wr0ng/pass:word@oops-#?%-k3Yv";

/// `text` with [`PASSWORD`] and [`WRONG_PASSWORD`] (raw and percent-encoded) replaced by
/// `<PASSWORD>` / `<WRONG_PASSWORD>`. Used for everything the harness prints (command lines,
/// panic messages), so a failing test never echoes a password either.
pub fn redact(text: &str) -> String {
    let mut s = text.to_string();
    for (secret, label) in [
        (PASSWORD, "<PASSWORD>"),
        (WRONG_PASSWORD, "<WRONG_PASSWORD>"),
    ] {
        s = s.replace(secret, label);
        s = s.replace(&urlenc::encode(secret), label);
    }
    s
}

/// Where `secret` (raw or percent-encoded) occurs in `text`, if anywhere.
pub fn leaks(text: &str, secret: &str) -> bool {
    !secret.is_empty() && (text.contains(secret) || text.contains(&urlenc::encode(secret)))
}
