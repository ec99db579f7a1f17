//! `tls-server-end-point` channel binding data (RFC 5929 §4.1): the hash of the server's
//! certificate, with the hash function of the certificate's signature algorithm (SHA-256 for
//! MD5/SHA-1/SHA-256 signatures). This is what PostgreSQL's SCRAM-SHA-256-PLUS binds to.
//!
//! Only the outer DER structure is read (Certificate → signatureAlgorithm → OID), bounds-checked;
//! malformed input is `None`, never a panic.

use sha2::{Digest, Sha256, Sha384, Sha512};

/// The binding data for `cert` (DER), or `None` if its signature algorithm has no defined hash
/// (e.g. Ed25519, RSA-PSS; PostgreSQL cannot bind those either).
pub(crate) fn tls_server_end_point(cert: &[u8]) -> Option<Vec<u8>> {
    let oid = signature_algorithm(cert)?;
    Some(match hash_for(oid)? {
        Hash::Sha256 => Sha256::digest(cert).to_vec(),
        Hash::Sha384 => Sha384::digest(cert).to_vec(),
        Hash::Sha512 => Sha512::digest(cert).to_vec(),
    })
}

enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

/// DER contents of the OIDs (without tag and length).
fn hash_for(oid: &[u8]) -> Option<Hash> {
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01]; // 1.2.840.113549.1.1
    const ECDSA_SHA2: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03]; // 1.2.840.10045.4.3
    const ECDSA_SHA1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01]; // 1.2.840.10045.4.1
    if oid == ECDSA_SHA1 {
        return Some(Hash::Sha256);
    }
    if let Some(&[n]) = oid.strip_prefix(RSA) {
        return match n {
            4 | 5 | 11 => Some(Hash::Sha256), // md5, sha1, sha256 WithRSAEncryption
            12 => Some(Hash::Sha384),
            13 => Some(Hash::Sha512),
            _ => None,
        };
    }
    if let Some(&[n]) = oid.strip_prefix(ECDSA_SHA2) {
        return match n {
            2 => Some(Hash::Sha256),
            3 => Some(Hash::Sha384),
            4 => Some(Hash::Sha512),
            _ => None,
        };
    }
    None
}

/// Certificate ::= SEQUENCE { tbsCertificate SEQUENCE, signatureAlgorithm SEQUENCE { OID, .. }, .. }
fn signature_algorithm(cert: &[u8]) -> Option<&[u8]> {
    let (tag, outer, _) = tlv(cert)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, _tbs, rest) = tlv(outer)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, alg, _) = tlv(rest)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, oid, _) = tlv(alg)?;
    (tag == 0x06).then_some(oid)
}

/// One DER element: (tag, contents, rest). Single-byte tags, definite lengths up to 4 bytes.
fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, b) = b.split_first()?;
    let (&first, mut b) = b.split_first()?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || b.len() < n {
            return None;
        }
        let len = b[..n]
            .iter()
            .fold(0usize, |acc, &x| (acc << 8) | x as usize);
        b = &b[n..];
        len
    };
    if b.len() < len {
        return None;
    }
    Some((tag, &b[..len], &b[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        if content.len() < 128 {
            v.push(content.len() as u8);
        } else {
            v.push(0x82);
            v.extend_from_slice(&(content.len() as u16).to_be_bytes());
        }
        v.extend_from_slice(content);
        v
    }

    fn cert_with(oid: &[u8]) -> Vec<u8> {
        let tbs = der(0x30, &[0u8; 200]);
        let alg = der(0x30, &der(0x06, oid));
        let sig = der(0x03, &[0, 1, 2, 3]);
        der(0x30, &[tbs, alg, sig].concat())
    }

    #[test]
    fn hash_follows_the_signature_algorithm() {
        let sha256_rsa = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 11];
        let c = cert_with(&sha256_rsa);
        assert_eq!(
            tls_server_end_point(&c).unwrap(),
            Sha256::digest(&c).to_vec()
        );
        let ecdsa384 = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 3];
        let c = cert_with(&ecdsa384);
        assert_eq!(tls_server_end_point(&c).unwrap().len(), 48);
        let ed25519 = [0x2b, 0x65, 0x70];
        assert!(tls_server_end_point(&cert_with(&ed25519)).is_none());
    }

    #[test]
    fn malformed_is_none() {
        let c = cert_with(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 11]);
        for n in 0..c.len() {
            let _ = tls_server_end_point(&c[..n]);
        }
        assert!(tls_server_end_point(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_none());
        assert!(tls_server_end_point(&[]).is_none());
    }
}
