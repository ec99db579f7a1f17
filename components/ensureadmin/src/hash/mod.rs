//! Django password hashes (`django.contrib.auth.hashers`): making `pbkdf2_sha256` hashes,
//! verifying them in constant time, and recognising every format Django's hashers write.
//!
//! Security posture: nothing here formats a password or a hash into a message; errors name the
//! algorithm and what is wrong with the shape only. The CPU one hash may cost is bounded twice:
//! by [`MAX_ITERATIONS`] and by a deadline checked inside the PBKDF2 loop ([`pbkdf2`]).

pub mod pbkdf2;
pub mod salt;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use std::fmt;
use std::time::Instant;

pub use pbkdf2::Expired;

/// Django 5.2's `PBKDF2PasswordHasher.iterations` (the current LTS default).
pub const DEFAULT_ITERATIONS: u32 = 1_000_000;

/// [`MAX_ITERATIONS`] as a multiple of Django 5.2's default.
///
/// Why 10: Django raises its default by 20-25 % per feature release (5.2: 1,000,000; 6.0:
/// 1,200,000; 6.1: 1,500,000; 6.2, April 2027: 1,800,000), so 10 × covers the releases of about
/// four more years after 6.2, and projects that raise the count themselves a few fold, while one
/// hash costs at most about 6 s in the component (0.63 µs per iteration, see [`pbkdf2`]), well
/// inside the default `--timeout` of 30 s. A stored hash above it is never computed
/// (4,000,000,000 iterations would be an hour of CPU, and as long for every Django login with
/// it): `--update` rewrites it ([`Verdict::TooManyIterations`]).
pub const ITERATIONS_FACTOR: u32 = 10;

/// The most PBKDF2 iterations ensureadmin computes: for new hashes (`--iterations`) and when
/// verifying a stored one. 10,000,000.
pub const MAX_ITERATIONS: u32 = DEFAULT_ITERATIONS * ITERATIONS_FACTOR;

/// The hashers Django ships (`django.contrib.auth.hashers`), by their `algorithm` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Pbkdf2Sha256,
    Pbkdf2Sha1,
    Argon2,
    BcryptSha256,
    Bcrypt,
    Scrypt,
    Md5,
    UnsaltedMd5,
    UnsaltedSha1,
}

impl Algorithm {
    /// Django's `algorithm` attribute.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Pbkdf2Sha256 => "pbkdf2_sha256",
            Algorithm::Pbkdf2Sha1 => "pbkdf2_sha1",
            Algorithm::Argon2 => "argon2",
            Algorithm::BcryptSha256 => "bcrypt_sha256",
            Algorithm::Bcrypt => "bcrypt",
            Algorithm::Scrypt => "scrypt",
            Algorithm::Md5 => "md5",
            Algorithm::UnsaltedMd5 => "unsalted_md5",
            Algorithm::UnsaltedSha1 => "unsalted_sha1",
        }
    }

    /// Whether Django's default `PASSWORD_HASHERS` setting includes it (others need the project
    /// to list the hasher, or Django rejects every login with it).
    pub fn in_default_hashers(self) -> bool {
        matches!(
            self,
            Algorithm::Pbkdf2Sha256
                | Algorithm::Pbkdf2Sha1
                | Algorithm::Argon2
                | Algorithm::BcryptSha256
                | Algorithm::Scrypt
        )
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a string is not a usable Django password hash. Never contains the string itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BadHash(pub String);

fn bad(msg: impl Into<String>) -> BadHash {
    BadHash(msg.into())
}

/// `pbkdf2_sha256$<iterations>$<salt>$<base64 hash>` for `password`, as Django's
/// `PBKDF2PasswordHasher.encode` writes it. Salts come from [`salt::generate`]. Gives up once
/// `deadline` has passed.
pub fn make(
    password: &str,
    salt: &str,
    iterations: u32,
    deadline: Option<Instant>,
) -> Result<String, Expired> {
    let dk = pbkdf2::pbkdf2_sha256(password.as_bytes(), salt.as_bytes(), iterations, deadline)?;
    Ok(format!(
        "pbkdf2_sha256${iterations}${salt}${}",
        STANDARD.encode(dk)
    ))
}

/// Strict standard base64 as Django's hashes hold it (Python's `b64encode`): `=` padding to a
/// multiple of 4 when `padded` (pbkdf2, scrypt), none otherwise (argon2's PHC strings); the
/// unused bits of the last character must be zero (the canonical encoding).
fn b64decode(s: &str, padded: bool) -> Option<Vec<u8>> {
    let engine = if padded { &STANDARD } else { &STANDARD_NO_PAD };
    engine.decode(s).ok()
}

/// The parts of a PBKDF2 hash (Django's `decode`: `split("$", 3)`).
struct Pbkdf2<'a> {
    /// Django reads any positive integer; a `u64` holds every count anyone could compute.
    iterations: u64,
    salt: &'a str,
}

