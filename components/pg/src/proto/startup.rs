//! The startup and authentication exchange, as a state machine.
//!
//! Supported: trust, cleartext password, MD5, SCRAM-SHA-256 and, over TLS, SCRAM-SHA-256-PLUS
//! with `tls-server-end-point` channel binding ([`Binding`], libpq's `channel_binding`). A server
//! that asks for GSSAPI, SSPI or Kerberos gets a clear "unsupported" error. A server that claims success in the middle of a
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

/// libpq's `channel_binding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChannelBindingMode {
    /// Never bind (SCRAM-SHA-256 announcing "client does not support binding").
    Disable,
    /// Bind when TLS is in use and the server offers SCRAM-SHA-256-PLUS (libpq's default).
    #[default]
    Prefer,
    /// Refuse to authenticate without channel binding: no password is sent to a server that
    /// asks for cleartext/MD5, and a server that skips SCRAM (trust, cert) is refused.
    Require,
}

impl ChannelBindingMode {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "disable" => Some(Self::Disable),
            "prefer" => Some(Self::Prefer),
            "require" => Some(Self::Require),
            _ => None,
        }
    }
}

/// What channel binding can use on this connection.
#[derive(Debug, Clone, Default)]
pub struct Binding {
    pub mode: ChannelBindingMode,
    /// The session is encrypted with TLS.
    pub tls: bool,
    /// `tls-server-end-point` data of the server certificate (see RFC 5929), when TLS is in use
    /// and the certificate's signature algorithm defines a hash.
    pub end_point: Option<Vec<u8>>,
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
    binding: Binding,
    /// SCRAM-SHA-256-PLUS was used (the server proved it sees the same TLS certificate).
    pub bound: bool,
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
            binding: Binding::default(),
            bound: false,
            method: "trust",
            server_version: None,
        }
    }

    /// Set what channel binding may use (default: `prefer`, no TLS).
    pub fn set_binding(&mut self, binding: Binding) {
        self.binding = binding;
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
                State::Authenticating
                    if self.binding.mode == ChannelBindingMode::Require && !self.bound =>
                {
                    Err(ProtoError::Auth(format!(
                        "channel_binding=require, but the server authenticated us without channel binding (method {})",
                        self.method
                    )))
                }
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
                self.refuse_unbound()?;
                frontend::password_message(self.password()?, out).map_err(proto)?;
                Ok(Progress::Continue)
            }
            Message::AuthenticationMd5Password(body) => {
                self.expect_authenticating()?;
                self.method = "md5";
                self.refuse_unbound()?;
                let hash = md5_hash(self.user.as_bytes(), self.password()?, body.salt());
                frontend::password_message(hash.as_bytes(), out).map_err(proto)?;
                Ok(Progress::Continue)
            }
            Message::AuthenticationSasl(body) => {
                self.expect_authenticating()?;
                self.method = "scram-sha-256";
                let mut mechs = body.mechanisms();
                let (mut plain, mut plus) = (false, false);
                while let Some(m) = mechs.next().map_err(proto)? {
                    plain |= m == sasl::SCRAM_SHA_256;
                    plus |= m == sasl::SCRAM_SHA_256_PLUS;
                }
                let (mechanism, cb) = self.choose_sasl(plain, plus)?;
                let scram = sasl::ScramSha256::new(self.password()?, cb);
                frontend::sasl_initial_response(mechanism, scram.message(), out)
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

    /// The SASL mechanism and channel-binding flag to use (RFC 5802 gs2 header: `p` binds,
    /// `y` = client could bind but the server did not offer it, `n` = client does not bind).
    fn choose_sasl(
        &mut self,
        plain: bool,
        plus: bool,
    ) -> Result<(&'static str, sasl::ChannelBinding), ProtoError> {
        let b = &self.binding;
        let want = b.mode != ChannelBindingMode::Disable && b.tls;
        if want && plus {
            if let Some(ep) = &b.end_point {
                self.method = "scram-sha-256-plus";
                self.bound = true;
                return Ok((
                    sasl::SCRAM_SHA_256_PLUS,
                    sasl::ChannelBinding::tls_server_end_point(ep.clone()),
                ));
            }
            if b.mode == ChannelBindingMode::Require {
                return Err(ProtoError::Auth(
                    "channel_binding=require, but the server certificate's signature algorithm defines no tls-server-end-point hash".into(),
                ));
            }
            // Cannot bind to this certificate: say "n" (not "y", which the server would take
            // for a downgrade attack since it offered PLUS).
            if plain {
                return Ok((sasl::SCRAM_SHA_256, sasl::ChannelBinding::unsupported()));
            }
        }
        if b.mode == ChannelBindingMode::Require {
            return Err(ProtoError::Auth(if !b.tls {
                "channel_binding=require, but the connection is not encrypted (channel binding needs TLS: set sslmode=require or stronger)".into()
            } else {
                "channel_binding=require, but the server does not offer SCRAM-SHA-256-PLUS".into()
            }));
        }
        if !plain {
            return Err(ProtoError::Auth(
                "server offers no SASL mechanism djinit supports (needs SCRAM-SHA-256)".into(),
            ));
        }
        let cb = if want {
            sasl::ChannelBinding::unrequested()
        } else {
            sasl::ChannelBinding::unsupported()
        };
        Ok((sasl::SCRAM_SHA_256, cb))
    }

    /// With `channel_binding=require`, never answer a cleartext/MD5 password request: the
    /// server has not been authenticated and would learn the password (or its hash).
    fn refuse_unbound(&self) -> Result<(), ProtoError> {
        if self.binding.mode == ChannelBindingMode::Require {
            return Err(ProtoError::Auth(format!(
                "channel_binding=require, but the server asks for {} authentication, which has no channel binding (nothing was sent)",
                self.method
            )));
        }
        Ok(())
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

    fn bound(mode: ChannelBindingMode, tls: bool, ep: bool) -> Binding {
        Binding {
            mode,
            tls,
            end_point: ep.then(|| vec![9; 32]),
        }
    }

    fn first_message(binding: Binding, mechs: &[u8]) -> Result<(Vec<u8>, bool), ProtoError> {
        let mut out = BytesMut::new();
        let mut s = Startup::new(&PARAMS, Some(b"pw"), &mut out);
        s.set_binding(binding);
        out.clear();
        s.handle(auth(10, mechs), &mut out)?;
        Ok((out.to_vec(), s.bound))
    }

    #[test]
    fn channel_binding_choice() {
        use ChannelBindingMode::*;
        let both = b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0";
        let plain = b"SCRAM-SHA-256\0\0";
        let text = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
        // TLS, offered, prefer: PLUS with p=tls-server-end-point.
        let (m, b) = first_message(bound(Prefer, true, true), both).unwrap();
        assert!(
            b && text(&m).contains("SCRAM-SHA-256-PLUS\0"),
            "{}",
            text(&m)
        );
        assert!(text(&m).contains("p=tls-server-end-point,,n=,r="));
        // TLS, not offered: "y" (we could have bound: lets the server detect a downgrade).
        let (m, b) = first_message(bound(Prefer, true, true), plain).unwrap();
        assert!(!b && text(&m).contains("y,,n=,r="));
        // No TLS: "n".
        let (m, _) = first_message(bound(Prefer, false, false), both).unwrap();
        assert!(text(&m).contains("n,,n=,r=") && !text(&m).contains("PLUS"));
        // disable over TLS: plain SCRAM, "n".
        let (m, _) = first_message(bound(Disable, true, true), both).unwrap();
        assert!(text(&m).contains("n,,n=,r=") && !text(&m).contains("PLUS"));
        // A certificate without a usable hash: "n" even though PLUS is offered.
        let (m, _) = first_message(bound(Prefer, true, false), both).unwrap();
        assert!(text(&m).contains("n,,n=,r="));
        // require: refused without TLS, without PLUS, without a usable hash.
        for (b, mechs) in [
            (bound(Require, false, false), &both[..]),
            (bound(Require, true, true), &plain[..]),
            (bound(Require, true, false), &both[..]),
        ] {
            assert!(matches!(first_message(b, mechs), Err(ProtoError::Auth(_))));
        }
        let (_, b) = first_message(bound(Require, true, true), both).unwrap();
        assert!(b);
    }

    #[test]
    fn channel_binding_require_refuses_unbound_methods() {
        for code in [0u32, 3, 5] {
            let mut out = BytesMut::new();
            let mut s = Startup::new(&PARAMS, Some(b"pw"), &mut out);
            s.set_binding(bound(ChannelBindingMode::Require, true, true));
            out.clear();
            let extra: &[u8] = if code == 5 { &[1, 2, 3, 4] } else { &[] };
            let e = s.handle(auth(code, extra), &mut out).unwrap_err();
            assert!(
                matches!(&e, ProtoError::Auth(m) if m.contains("channel_binding=require")),
                "{e:?}"
            );
            assert!(out.is_empty(), "nothing (no password) may be sent");
        }
    }
}
