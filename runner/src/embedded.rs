//! The command components built into this binary (see `build.rs`), precompiled by
//! `djinit-compile` with the same engine configuration and stored LZ4-compressed (about a third
//! of their size; decoding one takes a few milliseconds at start).

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// One embedded precompiled component, still compressed.
#[derive(Clone, Copy)]
pub struct Packed {
    /// Length of the `.cwasm` once decoded.
    len: usize,
    /// LZ4 block (no frame, no length prefix).
    lz4: &'static [u8],
}

impl Packed {
    /// The `.cwasm` bytes. Fails only if the embedded block is corrupt or does not decode to
    /// exactly the length recorded at build time (a broken build, never user input).
    pub fn unpack(self) -> Result<Vec<u8>, String> {
        let bytes = lz4_flex::block::decompress(self.lz4, self.len).map_err(|e| e.to_string())?;
        if bytes.len() != self.len {
            return Err(format!(
                "decoded {} bytes, expected {}",
                bytes.len(),
                self.len
            ));
        }
        Ok(bytes)
    }
}

/// The precompiled component of command `name`, if this build embeds it.
pub fn get(name: &str) -> Option<Packed> {
    EMBEDDED
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|&(_, len, lz4)| Packed { len, lz4 })
}

/// The names of all embedded commands, sorted.
pub fn names() -> impl Iterator<Item = &'static str> {
    EMBEDDED.iter().map(|(n, _, _)| *n)
}

pub fn is_empty() -> bool {
    EMBEDDED.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_component_decodes_to_its_recorded_length() {
        for name in names() {
            let bytes = get(name).unwrap().unpack().unwrap();
            assert!(
                wasmtime::Engine::detect_precompiled(&bytes).is_some(),
                "{name}: not a precompiled artifact"
            );
        }
    }

    #[test]
    fn a_wrong_recorded_length_is_an_error_not_a_short_component() {
        let lz4: &'static [u8] =
            Box::leak(lz4_flex::block::compress(b"abcdefgh").into_boxed_slice());
        assert_eq!(Packed { len: 8, lz4 }.unpack().unwrap(), b"abcdefgh");
        assert!(Packed { len: 7, lz4 }.unpack().is_err());
        assert!(Packed { len: 9, lz4 }.unpack().is_err());
        assert!(Packed {
            len: 8,
            lz4: &lz4[..lz4.len() - 1]
        }
        .unpack()
        .is_err());
    }
}