fn parse_pbkdf2(rest: &str, digest_len: usize, alg: Algorithm) -> Result<Pbkdf2<'_>, BadHash> {
    let mut parts = rest.splitn(3, '$');
    let (Some(iter), Some(salt), Some(hash)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad(format!(
            "{alg} hashes have the form {alg}$<iterations>$<salt>$<hash>"
        )));
    };
    let iterations = positive(iter)
        .ok_or_else(|| bad(format!("{alg}: iterations must be a positive number")))?;
    if salt.is_empty() {
        return Err(bad(format!("{alg}: empty salt")));
    }
    match b64decode(hash, true) {
        Some(d) if d.len() == digest_len => Ok(Pbkdf2 { iterations, salt }),
        _ => Err(bad(format!(
            "{alg}: the hash part is not base64 of {digest_len} bytes"
        ))),
    }
}

fn positive(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|&n| n > 0)
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Check that `encoded` is a well-formed hash of a hasher Django ships, the way Django's
/// `identify_hasher` and that hasher's `decode` read it. Returns the algorithm.
pub fn identify(encoded: &str) -> Result<Algorithm, BadHash> {
    if encoded.starts_with('!') {
        return Err(bad(
            "this is Django's unusable-password marker (\"!\" prefix); nobody could log in with it",
        ));
    }
    if encoded.is_empty() {
        return Err(bad("empty"));
    }
    if encoded.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad("contains whitespace or control characters"));
    }
    // Django's special cases first (identify_hasher).
    if encoded.len() == 32 && !encoded.contains('$') {
        return if lower_hex(encoded, 32) {
            Ok(Algorithm::UnsaltedMd5)
        } else {
            Err(bad("unsalted_md5: expected 32 lower-case hex digits"))
        };
    }
    if let Some(hex) = encoded.strip_prefix("md5$$") {
        return if lower_hex(hex, 32) {
            Ok(Algorithm::UnsaltedMd5)
        } else {
            Err(bad(
                "unsalted_md5: expected md5$$ and 32 lower-case hex digits",
            ))
        };
    }
    if let Some(hex) = encoded.strip_prefix("sha1$$") {
        return if lower_hex(hex, 40) {
            Ok(Algorithm::UnsaltedSha1)
        } else {
            Err(bad(
                "unsalted_sha1: expected sha1$$ and 40 lower-case hex digits",
            ))
        };
    }
    let Some((alg, rest)) = encoded.split_once('$') else {
        return Err(bad("no \"$\": not in Django's <algorithm>$... form"));
    };
    match alg {
        "pbkdf2_sha256" => parse_pbkdf2(rest, 32, Algorithm::Pbkdf2Sha256).map(|_| Algorithm::Pbkdf2Sha256),
        "pbkdf2_sha1" => parse_pbkdf2(rest, 20, Algorithm::Pbkdf2Sha1).map(|_| Algorithm::Pbkdf2Sha1),
        "argon2" => check_argon2(rest).map(|_| Algorithm::Argon2),
        "bcrypt_sha256" => check_bcrypt(rest, Algorithm::BcryptSha256),
        "bcrypt" => check_bcrypt(rest, Algorithm::Bcrypt),
        "scrypt" => check_scrypt(rest).map(|_| Algorithm::Scrypt),
        "md5" => match rest.split_once('$') {
            Some((salt, hex)) if !salt.is_empty() && lower_hex(hex, 32) => Ok(Algorithm::Md5),
            _ => Err(bad("md5 hashes have the form md5$<salt>$<32 lower-case hex digits>")),
        },
        _ => Err(bad("unknown algorithm (Django ships pbkdf2_sha256, pbkdf2_sha1, argon2, bcrypt_sha256, bcrypt, scrypt, md5)")),
    }
}

