//! Vectors made by Django 5.2 (`make_password` / `PBKDF2PasswordHasher.encode`). The integration
//! tests cross-check live against Django as well.

use super::*;

const PW: &str = "Tr0ub4dor&3-ünï";
const DJANGO_1M: &str =
    "pbkdf2_sha256$1000000$aEv27rEIKLvytpQvRm2kgQ$16EJltqzC2hAEwyK4vCNU6tl1kNuDfW609XYPO8WWlM=";

fn make(password: &str, salt: &str, iterations: u32) -> String {
    super::make(password, salt, iterations, None).unwrap()
}

fn verify(password: &str, encoded: &str) -> Verdict {
    super::verify(password, encoded, None).unwrap()
}

#[test]
fn make_matches_django_encode() {
    assert_eq!(
        make(PW, "abcdefghijklmnopqrstuv", 1000),
        "pbkdf2_sha256$1000$abcdefghijklmnopqrstuv$7dlR6eFHkxVyT+hkTluYGNk8pZudpa8YYcsblfG/X80="
    );
    // A password longer than the HMAC block (hashed first), and an empty one.
    assert_eq!(
        make(&"x".repeat(100), "saltsaltsaltsaltsaltsa", 3),
        "pbkdf2_sha256$3$saltsaltsaltsaltsaltsa$ctcsYVUsYSLEVn5k4dNTbNLak+M0WAe/BCyr1rMEV3w="
    );
    assert_eq!(
        make("", "ab", 1),
        "pbkdf2_sha256$1$ab$9SIyf39Ef0M07uthWU5/H75rodHHMhyyIpE5ddjEUm0="
    );
}

// 1,000,000 iterations: seconds in an unoptimised build, so only with --release (`just test`).
#[test]
#[cfg_attr(debug_assertions, ignore)]
fn verifies_django_hash_at_default_iterations() {
    assert_eq!(verify(PW, DJANGO_1M), Verdict::Match);
    assert_eq!(verify("Tr0ub4dor&3-üni", DJANGO_1M), Verdict::Mismatch);
}

#[test]
fn salted_hash_round_trip() {
    let h = make(PW, &salt::generate().unwrap(), 2);
    let parts: Vec<&str> = h.split('$').collect();
    assert_eq!(parts[0], "pbkdf2_sha256");
    assert_eq!(parts[1], "2");
    assert_eq!(parts[2].len(), 22);
    assert_eq!(parts[3].len(), 44);
    assert_eq!(verify(PW, &h), Verdict::Match);
    assert_eq!(verify("other", &h), Verdict::Mismatch);
    assert_ne!(
        make(PW, &salt::generate().unwrap(), 2),
        h,
        "fresh salt each time"
    );
}

#[test]
fn identifies_every_django_format() {
    let ok = [
        (DJANGO_1M, Algorithm::Pbkdf2Sha256),
        ("pbkdf2_sha1$1000000$nUaOZicsRvkRNtOaYI1p0U$xoJXBHjmAzYZsCkxQLwOQGI6Mr0=", Algorithm::Pbkdf2Sha1),
        ("argon2$argon2id$v=19$m=102400,t=2,p=8$QkVTRFlmZENtdlpvb0ZzcHE1N3VVQQ$k8tZ0lUeuU6pAKIsWa7qaQDyklIcPU9NEN1bIjP/oqY", Algorithm::Argon2),
        ("argon2$argon2i$m=8,t=1,p=1$c29tZXNhbHQ$gwQOXSNhxiOxPOA0+PY10P9QFO4NAYysnqRt1GSQLE55m+2GYDt9FEjPMHhP2Cuf", Algorithm::Argon2),
        ("bcrypt_sha256$$2b$12$tTjhVj8U347WL5nFdIayIuSaibYDJvNeNKvvkxzwZJGD6lwFQ882G", Algorithm::BcryptSha256),
        ("bcrypt$$2b$12$1k7iepOQH1jAYmNh1.obDOxlAQ/rck2NLfFlbEsFc4k2WrV1TSSdG", Algorithm::Bcrypt),
        ("scrypt$16384$UqCkomattVMrk5o9Nlgy2m$8$5$d3SL0j5FSylZQZ5eFGzAr1B6tGn5bIBDl7jS/vzZDy2i7dsb7eCZS982Y9X9Lk1AJrUhvul1cIo3csSI/J+cLw==", Algorithm::Scrypt),
        ("md5$D4Lfvu4SqiIKNtUaxRgqyZ$0657748e6fece16912a771fd34c5bf7c", Algorithm::Md5),
        ("0657748e6fece16912a771fd34c5bf7c", Algorithm::UnsaltedMd5),
        ("md5$$0657748e6fece16912a771fd34c5bf7c", Algorithm::UnsaltedMd5),
        ("sha1$$0657748e6fece16912a771fd34c5bf7c01234567", Algorithm::UnsaltedSha1),
    ];
    for (h, alg) in ok {
        assert_eq!(identify(h), Ok(alg), "{h}");
    }
}

