//! Encoding queries and collecting their results.
//!
//! Results are in text format: every value is `Option<String>` (NULL = `None`). Parameters of
//! extended queries are sent as text with unspecified types, which the server infers from the
//! statement (`$1::int` casts where inference needs help).

use super::{db_error, Message, ProtoError};
use crate::error::DbError;
use bytes::BytesMut;
use fallible_iterator::FallibleIterator;
use postgres_protocol::message::frontend;
use postgres_protocol::IsNull;

/// One row, values in text format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    values: Vec<Option<String>>,
}

impl Row {
    pub fn new(values: Vec<Option<String>>) -> Self {
        Row { values }
    }
    /// Value of column `i` (`None` for NULL or out of range).
    pub fn get(&self, i: usize) -> Option<&str> {
        self.values.get(i).and_then(|v| v.as_deref())
    }
    pub fn len(&self) -> usize {
        self.values.len()
    }
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
    pub fn values(&self) -> &[Option<String>] {
        &self.values
    }
}

/// The result of one statement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Row>,
    /// Command tag, e.g. `INSERT 0 1`; empty for an empty query.
    pub tag: String,
}

impl QueryResult {
    /// Rows affected, from the command tag (`INSERT 0 3` → 3).
    pub fn affected(&self) -> u64 {
        self.tag
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

/// Encode a simple query (may hold several statements; no parameters).
pub fn encode_simple(sql: &str, out: &mut BytesMut) -> Result<(), ProtoError> {
    frontend::query(sql, out).map_err(|e| ProtoError::Protocol(format!("cannot encode query: {e}")))
}

/// Encode one statement with bound text parameters: Parse, Bind, Describe, Execute, Sync.
pub fn encode_extended(
    sql: &str,
    params: &[Option<&str>],
    out: &mut BytesMut,
) -> Result<(), ProtoError> {
    let enc = |e: std::io::Error| ProtoError::Protocol(format!("cannot encode query: {e}"));
    frontend::parse("", sql, std::iter::empty(), out).map_err(enc)?;
    frontend::bind(
        "",
        "",
        std::iter::empty::<i16>(),
        params.iter(),
        |v, buf| match v {
            Some(s) => {
                buf.extend_from_slice(s.as_bytes());
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        },
        std::iter::empty::<i16>(),
        out,
    )
    .map_err(|_| ProtoError::Protocol("cannot encode query parameters".into()))?;
    frontend::describe(b'P', "", out).map_err(enc)?;
    frontend::execute("", 0, out).map_err(enc)?;
    frontend::sync(out);
    Ok(())
}

/// Most result data kept for one exchange: 16 MiB of values (each value counted with a 32-byte
/// overhead), room for two of the largest messages ([`super::framing::MAX_MESSAGE_LEN`]).
/// djinit's largest reads are `django_migrations` (a few hundred KiB for thousands of
/// migrations); a server sending more is flooding, refused as a protocol error (exit 76)
/// instead of growing memory until the runner's limit stops the component (exit 71). With the
/// receive buffer that is at most 24 MiB, within the runner's default 64 MiB.
pub const MAX_RESULT_LEN: usize = 16 << 20;

/// Collects results until ReadyForQuery. Notices are handed out one by one as they come
/// ([`Step::Notice`]), never collected: a statement may raise millions.
#[derive(Debug, Default)]
pub struct Collector {
    results: Vec<QueryResult>,
    current: Option<QueryResult>,
    error: Option<DbError>,
    kept: usize,
}

/// What a finished query produced.
#[derive(Debug)]
pub struct Finished {
    pub results: Result<Vec<QueryResult>, DbError>,
    /// Transaction status from ReadyForQuery: `I` idle, `T` in a transaction, `E` failed one.
    pub status: u8,
}

/// What one message meant.
#[derive(Debug)]
pub enum Step {
    /// More messages to come.
    More,
    /// A NoticeResponse (or a warning): for the caller to show or drop.
    Notice(DbError),
    /// ReadyForQuery: the exchange is over.
    Done(Finished),
}

impl Collector {
    pub fn new() -> Self {
        Self::default()
    }

    /// Handle one message; [`Step::Done`] once the server is ready for the next query. The
    /// server's errors are kept until then, so the connection stays usable after a failed
    /// statement.
    pub fn handle(&mut self, msg: Message, out: &mut BytesMut) -> Result<Step, ProtoError> {
        match msg {
            Message::RowDescription(body) => {
                let mut cols = vec![];
                let mut fields = body.fields();
                while let Some(f) = fields.next().map_err(malformed)? {
                    cols.push(f.name().to_string());
                }
                self.current = Some(QueryResult {
                    columns: cols,
                    ..Default::default()
                });
            }
            Message::DataRow(body) => {
                let buf = body.buffer();
                let mut values = vec![];
                let mut ranges = body.ranges();
                while let Some(r) = ranges.next().map_err(malformed)? {
                    self.kept += 32 + r.as_ref().map_or(0, |r| r.len());
                    if self.kept > MAX_RESULT_LEN {
                        return Err(ProtoError::Protocol(format!(
                            "the result is larger than {} MiB (a flood, not an answer djinit asked for)",
                            MAX_RESULT_LEN >> 20
                        )));
                    }
                    values.push(r.map(|r| String::from_utf8_lossy(&buf[r]).into_owned()));
                }
                self.current
                    .get_or_insert_with(Default::default)
                    .rows
                    .push(Row { values });
            }
            Message::CommandComplete(body) => {
                let mut r = self.current.take().unwrap_or_default();
                r.tag = body.tag().map_err(malformed)?.to_string();
                self.results.push(r);
            }
            Message::EmptyQueryResponse => {
                self.results.push(self.current.take().unwrap_or_default())
            }
            Message::ErrorResponse(body) => {
                let e = db_error(body.fields())?;
                self.current = None;
                self.error.get_or_insert(e);
            }
            Message::NoticeResponse(body) => return Ok(Step::Notice(db_error(body.fields())?)),
            Message::CopyInResponse(_) => {
                frontend::copy_fail("COPY FROM STDIN is not supported by djinit", out)
                    .map_err(malformed)?;
            }
            Message::CopyOutResponse(_) | Message::CopyData(_) | Message::CopyDone => {}
            Message::ParseComplete
            | Message::BindComplete
            | Message::CloseComplete
            | Message::NoData
            | Message::ParameterDescription(_)
            | Message::ParameterStatus(_)
            | Message::NotificationResponse(_)
            | Message::PortalSuspended => {}
            Message::ReadyForQuery(body) => {
                let results = match self.error.take() {
                    Some(e) => Err(e),
                    None => Ok(std::mem::take(&mut self.results)),
                };
                self.kept = 0;
                return Ok(Step::Done(Finished {
                    results,
                    status: body.status(),
                }));
            }
            _ => {
                return Err(ProtoError::Protocol(
                    "unexpected message in a query response".into(),
                ))
            }
        }
        Ok(Step::More)
    }
}

fn malformed(e: std::io::Error) -> ProtoError {
    ProtoError::Protocol(format!("malformed query response: {e}"))
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

    fn row_description(names: &[&str]) -> Vec<u8> {
        let mut b = (names.len() as u16).to_be_bytes().to_vec();
        for n in names {
            b.extend_from_slice(n.as_bytes());
            b.push(0);
            b.extend_from_slice(&[0; 18]); // table oid, column, type oid, size, modifier, format
        }
        msg(b'T', &b)
    }

    fn data_row(values: &[Option<&str>]) -> Vec<u8> {
        let mut b = (values.len() as u16).to_be_bytes().to_vec();
        for v in values {
            match v {
                Some(s) => {
                    b.extend_from_slice(&(s.len() as i32).to_be_bytes());
                    b.extend_from_slice(s.as_bytes());
                }
                None => b.extend_from_slice(&(-1i32).to_be_bytes()),
            }
        }
        msg(b'D', &b)
    }

    fn collect(stream: Vec<u8>) -> Finished {
        let mut f = Framer::new();
        f.feed(&stream);
        let mut c = Collector::new();
        let mut out = BytesMut::new();
        while let Some(m) = f.next_message().unwrap() {
            if let Step::Done(done) = c.handle(m, &mut out).unwrap() {
                return done;
            }
        }
        panic!("no ReadyForQuery");
    }

    #[test]
    fn notices_are_handed_out_not_kept() {
        let notice = msg(b'N', b"SNOTICE\0C00000\0Mtick\0\0");
        let mut f = Framer::new();
        let mut c = Collector::new();
        let mut out = BytesMut::new();
        for _ in 0..1000 {
            f.feed(&notice);
            let m = f.next_message().unwrap().unwrap();
            match c.handle(m, &mut out).unwrap() {
                Step::Notice(n) => assert_eq!(n.message, "tick"),
                other => panic!("{other:?}"),
            }
        }
        f.feed(&msg(b'Z', b"I"));
        let m = f.next_message().unwrap().unwrap();
        assert!(matches!(c.handle(m, &mut out).unwrap(), Step::Done(_)));
    }

    #[test]
    fn a_flood_of_rows_is_refused() {
        let row = data_row(&[Some(&"x".repeat(60_000))]);
        let mut f = Framer::new();
        let mut c = Collector::new();
        let mut out = BytesMut::new();
        let mut n = 0;
        let err = loop {
            f.feed(&row);
            let m = f.next_message().unwrap().unwrap();
            match c.handle(m, &mut out) {
                Ok(Step::More) => n += 1,
                Ok(other) => panic!("{other:?}"),
                Err(e) => break e,
            }
        };
        assert_eq!(n, MAX_RESULT_LEN / 60_032);
        assert!(matches!(err, ProtoError::Protocol(m) if m.contains("larger than 16 MiB")));
    }

    #[test]
    fn rows_and_tags() {
        let mut s = row_description(&["a", "b"]);
        s.extend(data_row(&[Some("1"), None]));
        s.extend(data_row(&[Some("2"), Some("x")]));
        s.extend(msg(b'C', b"SELECT 2\0"));
        s.extend(msg(b'C', b"INSERT 0 3\0"));
        s.extend(msg(b'Z', b"I"));
        let done = collect(s);
        let r = done.results.unwrap();
        assert_eq!(r[0].columns, vec!["a", "b"]);
        assert_eq!(r[0].rows[0].get(0), Some("1"));
        assert_eq!(r[0].rows[0].get(1), None);
        assert_eq!(r[0].rows[1].get(1), Some("x"));
        assert_eq!(r[1].affected(), 3);
        assert_eq!(done.status, b'I');
    }

    #[test]
    fn error_kept_until_ready() {
        let mut s = msg(
            b'E',
            b"SERROR\0C42P01\0Mrelation \"auth_user\" does not exist\0\0",
        );
        s.extend(msg(b'Z', b"E"));
        let done = collect(s);
        let e = done.results.unwrap_err();
        assert_eq!(e.code, "42P01");
        assert_eq!(done.status, b'E');
    }

    #[test]
    fn extended_encoding_binds_text_and_null() {
        let mut out = BytesMut::new();
        encode_extended("select $1, $2", &[Some("it's"), None], &mut out).unwrap();
        let tags: Vec<u8> = {
            let mut v = vec![];
            let mut i = 0;
            while i < out.len() {
                v.push(out[i]);
                let len =
                    u32::from_be_bytes([out[i + 1], out[i + 2], out[i + 3], out[i + 4]]) as usize;
                i += 1 + len;
            }
            v
        };
        assert_eq!(tags, b"PBDES");
        // The value travels as a parameter, never inside the SQL text.
        let s = String::from_utf8_lossy(&out);
        assert!(s.contains("select $1, $2\0"));
        assert!(s.contains("it's"));
        assert!(out.windows(4).any(|w| w == (-1i32).to_be_bytes()));
    }

    #[test]
    fn truncated_data_row_is_a_protocol_error() {
        // DataRow claiming 3 columns, the first 9 bytes long, with one byte present.
        let mut f = Framer::new();
        f.feed(&msg(b'D', &[0, 3, 0, 0, 0, 9, b'x']));
        let m = f.next_message().unwrap().unwrap();
        let e = Collector::new()
            .handle(m, &mut BytesMut::new())
            .unwrap_err();
        assert!(matches!(e, ProtoError::Protocol(_)));
    }

    #[test]
    fn copy_in_is_refused_politely() {
        let mut f = Framer::new();
        f.feed(&msg(b'G', &[0, 0, 0]));
        let mut c = Collector::new();
        let mut out = BytesMut::new();
        let m = f.next_message().unwrap().unwrap();
        assert!(matches!(c.handle(m, &mut out).unwrap(), Step::More));
        assert_eq!(out[0], b'f'); // CopyFail
    }
}
