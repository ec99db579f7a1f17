//! TLS for throwaway clusters: a test PKI made with the `openssl` CLI (a CA, server certificates
//! with the right name, a wrong name, expired, and one from a CA nobody trusts, a client
//! certificate) and [`Builder::ssl`] to start a cluster with `ssl = on`.
//!
//! ```no_run
//! use djinit_tests::tls::{Pki, ServerCert};
//! use djinit_tests::Cluster;
//! let pki = Pki::generate();
//! let pg = Cluster::builder().ssl(&pki, ServerCert::Good).start();
//! let url = format!("{}?sslmode=verify-full&sslrootcert={}", pg.url_for("postgres", djinit_tests::PASSWORD, "postgres").replace("127.0.0.1", "localhost"), pki.ca().display());
//! ```

use crate::cluster::Builder;
use crate::process::run;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Which certificate the server presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerCert {
    /// Signed by the CA, for `localhost` and `127.0.0.1`, valid now.
    Good,
    /// Signed by the CA, valid now, but only for `wrong.example`.
    WrongName,
    /// Signed by the CA, for `localhost` and `127.0.0.1`, expired in 2021.
    Expired,
    /// For `localhost` and `127.0.0.1`, valid now, but signed by another CA (not in `ca()`).
    OtherCa,
}

/// A throwaway PKI in a temp dir (removed on drop). Keys are EC P-256, certificates signed with
/// ECDSA-SHA256 (so channel binding hashes with SHA-256).
pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// Generate everything (~0.5 s of `openssl`).
    pub fn generate() -> Pki {
        let dir = tempfile::Builder::new()
            .prefix("djinit-pki-")
            .tempdir()
            .expect("temp dir for the PKI");
        let pki = Pki { dir };
        pki.make_ca("ca", "djinit test CA");
        pki.make_ca("other-ca", "djinit untrusted CA");
        let local = "DNS:localhost,IP:127.0.0.1";
        pki.make_leaf("server", "ca", "localhost", Some(local), None, false);
        pki.make_leaf(
            "wrong-name",
            "ca",
            "wrong.example",
            Some("DNS:wrong.example"),
            None,
            false,
        );
        pki.make_leaf(
            "expired",
            "ca",
            "localhost",
            Some(local),
            Some(("20200101000000Z", "20210101000000Z")),
            false,
        );
        pki.make_leaf("other", "other-ca", "localhost", Some(local), None, false);
        pki.make_leaf("client", "ca", "postgres", None, None, true);
        pki.make_leaf("client-other", "other-ca", "postgres", None, None, true);
        pki
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA certificate (PEM) the server certificates (but [`ServerCert::OtherCa`]) chain to.
    pub fn ca(&self) -> PathBuf {
        self.path("ca.crt")
    }

    /// The client certificate (CN `postgres`, signed by the CA) and its key (PKCS#8).
    pub fn client(&self) -> (PathBuf, PathBuf) {
        (self.path("client.crt"), self.path("client.key"))
    }

    /// A client certificate for `postgres` signed by the untrusted CA.
    pub fn client_untrusted(&self) -> (PathBuf, PathBuf) {
        (self.path("client-other.crt"), self.path("client-other.key"))
    }

    /// The PEM certificate and key of `which`.
    pub fn server(&self, which: ServerCert) -> (Vec<u8>, Vec<u8>) {
        let base = match which {
            ServerCert::Good => "server",
            ServerCert::WrongName => "wrong-name",
            ServerCert::Expired => "expired",
            ServerCert::OtherCa => "other",
        };
        let read = |f: String| std::fs::read(self.path(&f)).expect("PKI file");
        (read(format!("{base}.crt")), read(format!("{base}.key")))
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn openssl(&self, args: &[&str]) {
        let mut cmd = Command::new("openssl");
        cmd.current_dir(self.dir.path()).args(args);
        let out = run(cmd, Duration::from_secs(60));
        if out.code != Some(0) {
            panic!("openssl {} failed\n{}", args.join(" "), out.report());
        }
    }

    fn make_ca(&self, name: &str, cn: &str) {
        let (key, crt) = (format!("{name}.key"), format!("{name}.crt"));
        self.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &crt,
            "-days",
            "30",
            "-subj",
            &format!("/CN={cn}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        std::fs::write(self.path(&format!("{name}.index")), "").unwrap();
        std::fs::write(self.path(&format!("{name}.serial")), "1000\n").unwrap();
    }

    /// A leaf certificate signed by `ca` with `openssl ca` (which can set past dates).
    fn make_leaf(
        &self,
        name: &str,
        ca: &str,
        cn: &str,
        san: Option<&str>,
        dates: Option<(&str, &str)>,
        client: bool,
    ) {
        let (key, csr, crt) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.crt"),
        );
        self.openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={cn}"),
        ]);
        let mut ext =
            String::from("[v3]\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n");
        ext.push_str(if client {
            "extendedKeyUsage=clientAuth\n"
        } else {
            "extendedKeyUsage=serverAuth\n"
        });
        if let Some(san) = san {
            ext.push_str(&format!("subjectAltName={san}\n"));
        }
        let conf = format!(
            "[ca]\ndefault_ca=d\n[d]\ndatabase={ca}.index\nnew_certs_dir=.\nserial={ca}.serial\n\
             default_md=sha256\npolicy=p\nunique_subject=no\ndefault_days=30\n[p]\ncommonName=supplied\n{ext}"
        );
        let cnf = format!("{name}.cnf");
        std::fs::write(self.path(&cnf), conf).unwrap();
        let (start, end);
        let mut args: Vec<&str> = vec![
            "ca",
            "-batch",
            "-notext",
            "-config",
            &cnf,
            "-extensions",
            "v3",
            "-cert",
        ];
        let (ca_crt, ca_key) = (format!("{ca}.crt"), format!("{ca}.key"));
        args.extend([
            ca_crt.as_str(),
            "-keyfile",
            ca_key.as_str(),
            "-in",
            &csr,
            "-out",
            &crt,
        ]);
        if let Some((s, e)) = dates {
            (start, end) = (s.to_string(), e.to_string());
            args.extend(["-startdate", &start, "-enddate", &end]);
        }
        self.openssl(&args);
    }
}

impl Builder {
    /// Serve TLS (`ssl = on`) with certificate `which` of `pki`; the CA is the server's
    /// `ssl_ca_file`, so client certificates it signed are accepted (`hostssl ... cert`).
    /// Plain connections stay possible unless an `hba` line rejects them.
    pub fn ssl(self, pki: &Pki, which: ServerCert) -> Self {
        let (crt, key) = pki.server(which);
        let ca = std::fs::read(pki.ca()).expect("CA certificate");
        self.data_file("server.crt", crt)
            .data_file("server.key", key)
            .data_file("root.crt", ca)
            .conf("ssl = on")
            .conf("ssl_cert_file = 'server.crt'")
            .conf("ssl_key_file = 'server.key'")
            .conf("ssl_ca_file = 'root.crt'")
    }
}
