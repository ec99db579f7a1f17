//! The startup and authentication exchange, as a state machine.
//!
//! Supported: trust, cleartext password, MD5, SCRAM-SHA-256. A server that asks for GSSAPI, SSPI
//! or Kerberos gets a clear "unsupported" error. A server that claims success in the middle of a
//! SCRAM exchange, or whose final SCRAM signature does not verify, is refused: it has not proven
//! that it knows the password.

use super::{db_error, Message, ProtoError};
use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::{md5_hash, sasl};
use postgres_protocol::message::frontend;

/// The highest SCRAM iteration count accepted from a server (PostgreSQL's default is 4096); a
/// larger one would let a hostile server burn our CPU.
pub const MAX_SCRAM_ITERATIONS: u32 = 1_000_000;

/// What the startup message carries.
#[derive(Debug, Clone)]
pub struct StartupParams<'a> {
    pub user: &'a str,
    pub database: &'a str,
    pub application_name: Option<&'a str>,
    pub options: Option<&'a str>,
}

/// Progress after a message.
#[derive(Debug, PartialEq, Eq)]
pub enum Progress {
    /// Send what was written to `out` (possibly nothing) and read more.
    Continue,
    /// ReadyForQuery arrived: the session can run queries.
    Ready,
}

enum State {
    Authenticating,
    Scram(Box<sasl::ScramSha256>),
    ScramFinal(Box<sasl::ScramSha256>),
    Authenticated,
}

/// The exchange from StartupMessage to the first ReadyForQuery.
pub struct Startup<'a> {
    user: &'a str,
    password: Option<&'a [u8]>,
    state: State,
    /// The authentication method the server chose, for messages.
    pub method: &'static str,
    /// The server's `server_version` parameter, once reported.
    pub server_version: Option<String>,
}

impl<'a> Startup<'a> {
    /// Write the StartupMessage to `out`.
    pub fn new(params: &StartupParams<'a>, password: Option<&'a [u8]>, out: &mut BytesMut) -> Self {
        let mut p: Vec<(&str, &str)> = vec![
            ("user", params.user),
            ("database", params.database),
            ("client_encoding", "UTF8"),
            ("DateStyle", "ISO"),
        ];
        if let Some(a) = params.application_name {
            p.push(("application_name", a));
        }
        if let Some(o) = params.options {
            p.push(("options", o));
        }
        // Parameters are plain strings without NUL (checked by the encoder).
        frontend::startup_message(p.iter().copied(), out).expect("startup parameters contain NUL");
        Startup {
            user: params.user,
            password,
            state: State::Authenticating,
            method: "trust",
            server_version: None,
        }
    }

