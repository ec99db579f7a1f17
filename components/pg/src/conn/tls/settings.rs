//! What the connection settings ask of TLS, checked and loaded before connecting.
//!
//! Certificate checks by sslmode (libpq's table):
//!
//! | sslmode | TLS | server certificate checked |
//! |---|---|---|
//! | `disable` | never | — |
//! | `allow` | only if the server refuses plain text | as `require` |
//! | `prefer` (default) | if the server offers it, else plain | as `require` |
//! | `require` | always | nothing, unless `sslrootcert` is set: then the chain (like `verify-ca`) |
//! | `verify-ca` | always | chain to `sslrootcert` |
//! | `verify-full` | always | chain to `sslrootcert` and host name |
//!
//! `sslrootcert` is a PEM file (one or more CA certificates) or `system` (the public web roots
//! bundled in the component, `webpki-roots`; as in libpq 16, only with `verify-full`, which
//! `system` also makes the default). `verify-ca`/`verify-full` without `sslrootcert` is a
//! configuration error (libpq would look for `~/.postgresql/root.crt`; a component has no home).
//! Deviation from libpq, failing closed: an `sslrootcert` file that cannot be read is an error in
//! every mode (libpq silently skips verification in `require`/`prefer` when the file is missing).
//!
//! `sslcert` + `sslkey`: a PEM client certificate (chain) and its key (PKCS#8, PKCS#1 or SEC1),
//! sent when the server asks for one (`hostssl ... cert`, or `clientcert=verify-*`). One without
//! the other is a configuration error.

use super::{provider, verify};
use crate::config::{Config, SslMode, SslNegotiation};
use crate::error::Result;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;
use std::sync::Arc;

/// ALPN protocol name PostgreSQL 17 registers (sent always, as libpq 17 does; required by the
/// server for `sslnegotiation=direct`).
pub(crate) const ALPN: &[u8] = b"postgresql";

/// What the server certificate must satisfy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Encryption without authentication (`require`/`prefer`/`allow` without `sslrootcert`).
    Nothing,
    /// The chain must lead to a trusted root; any host name (`verify-ca`).
    Chain,
    /// Chain and host name (`verify-full`).
    Full,
}

/// TLS settings for one connection attempt.
pub(crate) struct TlsSettings {
    pub mode: SslMode,
    /// `sslnegotiation=direct`: TLS at once (with ALPN), no SSLRequest.
    pub direct: bool,
    pub check: Check,
    pub client: Arc<rustls::ClientConfig>,
    /// Where the trusted roots come from, for messages (`sslrootcert /path`, `system roots`).
    pub roots: Option<String>,
}

