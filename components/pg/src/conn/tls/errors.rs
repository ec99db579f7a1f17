//! rustls errors as one line that says which step failed, never dumping a certificate.
//!
//! Kinds (see [`crate::ErrorKind`]):
//! - the server refused TLS while sslmode demands it → `Config` (exit 78): the settings of the
//!   two sides do not fit; waiting will not change that;
//! - the server's certificate failed verification (untrusted chain, host name mismatch, expired
//!   or not yet valid, bad signature) → `Auth` (exit 77): the server failed to prove its
//!   identity, which is an authentication failure like a wrong password; permanent, never retried
//!   (retrying against a man in the middle helps nobody);
//! - the server rejected our client certificate (TLS alert) → `Auth`;
//! - the peer does not speak TLS or breaks the protocol → `Protocol` (exit 76);
//! - no protocol version or cipher suite in common → `Config`.
//!
//! Resets and timeouts during the handshake stay transport errors (transient).

use crate::error::{Error, ErrorKind};
use rustls::{AlertDescription, CertificateError};

/// A short reason without nested debug output.
pub(crate) fn short(e: &rustls::Error) -> String {
    e.to_string()
}

/// The step names used in messages, each after "while" (as every `during` of [`Error`]).
pub(crate) const HANDSHAKE: &str = "doing the TLS handshake";
pub(crate) const VERIFYING: &str = "verifying the server certificate";
pub(crate) const NEGOTIATING: &str = "negotiating TLS (SSLRequest)";

/// Classify a handshake failure. `host` is the name we connected to, `roots` where the trusted
/// roots come from.
pub(crate) fn handshake(e: &rustls::Error, addr: &str, host: &str, roots: Option<&str>) -> Error {
    let tls = |step: &'static str, kind: ErrorKind, detail: String| Error::Tls {
        addr: addr.to_string(),
        step,
        detail,
        kind,
    };
    let roots = roots.unwrap_or("sslrootcert");
    match e {
        rustls::Error::InvalidCertificate(c) => {
            let detail = match c {
                CertificateError::UnknownIssuer => {
                    format!("untrusted certificate chain: it does not lead to a CA in {roots}")
                }
                CertificateError::NotValidForName => {
                    format!("host name mismatch: the certificate is not valid for {host:?}")
                }
                CertificateError::NotValidForNameContext { presented, .. } => {
                    let mut names: Vec<&str> =
                        presented.iter().take(4).map(String::as_str).collect();
                    if presented.len() > 4 {
                        names.push("...");
                    }
                    format!(
                        "host name mismatch: the certificate is for {} and not for {host:?} (sslmode=verify-full)",
                        if names.is_empty() {
                            "no DNS name or IP address".to_string()
                        } else {
                            names.join(", ")
                        }
                    )
                }
                CertificateError::Expired => "the server's certificate has expired".into(),
                CertificateError::ExpiredContext { time, not_after } => format!(
                    "the server's certificate has expired (valid until {}, now {})",
                    date(not_after.as_secs()),
                    date(time.as_secs())
                ),
                CertificateError::NotValidYet => "the server's certificate is not valid yet".into(),
                CertificateError::NotValidYetContext { time, not_before } => format!(
                    "the server's certificate is not valid yet (valid from {}, now {})",
                    date(not_before.as_secs()),
                    date(time.as_secs())
                ),
                CertificateError::BadEncoding => "the server's certificate is malformed".into(),
                CertificateError::BadSignature => {
                    "a signature in the server's certificate chain does not verify".into()
                }
                CertificateError::Revoked => "the server's certificate is revoked".into(),
                other => format!("the server's certificate was rejected: {other:?}"),
            };
            tls(VERIFYING, ErrorKind::Auth, detail)
        }
        rustls::Error::NoCertificatesPresented => tls(
            VERIFYING,
            ErrorKind::Auth,
            "the server presented no certificate".into(),
        ),
        rustls::Error::AlertReceived(a) => {
            let (kind, detail) = match a {
                AlertDescription::CertificateRequired => (
                    ErrorKind::Auth,
                    "the server requires a client certificate (set sslcert and sslkey)".to_string(),
                ),
                AlertDescription::UnknownCA
                | AlertDescription::BadCertificate
                | AlertDescription::CertificateUnknown
                | AlertDescription::UnsupportedCertificate
                | AlertDescription::CertificateExpired
                | AlertDescription::CertificateRevoked
                | AlertDescription::AccessDenied => (
                    ErrorKind::Auth,
                    format!("the server rejected our client certificate (TLS alert {a:?})"),
                ),
                AlertDescription::ProtocolVersion | AlertDescription::InsufficientSecurity => (
                    ErrorKind::Config,
                    format!("no TLS version or cipher in common with the server (TLS alert {a:?})"),
                ),
                AlertDescription::NoApplicationProtocol => (
                    ErrorKind::Protocol,
                    "the server refused ALPN \"postgresql\"".to_string(),
                ),
                _ => (
                    ErrorKind::Protocol,
                    format!("the server aborted the handshake (TLS alert {a:?})"),
                ),
            };
            tls(HANDSHAKE, kind, detail)
        }
        rustls::Error::PeerIncompatible(p) => tls(
            HANDSHAKE,
            ErrorKind::Config,
            format!("no TLS version or cipher in common with the server ({p:?})"),
        ),
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => tls(
            HANDSHAKE,
            ErrorKind::Protocol,
            "the server does not speak TLS here (it sent something that is not a TLS record)"
                .into(),
        ),
        other => tls(HANDSHAKE, ErrorKind::Protocol, short(other)),
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC` for a Unix time (civil-from-days, proleptic Gregorian).
fn date(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(date(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(date(1_763_900_000), "2025-11-23 12:13:20 UTC");
    }

    #[test]
    fn kinds() {
        let e = handshake(
            &rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
            "h:1",
            "h",
            Some("sslrootcert /ca.pem"),
        );
        assert_eq!(e.kind(), ErrorKind::Auth);
        assert!(e.to_string().contains("untrusted certificate chain"), "{e}");
        assert!(e.to_string().contains("/ca.pem"), "{e}");
        let e = handshake(
            &rustls::Error::AlertReceived(AlertDescription::CertificateRequired),
            "h:1",
            "h",
            None,
        );
        assert_eq!(e.kind(), ErrorKind::Auth);
        assert!(!e.is_transient());
    }
}
