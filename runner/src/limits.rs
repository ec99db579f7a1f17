//! The memory limit of one component run (`--memory MIB`, default 64 MiB).
//!
//! Counts every linear memory of the component together (a component may hold several core
//! instances, each with its own memory), from instantiation on. Growing past the limit traps the
//! guest at once and records why, so the runner reports "memory limit exceeded" (exit 71)
//! rather than whatever allocation failure the guest would make of a failed `memory.grow`.

use wasmtime::ResourceLimiter;

/// Tables are tiny in djinit's components; this only stops a runaway `table.grow`.
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

pub struct MemoryLimit {
    limit: usize,
    used: usize,
    /// The last growth allowed, taken back if wasmtime then fails to grow.
    last_grant: usize,
    exceeded: bool,
}

impl MemoryLimit {
    pub fn new(limit_bytes: usize) -> Self {
        MemoryLimit {
            limit: limit_bytes,
            used: 0,
            last_grant: 0,
            exceeded: false,
        }
    }

    /// Whether the component tried to grow past the limit.
    pub fn exceeded(&self) -> bool {
        self.exceeded
    }
}

impl ResourceLimiter for MemoryLimit {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let grow = desired.saturating_sub(current);
        if self.used.saturating_add(grow) > self.limit {
            self.exceeded = true;
            return Err(wasmtime::format_err!(
                "memory limit exceeded: {} MiB in use, {} MiB more requested",
                self.used >> 20,
                grow.div_ceil(1 << 20)
            ));
        }
        self.used += grow;
        self.last_grant = grow;
        Ok(true)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.used -= self.last_grant;
        self.last_grant = 0;
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_all_memories_together() {
        let mib = 1 << 20;
        let mut l = MemoryLimit::new(4 * mib);
        assert!(l.memory_growing(0, 2 * mib, None).unwrap());
        assert!(l.memory_growing(0, mib, None).unwrap());
        assert!(l.memory_growing(mib, 2 * mib, None).unwrap());
        assert!(!l.exceeded());
        assert!(l.memory_growing(2 * mib, 3 * mib, None).is_err());
        assert!(l.exceeded());
    }

    #[test]
    fn failed_growth_is_given_back() {
        let mib = 1 << 20;
        let mut l = MemoryLimit::new(2 * mib);
        assert!(l.memory_growing(0, 2 * mib, None).unwrap());
        l.memory_grow_failed(wasmtime::format_err!("os said no"))
            .unwrap();
        assert!(l.memory_growing(0, 2 * mib, None).unwrap());
    }
}
