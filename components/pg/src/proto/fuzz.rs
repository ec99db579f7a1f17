//! Fuzzing the sans-IO core with proptest (runs in `cargo test`, bounded: 300 cases per property,
//! about a second): arbitrary server byte streams, cut into arbitrary chunks, through the
//! [`Framer`] into the startup state machine and then the query collector. Nothing may panic,
//! and the framer never buffers more than one maximal message plus one chunk.
//!
//! Two generators: raw bytes (mostly rejected at the first byte: tests the framer's checks), and
//! well-framed messages with valid backend tags and random bodies (reaches every message parser,
//! the authentication exchange and result collection).

use super::framing::{Framer, MAX_MESSAGE_LEN};
use super::query::{Collector, Step};
use super::startup::{Binding, ChannelBindingMode, Progress, Startup, StartupParams};
use bytes::BytesMut;
use proptest::prelude::*;

const TAGS: &[u8] = b"R123CdcGHWDIEVnNAtSKsZTv";

fn drive(chunks: &[Vec<u8>], binding: Binding) {
    let params = StartupParams {
        user: "fuzz",
        database: "fuzz",
        application_name: None,
        options: None,
    };
    let mut out = BytesMut::new();
    let mut startup = Startup::new(&params, Some(b"pw"), &mut out);
    startup.set_binding(binding);
    let mut framer = Framer::new();
    let mut ready = false;
    let mut collector = Collector::new();
    for chunk in chunks {
        framer.feed(chunk);
        assert!(framer.pending() <= MAX_MESSAGE_LEN + 5 + chunk.len());
        loop {
            let msg = match framer.next_message() {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(_) => return,
            };
            out.clear();
            if !ready {
                match startup.handle(msg, &mut out) {
                    Ok(Progress::Ready) => ready = true,
                    Ok(Progress::Continue) => {}
                    Err(_) => return,
                }
            } else {
                match collector.handle(msg, &mut out) {
                    Ok(Step::Done(_)) => collector = Collector::new(),
                    Ok(Step::More | Step::Notice(_)) => {}
                    Err(_) => return,
                }
            }
        }
    }
}

/// A message with a valid tag and a random body (length always right).
fn framed() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(TAGS),
        prop::collection::vec(any::<u8>(), 0..64),
        prop::option::of(0u32..12),
    )
        .prop_map(|(tag, mut body, auth)| {
            // Authentication requests: start the body with a real auth code most of the time.
            if tag == b'R' {
                if let Some(code) = auth {
                    let mut b = code.to_be_bytes().to_vec();
                    b.append(&mut body);
                    body = b;
                }
            }
            let mut v = vec![tag];
            v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
            v.extend(body);
            v
        })
}

/// Re-cut a byte stream into chunks at arbitrary points.
fn rechunk(stream: Vec<u8>, cuts: Vec<usize>) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.into_iter().map(|c| c % (stream.len() + 1)).collect();
    points.sort_unstable();
    let mut chunks = Vec::new();
    let mut last = 0;
    for p in points {
        chunks.push(stream[last..p.max(last)].to_vec());
        last = p.max(last);
    }
    chunks.push(stream[last..].to_vec());
    chunks
}

/// 300 cases per property (about a second), or `PROPTEST_CASES` for a longer run, e.g.
/// `PROPTEST_CASES=200000 cargo test -p djinit-pg --release fuzz`.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300)
}

fn binding(n: u8) -> Binding {
    Binding {
        mode: match n % 3 {
            0 => ChannelBindingMode::Disable,
            1 => ChannelBindingMode::Prefer,
            _ => ChannelBindingMode::Require,
        },
        tls: n.is_multiple_of(2),
        end_point: n.is_multiple_of(4).then(|| vec![7; 32]),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn raw_bytes_never_panic(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..8),
        b in any::<u8>(),
    ) {
        drive(&chunks, binding(b));
    }

    #[test]
    fn framed_messages_never_panic(
        msgs in prop::collection::vec(framed(), 0..24),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
        b in any::<u8>(),
    ) {
        // An AuthenticationOk first lets most streams reach the collector.
        let mut stream = vec![b'R', 0, 0, 0, 8, 0, 0, 0, 0];
        if b.is_multiple_of(2) {
            stream.clear();
        }
        for m in msgs {
            stream.extend(m);
        }
        drive(&rechunk(stream, cuts), binding(b));
    }

    #[test]
    fn huge_lengths_are_refused_before_buffering(tag in prop::sample::select(TAGS), len in (MAX_MESSAGE_LEN as u32 + 1)..=u32::MAX) {
        let mut f = Framer::new();
        let mut b = vec![tag];
        b.extend_from_slice(&len.to_be_bytes());
        f.feed(&b);
        prop_assert!(f.next_message().is_err());
    }
}