    /// Handle one server message, writing any reply to `out`.
    pub fn handle(&mut self, msg: Message, out: &mut BytesMut) -> Result<Progress, ProtoError> {
        match msg {
            Message::ErrorResponse(body) => Err(ProtoError::Server(db_error(body.fields())?)),
            Message::NoticeResponse(_) | Message::BackendKeyData(_) => Ok(Progress::Continue),
            Message::ParameterStatus(body) => {
                if body.name().ok() == Some("server_version") {
                    self.server_version = body.value().ok().map(str::to_owned);
                }
                Ok(Progress::Continue)
            }
            Message::ReadyForQuery(_) => match self.state {
                State::Authenticated => Ok(Progress::Ready),
                _ => Err(ProtoError::Protocol("ready for query before authentication".into())),
            },
            Message::AuthenticationOk => match std::mem::replace(&mut self.state, State::Authenticated) {
                State::Authenticating => Ok(Progress::Continue),
                State::Scram(_) | State::ScramFinal(_) => Err(ProtoError::Auth(
                    "server reported success without completing SCRAM (it has not proven it knows the password)"
                        .into(),
                )),
                State::Authenticated => Err(ProtoError::Protocol("authenticated twice".into())),
            },
            Message::AuthenticationCleartextPassword => {
                self.expect_authenticating()?;
                self.method = "password";
                frontend::password_message(self.password()?, out).map_err(proto)?;
                Ok(Progress::Continue)
            }
            Message::AuthenticationMd5Password(body) => {
                self.expect_authenticating()?;
                self.method = "md5";
                let hash = md5_hash(self.user.as_bytes(), self.password()?, body.salt());
                frontend::password_message(hash.as_bytes(), out).map_err(proto)?;
                Ok(Progress::Continue)
            }
            Message::AuthenticationSasl(body) => {
                self.expect_authenticating()?;
                self.method = "scram-sha-256";
                let mut mechs = body.mechanisms();
                let mut found = false;
                while let Some(m) = mechs.next().map_err(proto)? {
                    found |= m == sasl::SCRAM_SHA_256;
                }
                if !found {
                    return Err(ProtoError::Auth(
                        "server offers no SASL mechanism djinit supports (needs SCRAM-SHA-256)".into(),
                    ));
                }
                let scram = sasl::ScramSha256::new(self.password()?, sasl::ChannelBinding::unsupported());
                frontend::sasl_initial_response(sasl::SCRAM_SHA_256, scram.message(), out)
                    .map_err(proto)?;
                self.state = State::Scram(Box::new(scram));
                Ok(Progress::Continue)
            }
            Message::AuthenticationSaslContinue(body) => {
                let State::Scram(mut scram) = std::mem::replace(&mut self.state, State::Authenticating) else {
                    return Err(ProtoError::Protocol("unexpected SASL continue".into()));
                };
                check_iterations(body.data())?;
                scram
                    .update(body.data())
                    .map_err(|e| ProtoError::Auth(format!("invalid SCRAM server message: {e}")))?;
                frontend::sasl_response(scram.message(), out).map_err(proto)?;
                self.state = State::ScramFinal(scram);
                Ok(Progress::Continue)
            }
            Message::AuthenticationSaslFinal(body) => {
                let State::ScramFinal(mut scram) = std::mem::replace(&mut self.state, State::Authenticating) else {
                    return Err(ProtoError::Protocol("unexpected SASL final message".into()));
                };
                scram.finish(body.data()).map_err(|e| {
                    ProtoError::Auth(format!("the server's SCRAM signature does not verify ({e})"))
                })?;
                // AuthenticationOk follows; the exchange is complete.
                Ok(Progress::Continue)
            }
            Message::AuthenticationGss
            | Message::AuthenticationGssContinue(_)
            | Message::AuthenticationKerberosV5
            | Message::AuthenticationSspi
            | Message::AuthenticationScmCredential => Err(ProtoError::Auth(
                "server requires GSSAPI/SSPI/Kerberos authentication, which djinit does not support".into(),
            )),
            _ => Err(ProtoError::Protocol("unexpected message during startup".into())),
        }
    }

    fn expect_authenticating(&self) -> Result<(), ProtoError> {
        match self.state {
            State::Authenticating => Ok(()),
            _ => Err(ProtoError::Protocol(
                "unexpected authentication request".into(),
            )),
        }
    }

    fn password(&self) -> Result<&'a [u8], ProtoError> {
        self.password.ok_or_else(|| {
            ProtoError::Auth(format!(
                "server asks a password for user {:?} but none is configured (set it in the URL or PGPASSWORD)",
                self.user
            ))
        })
    }
}

/// Refuse absurd SCRAM iteration counts before spending CPU on them.
fn check_iterations(server_first: &[u8]) -> Result<(), ProtoError> {
    let s = std::str::from_utf8(server_first)
        .map_err(|_| ProtoError::Auth("SCRAM server message is not UTF-8".into()))?;
    if let Some(i) = s.split(',').find_map(|a| a.strip_prefix("i=")) {
        match i.parse::<u32>() {
            Ok(n) if (1..=MAX_SCRAM_ITERATIONS).contains(&n) => {}
            _ => {
                return Err(ProtoError::Auth(format!(
                    "SCRAM iteration count {i:?} refused (allowed 1..={MAX_SCRAM_ITERATIONS})"
                )))
            }
        }
    }
    Ok(())
}

