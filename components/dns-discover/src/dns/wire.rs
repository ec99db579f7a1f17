//! Bounds-checked reading of DNS wire data, and domain names (RFC 1035 3.1, 4.1.4).

/// At most this many compression pointers are followed while decoding one name.
pub const MAX_POINTERS: usize = 32;
/// A name on the wire is at most 255 octets; a label at most 63.
pub const MAX_NAME: usize = 255;
pub const MAX_LABEL: usize = 63;

/// A reply that is not a well-formed DNS message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("reply truncated at byte {0}")]
    Short(usize),
    #[error("bad domain name at byte {at}: {why}")]
    BadName { at: usize, why: &'static str },
    #[error("record data of a {rtype} record has the wrong length {len}")]
    BadRdata { rtype: String, len: usize },
    #[error("{0}")]
    Mismatch(String),
}

/// A name that cannot be put in a query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{0:?} is not a valid domain name: empty label")]
    EmptyLabel(String),
    #[error("{0:?} is not a valid domain name: a label is longer than 63 characters")]
    LongLabel(String),
    #[error("{0:?} is not a valid domain name: longer than 253 characters")]
    LongName(String),
    #[error(
        "{0:?} is not a valid domain name: only letters, digits, '-', '_' and '.' are allowed"
    )]
    BadChar(String),
}

/// A cursor over a message; every read is checked.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn pos(&self) -> usize {
        self.pos
    }

    pub fn buf(&self) -> &'a [u8] {
        self.buf
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(DecodeError::Short(self.pos))?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or(DecodeError::Short(self.pos))?;
        self.pos = end;
        Ok(s)
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.bytes(1)?[0])
    }

    pub fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.bytes(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.bytes(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A possibly compressed name starting here, in lowercase dotted form without the final dot
    /// (the root is ""). The cursor moves past the name's first occurrence.
    pub fn name(&mut self) -> Result<String, DecodeError> {
        let (name, next) = read_name(self.buf, self.pos)?;
        self.pos = next;
        Ok(name)
    }
}

/// Decode the name at `start` of `msg`; returns it and the position after it (after the first
/// pointer if compressed). Pointers must point strictly backward.
pub fn read_name(msg: &[u8], start: usize) -> Result<(String, usize), DecodeError> {
    let mut out = String::new();
    let mut pos = start;
    let mut after: Option<usize> = None;
    let mut pointers = 0;
    let mut wire_len = 0usize;
    // Lowest position a pointer may target: strictly before the label that contained it.
    let mut limit = start;
    loop {
        let len = *msg.get(pos).ok_or(DecodeError::Short(pos))?;
        match len & 0xC0 {
            0x00 => {
                if len == 0 {
                    let next = after.unwrap_or(pos + 1);
                    return Ok((out, next));
                }
                let len = len as usize;
                let label = msg
                    .get(pos + 1..pos + 1 + len)
                    .ok_or(DecodeError::Short(pos + 1))?;
                wire_len += len + 1;
                if wire_len + 1 > MAX_NAME {
                    return Err(DecodeError::BadName {
                        at: pos,
                        why: "longer than 255 octets",
                    });
                }
                if !out.is_empty() {
                    out.push('.');
                }
                for &b in label {
                    let c = b.to_ascii_lowercase();
                    if c == b'.' || !(0x21..0x7f).contains(&c) {
                        // Keep the name printable and unambiguous.
                        out.push_str(&format!("\\{:03}", c));
                    } else {
                        out.push(c as char);
                    }
                }
                pos += 1 + len;
            }
            0xC0 => {
                let lo = *msg.get(pos + 1).ok_or(DecodeError::Short(pos + 1))?;
                let target = (((len & 0x3F) as usize) << 8) | lo as usize;
                pointers += 1;
                if pointers > MAX_POINTERS {
                    return Err(DecodeError::BadName {
                        at: pos,
                        why: "too many compression pointers",
                    });
                }
                if target >= limit.min(pos) {
                    return Err(DecodeError::BadName {
                        at: pos,
                        why: "compression pointer does not point backward",
                    });
                }
                if after.is_none() {
                    after = Some(pos + 2);
                }
                limit = target;
                pos = target;
            }
            _ => {
                return Err(DecodeError::BadName {
                    at: pos,
                    why: "unknown label type",
                })
            }
        }
    }
}

/// Check a name given on the command line and return it lowercase, without a final dot, plus
/// whether it was absolute (ended with a dot).
pub fn check_name(name: &str) -> Result<(String, bool), NameError> {
    let absolute = name.ends_with('.') && name.len() > 1;
    let bare = if absolute {
        &name[..name.len() - 1]
    } else {
        name
    };
    if bare.is_empty() || bare == "." {
        return Err(NameError::EmptyLabel(name.into()));
    }
    if bare.len() > 253 {
        return Err(NameError::LongName(name.into()));
    }
    for label in bare.split('.') {
        if label.is_empty() {
            return Err(NameError::EmptyLabel(name.into()));
        }
        if label.len() > MAX_LABEL {
            return Err(NameError::LongLabel(name.into()));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(NameError::BadChar(name.into()));
        }
    }
    Ok((bare.to_ascii_lowercase(), absolute))
}

/// Append `name` (dotted, no final dot, already checked) in uncompressed wire form.
pub fn write_name(name: &str, out: &mut Vec<u8>) -> Result<(), NameError> {
    if !name.is_empty() {
        check_name(name)?;
        for label in name.split('.') {
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
    }
    out.push(0);
    Ok(())
}
