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

/// Each embedded component imports only what its world in `wit/commands.wit` lists: the worlds
/// are a contract, not documentation (checked on the precompiled components this build embeds,
/// through wasmtime's component type API).
#[cfg(test)]
mod world_tests {
    use std::collections::{BTreeSet, HashMap};

    /// `world NAME { include OTHER; import IFACE@VERSION; ... }` of a WIT file: each world's
    /// imports with includes resolved, versions dropped.
    fn worlds(wit: &str) -> HashMap<String, BTreeSet<String>> {
        let mut direct: HashMap<String, (Vec<String>, BTreeSet<String>)> = HashMap::new();
        let mut current: Option<String> = None;
        for line in wit.lines().map(str::trim) {
            let word = |prefix: &str| {
                line.strip_prefix(prefix)
                    .map(|r| r.trim_end_matches(['{', ';', ' ']).trim().to_string())
            };
            if let Some(name) = word("world ") {
                direct.entry(name.clone()).or_default();
                current = Some(name);
            } else if line == "}" {
                current = None;
            } else if let Some(w) = current.as_ref() {
                let entry = direct.get_mut(w).expect("world");
                if let Some(inc) = word("include ") {
                    entry.0.push(inc);
                } else if let Some(import) = word("import ") {
                    entry.1.insert(unversioned(&import));
                }
            }
        }
        fn resolve(
            w: &str,
            direct: &HashMap<String, (Vec<String>, BTreeSet<String>)>,
        ) -> BTreeSet<String> {
            let (includes, imports) = &direct[w];
            let mut all = imports.clone();
            for inc in includes {
                all.extend(resolve(inc, direct));
            }
            all
        }
        direct
            .keys()
            .map(|w| (w.clone(), resolve(w, &direct)))
            .collect()
    }

    fn unversioned(name: &str) -> String {
        name.split('@').next().unwrap_or(name).to_string()
    }

    #[test]
    fn components_import_only_their_world() {
        assert!(
            !super::is_empty(),
            "this djinit build embeds no components: run `just build` before `cargo test -p djinit`"
        );
        let worlds = worlds(include_str!("../../wit/commands.wit"));
        let engine = djinit_engine::engine().expect("engine");
        let mut wrong = Vec::new();
        for name in super::names() {
            let world = worlds
                .get(name)
                .unwrap_or_else(|| panic!("wit/commands.wit has no world {name}"));
            let bytes = super::get(name)
                .unwrap()
                .unpack()
                .expect("embedded component decodes");
            // SAFETY: this build's own precompiled components (see exec::load).
            let component = unsafe { wasmtime::component::Component::deserialize(&engine, &bytes) }
                .expect("embedded component loads");
            let ty = component.component_type();
            let imports: BTreeSet<String> = ty
                .imports(&engine)
                .map(|(import, _)| unversioned(import))
                .collect();
            let outside: Vec<&String> = imports.difference(world).collect();
            if !outside.is_empty() {
                wrong.push(format!("{name} imports {outside:?}"));
            }
        }
        assert!(
            wrong.is_empty(),
            "outside their worlds in wit/commands.wit: {}",
            wrong.join("; ")
        );
    }

    #[test]
    fn world_parser_resolves_includes() {
        let w = worlds(
            "world a {\n  import x:y/z@0.2.1;\n}\nworld b {\n  include a;\n  import x:y/w;\n}\n",
        );
        assert_eq!(
            w["b"],
            ["x:y/w", "x:y/z"].map(String::from).into_iter().collect()
        );
    }
}