fn proto(e: std::io::Error) -> ProtoError {
    ProtoError::Protocol(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::framing::Framer;

    fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn parse(bytes: &[u8]) -> Message {
        let mut f = Framer::new();
        f.feed(bytes);
        f.next_message().unwrap().unwrap()
    }

    fn auth(code: u32, extra: &[u8]) -> Message {
        let mut b = code.to_be_bytes().to_vec();
        b.extend_from_slice(extra);
        parse(&msg(b'R', &b))
    }

    fn ready() -> Message {
        parse(&msg(b'Z', b"I"))
    }

    const PARAMS: StartupParams<'static> = StartupParams {
        user: "alice",
        database: "app",
        application_name: Some("djinit test"),
        options: None,
    };

    #[test]
    fn startup_message_carries_parameters() {
        let mut out = BytesMut::new();
        Startup::new(&PARAMS, None, &mut out);
        let s = String::from_utf8_lossy(&out);
        assert!(s.contains("user\0alice\0database\0app\0client_encoding\0UTF8"));
        assert!(s.contains("application_name\0djinit test\0"));
        assert_eq!(&out[4..8], &196608u32.to_be_bytes()); // protocol 3.0
    }

    #[test]
    fn trust() {
        let mut out = BytesMut::new();
        let mut s = Startup::new(&PARAMS, None, &mut out);
        out.clear();
        assert_eq!(
            s.handle(auth(0, &[]), &mut out).unwrap(),
            Progress::Continue
        );
        let ps = parse(&msg(b'S', b"server_version\x0015.18\0"));
        s.handle(ps, &mut out).unwrap();
        assert_eq!(s.handle(ready(), &mut out).unwrap(), Progress::Ready);
        assert_eq!(s.server_version.as_deref(), Some("15.18"));
        assert!(out.is_empty());
    }

    #[test]
    fn md5_answer_matches_postgres_formula() {
        let mut out = BytesMut::new();
        let mut s = Startup::new(&PARAMS, Some(b"secret"), &mut out);
        out.clear();
        s.handle(auth(5, &[1, 2, 3, 4]), &mut out).unwrap();
        // 'p' message with "md5" + md5(md5(password + user) + salt)
        let expected = md5_hash(b"alice", b"secret", [1, 2, 3, 4]);
        assert_eq!(out[0], b'p');
        assert_eq!(&out[5..out.len() - 1], expected.as_bytes());
        assert!(expected.starts_with("md5") && expected.len() == 35);
        assert_eq!(s.method, "md5");
    }

    #[test]
    fn cleartext_without_password_is_an_auth_error() {
        let mut out = BytesMut::new();
        let mut s = Startup::new(&PARAMS, None, &mut out);
        let e = s.handle(auth(3, &[]), &mut out).unwrap_err();
        assert!(matches!(e, ProtoError::Auth(m) if m.contains("none is configured")));
    }

    #[test]
    fn scram_first_message_and_early_ok_refused() {
        let mut out = BytesMut::new();
        let mut s = Startup::new(&PARAMS, Some(b"pw"), &mut out);
        out.clear();
        s.handle(auth(10, b"SCRAM-SHA-256\0\0"), &mut out).unwrap();
        assert_eq!(out[0], b'p');
        assert!(String::from_utf8_lossy(&out).contains("SCRAM-SHA-256\0"));
        assert!(String::from_utf8_lossy(&out).contains("n,,n=,r="));
        // A server that skips the proof must not be believed.
        let e = s.handle(auth(0, &[]), &mut out).unwrap_err();
        assert!(matches!(e, ProtoError::Auth(m) if m.contains("without completing SCRAM")));
    }

    #[test]
    fn scram_refuses_huge_iteration_counts_and_bad_nonces() {
        let mut out = BytesMut::new();
        let mut s = Startup::new(&PARAMS, Some(b"pw"), &mut out);
        s.handle(auth(10, b"SCRAM-SHA-256\0\0"), &mut out).unwrap();
        let e = s
            .handle(auth(11, b"r=abc,s=c2FsdA==,i=4000000000"), &mut out)
            .unwrap_err();
        assert!(matches!(e, ProtoError::Auth(m) if m.contains("iteration")));

        let mut s = Startup::new(&PARAMS, Some(b"pw"), &mut out);
        s.handle(auth(10, b"SCRAM-SHA-256\0\0"), &mut out).unwrap();
        // The server nonce must extend ours; "abc" does not.
        let e = s
            .handle(auth(11, b"r=abc,s=c2FsdA==,i=4096"), &mut out)
            .unwrap_err();
        assert!(matches!(e, ProtoError::Auth(_)), "{e:?}");
    }

    #[test]
    fn unsupported_methods_and_sequences() {
        let mut out = BytesMut::new();
        let mut s = Startup::new(&PARAMS, Some(b"pw"), &mut out);
        assert!(matches!(
            s.handle(auth(7, &[]), &mut out),
            Err(ProtoError::Auth(_))
        ));
        let mut s = Startup::new(&PARAMS, Some(b"pw"), &mut out);
        assert!(matches!(
            s.handle(ready(), &mut out),
            Err(ProtoError::Protocol(_))
        ));
        let mut s = Startup::new(&PARAMS, Some(b"pw"), &mut out);
        let e = s
            .handle(auth(10, b"SCRAM-SHA-256-PLUS\0\0"), &mut out)
            .unwrap_err();
        assert!(matches!(e, ProtoError::Auth(_)));
        let mut s = Startup::new(&PARAMS, Some(b"pw"), &mut out);
        let err = parse(&msg(
            b'E',
            b"SFATAL\0C28P01\0Mpassword authentication failed for user \"alice\"\0\0",
        ));
        match s.handle(err, &mut out).unwrap_err() {
            ProtoError::Server(e) => assert_eq!(e.code, "28P01"),
            other => panic!("{other:?}"),
        }
    }
}