#[test]
fn rejects_malformed_and_unknown() {
    let bad = [
        "",
        "!uNuSaBlE1234567890123456789012345678901",
        "hunter2hunter2",
        "sha256$$abc",
        "pbkdf2_sha256$1000000$salt",
        "pbkdf2_sha256$0$salt$16EJltqzC2hAEwyK4vCNU6tl1kNuDfW609XYPO8WWlM=",
        "pbkdf2_sha256$-5$salt$16EJltqzC2hAEwyK4vCNU6tl1kNuDfW609XYPO8WWlM=",
        "pbkdf2_sha256$1000000$$16EJltqzC2hAEwyK4vCNU6tl1kNuDfW609XYPO8WWlM=",
        "pbkdf2_sha256$1000000$salt$16EJltqzC2hAEwyK4vCNU6tl1kNuDfW609XYPO8WWl=",
        "pbkdf2_sha256$1000000$salt$xoJXBHjmAzYZsCkxQLwOQGI6Mr0=", // sha1-sized digest
        "pbkdf2_sha256$1000000$aEv27rEIKLvytpQvRm2kgQ$16EJltqzC2hAEwyK4vCNU6tl1kNuDfW609XYPO8WWlM= ",
        "argon2$argon2x$v=19$m=1,t=1,p=1$c29tZXNhbHQ$aGFzaA",
        "argon2$argon2id$v=19$t=1,m=1,p=1$c29tZXNhbHQ$aGFzaA",
        "bcrypt_sha256$$2b$12$short",
        "bcrypt_sha256$2b$12$tTjhVj8U347WL5nFdIayIuSaibYDJvNeNKvvkxzwZJGD6lwFQ882G",
        "scrypt$16384$salt$8$5$",
        "md5$salt$0657748E6FECE16912A771FD34C5BF7C",
        "0657748e6fece16912a771fd34c5bf7z",
    ];
    for h in bad {
        let e = identify(h).expect_err(h);
        assert!(
            h.len() < 12 || !e.0.contains(h),
            "message must not echo the input"
        );
    }
}

#[test]
fn unverifiable_and_unusable_stored_values() {
    assert_eq!(
        verify(
            PW,
            "md5$D4Lfvu4SqiIKNtUaxRgqyZ$0657748e6fece16912a771fd34c5bf7c"
        ),
        Verdict::Unverifiable(Algorithm::Md5)
    );
    assert_eq!(verify(PW, "!abcdef"), Verdict::Mismatch);
    assert_eq!(verify(PW, ""), Verdict::Mismatch);
}

#[test]
fn constant_time_eq_is_equality() {
    assert!(constant_time_eq(b"abc", b"abc"));
    assert!(!constant_time_eq(b"abc", b"abd"));
    assert!(!constant_time_eq(b"abc", b"abcd"));
    assert!(constant_time_eq(b"", b""));
}

#[test]
fn stored_hashes_above_the_cap_are_not_computed() {
    // 4,000,000,000 iterations: an hour of CPU if computed. Answered at once.
    let start = std::time::Instant::now();
    for n in [u64::from(MAX_ITERATIONS) + 1, 4_000_000_000, 99_999_999_999] {
        let h = format!(
            "pbkdf2_sha256${n}$aEv27rEIKLvytpQvRm2kgQ$16EJltqzC2hAEwyK4vCNU6tl1kNuDfW609XYPO8WWlM="
        );
        assert_eq!(identify(&h), Ok(Algorithm::Pbkdf2Sha256), "Django reads it");
        assert_eq!(verify(PW, &h), Verdict::TooManyIterations(n));
    }
    assert!(start.elapsed() < std::time::Duration::from_secs(1));
    assert_eq!(MAX_ITERATIONS, 10 * DEFAULT_ITERATIONS);
}

#[test]
fn verifying_stops_at_the_deadline() {
    let h = format!("pbkdf2_sha256${MAX_ITERATIONS}$aEv27rEIKLvytpQvRm2kgQ$16EJltqzC2hAEwyK4vCNU6tl1kNuDfW609XYPO8WWlM=");
    let e = super::verify(PW, &h, Some(std::time::Instant::now())).unwrap_err();
    assert_eq!(e.iterations, MAX_ITERATIONS);
    assert_eq!(e.done, pbkdf2::CHECK_EVERY);
}

#[test]
fn base64_is_strict_like_django_hashes_need() {
    for n in 0..40u8 {
        let v: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
        let e = STANDARD.encode(&v);
        assert_eq!(b64decode(&e, true).as_deref(), Some(&v[..]));
        assert_eq!(
            b64decode(e.trim_end_matches('='), false).as_deref(),
            Some(&v[..])
        );
    }
    assert_eq!(STANDARD.encode(b"fo"), "Zm8=");
    assert_eq!(b64decode("Zg=", true), None); // padding short
    assert_eq!(b64decode("Zh==", true), None); // non-zero trailing bits
    assert_eq!(b64decode("Z$==", true), None);
    assert_eq!(b64decode("Zg==", false), None); // padding where none belongs
    assert_eq!(b64decode("Zg", true), None);
}