/// `argon2$argon2id$v=19$m=102400,t=2,p=8$<salt>$<hash>` (the `v=` part is absent in hashes of
/// argon2 1.0, which Django still reads).
fn check_argon2(rest: &str) -> Result<(), BadHash> {
    let form =
        || bad("argon2 hashes have the form argon2$argon2id$v=19$m=<n>,t=<n>,p=<n>$<salt>$<hash>");
    let parts: Vec<&str> = rest.split('$').collect();
    let (variety, params, salt, hash) = match parts.as_slice() {
        [variety, version, params, salt, hash] => {
            if !version.strip_prefix("v=").is_some_and(digits) {
                return Err(form());
            }
            (*variety, *params, *salt, *hash)
        }
        [variety, params, salt, hash] => (*variety, *params, *salt, *hash),
        _ => return Err(form()),
    };
    if !matches!(variety, "argon2id" | "argon2i" | "argon2d") {
        return Err(form());
    }
    let mut keys = vec![];
    for kv in params.split(',') {
        match kv.split_once('=') {
            Some((k, v)) if digits(v) => keys.push(k),
            _ => return Err(form()),
        }
    }
    if keys != ["m", "t", "p"] {
        return Err(form());
    }
    for part in [salt, hash] {
        if b64decode(part, false).is_none_or(|d| d.is_empty()) {
            return Err(bad("argon2: salt and hash must be unpadded base64"));
        }
    }
    Ok(())
}

/// `bcrypt_sha256$$2b$12$<53 characters of bcrypt's base64>` (and `bcrypt$...`).
fn check_bcrypt(rest: &str, alg: Algorithm) -> Result<Algorithm, BadHash> {
    let ok = (|| {
        let r = rest.strip_prefix("$2")?;
        let r = r.strip_prefix(['a', 'b', 'y'])?.strip_prefix('$')?;
        let (cost, body) = r.split_once('$')?;
        let c: u8 = cost.parse().ok().filter(|_| cost.len() == 2)?;
        ((4..=31).contains(&c)
            && body.len() == 53
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/'))
        .then_some(())
    })();
    ok.map(|_| alg).ok_or_else(|| {
        bad(format!(
            "{alg} hashes have the form {alg}$$2b$<cost>$<53 characters>"
        ))
    })
}

/// `scrypt$<n>$<salt>$<r>$<p>$<base64 hash>`.
fn check_scrypt(rest: &str) -> Result<(), BadHash> {
    let parts: Vec<&str> = rest.split('$').collect();
    match parts.as_slice() {
        [n, salt, r, p, hash]
            if positive(n).is_some()
                && !salt.is_empty()
                && positive(r).is_some()
                && positive(p).is_some()
                && b64decode(hash, true).is_some_and(|d| !d.is_empty()) =>
        {
            Ok(())
        }
        _ => Err(bad(
            "scrypt hashes have the form scrypt$<n>$<salt>$<r>$<p>$<base64 hash>",
        )),
    }
}

/// The result of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The stored hash is of this password.
    Match,
    /// It is not (or the stored value is not a usable hash at all).
    Mismatch,
    /// The stored hash uses an algorithm this component cannot compute; treat as "rewrite".
    Unverifiable(Algorithm),
    /// A `pbkdf2_sha256` hash with more than [`MAX_ITERATIONS`]: not computed; treat as
    /// "rewrite" (Django would spend as long on every login with it).
    TooManyIterations(u64),
}

/// Check `password` against the stored `encoded` hash, as Django's `check_password` does for
/// `pbkdf2_sha256`: recompute with the stored salt and iterations and compare the whole encoded
/// strings in constant time. At most [`MAX_ITERATIONS`], and only until `deadline`.
pub fn verify(
    password: &str,
    encoded: &str,
    deadline: Option<Instant>,
) -> Result<Verdict, Expired> {
    let alg = match identify(encoded) {
        Ok(a) => a,
        Err(_) => return Ok(Verdict::Mismatch),
    };
    if alg != Algorithm::Pbkdf2Sha256 {
        return Ok(Verdict::Unverifiable(alg));
    }
    let rest = &encoded["pbkdf2_sha256$".len()..];
    let Ok(p) = parse_pbkdf2(rest, 32, alg) else {
        return Ok(Verdict::Mismatch);
    };
    let iterations = match u32::try_from(p.iterations) {
        Ok(n) if n <= MAX_ITERATIONS => n,
        _ => return Ok(Verdict::TooManyIterations(p.iterations)),
    };
    let made = make(password, p.salt, iterations, deadline)?;
    Ok(if constant_time_eq(made.as_bytes(), encoded.as_bytes()) {
        Verdict::Match
    } else {
        Verdict::Mismatch
    })
}

/// Equality whose time depends only on the lengths, not on where the inputs differ
/// (Django's `constant_time_compare`).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests;