impl TlsSettings {
    /// `None` for `sslmode=disable`; otherwise the loaded settings, or a configuration error
    /// naming the setting.
    pub fn from_config(cfg: &Config) -> Result<Option<TlsSettings>> {
        let mode = cfg.sslmode;
        let direct = cfg.sslnegotiation == SslNegotiation::Direct;
        if mode == SslMode::Disable {
            return Ok(None);
        }
        if direct && matches!(mode, SslMode::Allow | SslMode::Prefer) {
            return Err(cfg.error(
                "sslnegotiation",
                "a weak sslmode (allow, prefer) may not be used with sslnegotiation=direct (use require, verify-ca or verify-full)",
            ));
        }
        let rootcert = cfg.sslrootcert.as_deref().filter(|s| !s.is_empty());
        let check = match (mode, rootcert) {
            (SslMode::VerifyFull, _) => Check::Full,
            (SslMode::VerifyCa, _) => Check::Chain,
            (_, Some(_)) => Check::Chain,
            (_, None) => Check::Nothing,
        };
        let provider = provider();
        let (roots, roots_label) = match rootcert {
            None if check != Check::Nothing => {
                return Err(cfg.error(
                    "sslmode",
                    "verify-ca and verify-full need sslrootcert (a PEM file with the CA certificate, or \"system\" for the public roots)",
                ))
            }
            None => (None, None),
            Some("system") => {
                if mode != SslMode::VerifyFull {
                    return Err(cfg.error(
                        "sslmode",
                        "a weak sslmode may not be used with sslrootcert=system (use verify-full)",
                    ));
                }
                let store = RootCertStore {
                    roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
                };
                (Some(store), Some("the bundled public roots (sslrootcert=system)".to_string()))
            }
            Some(path) => (
                Some(load_roots(cfg, path)?),
                Some(format!("sslrootcert {path}")),
            ),
        };
        let verifier: Arc<dyn rustls::client::danger::ServerCertVerifier> = match roots {
            None => Arc::new(verify::NoCheck::new(provider.clone())),
            Some(store) => {
                let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
                    Arc::new(store),
                    provider.clone(),
                )
                .build()
                .map_err(|_| {
                    cfg.error(
                        "sslrootcert",
                        "the CA certificates cannot be used to verify servers",
                    )
                })?;
                if check == Check::Full {
                    webpki
                } else {
                    Arc::new(verify::ChainOnly::new(webpki))
                }
            }
        };
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|_| cfg.error("sslmode", "TLS setup failed: no usable TLS version"))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let sslcert = cfg.sslcert.as_deref().filter(|s| !s.is_empty());
        let sslkey = cfg.sslkey.as_deref().filter(|s| !s.is_empty());
        let mut client = match (sslcert, sslkey) {
            (None, None) => builder.with_no_client_auth(),
            (Some(c), Some(k)) => {
                let chain = load_certs(cfg, c, "sslcert")?;
                let key = load_key(cfg, k)?;
                builder.with_client_auth_cert(chain, key).map_err(|_| {
                    cfg.error(
                        "sslkey",
                        "the key does not fit the certificate in sslcert (or its type is not supported)",
                    )
                })?
            }
            (Some(_), None) => {
                return Err(cfg.error(
                    "sslcert",
                    "set, but sslkey is not (give both for a client certificate)",
                ))
            }
            (None, Some(_)) => {
                return Err(cfg.error(
                    "sslkey",
                    "set, but sslcert is not (give both for a client certificate)",
                ))
            }
        };
        client.alpn_protocols = vec![ALPN.to_vec()];
        Ok(Some(TlsSettings {
            mode,
            direct,
            check,
            client: Arc::new(client),
            roots: roots_label,
        }))
    }
}

/// The file named by `setting`. Errors name the setting, not the file: a file name is text
/// from the settings like any other (see `config::error`).
fn read(cfg: &Config, path: &str, setting: &'static str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        cfg.error(
            setting,
            match e.kind() {
                std::io::ErrorKind::NotFound => "cannot read the file: no such file (under the djinit runner the file must be readable on the host: it is mounted read-only)",
                std::io::ErrorKind::PermissionDenied => "cannot read the file: permission denied (under the djinit runner the file must be readable on the host: it is mounted read-only)",
                _ => "cannot read the file",
            },
        )
    })
}

fn load_certs(
    cfg: &Config,
    path: &str,
    setting: &'static str,
) -> Result<Vec<CertificateDer<'static>>> {
    let pem = read(cfg, path, setting)?;
    let mut certs = Vec::new();
    for c in CertificateDer::pem_slice_iter(&pem) {
        certs.push(c.map_err(|_| cfg.error(setting, "the file is not valid PEM"))?);
    }
    if certs.is_empty() {
        return Err(cfg.error(
            setting,
            "the file holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(certs)
}

fn load_roots(cfg: &Config, path: &str) -> Result<RootCertStore> {
    let certs = load_certs(cfg, path, "sslrootcert")?;
    let mut store = RootCertStore::empty();
    let (added, _) = store.add_parsable_certificates(certs);
    if added == 0 {
        return Err(cfg.error(
            "sslrootcert",
            "none of the file's certificates can be used as a trust anchor",
        ));
    }
    Ok(store)
}

fn load_key(cfg: &Config, path: &str) -> Result<PrivateKeyDer<'static>> {
    let pem = read(cfg, path, "sslkey")?;
    // Never echo key material: only say what is wrong.
    PrivateKeyDer::from_pem_slice(&pem).map_err(|_| {
        cfg.error(
            "sslkey",
            "the file holds no usable private key (PEM: PKCS#8, RSA or EC; not encrypted)",
        )
    })
}
