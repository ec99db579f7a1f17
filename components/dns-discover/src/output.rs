//! Writing the result: stdout, or a file replaced atomically.
//!
//! `--output FILE` is written to `.FILE.tmp` in the same directory and renamed over FILE, so a
//! reader sees the old content or the new, never a mix. The temporary name is fixed, so a
//! process stopped between the two steps leaves at most one stale temporary file, overwritten by
//! the next run. No fsync: the point is consistency for concurrent readers (the file usually lives
//! in an in-memory `emptyDir`), not durability across a crash of the node.

use crate::error::DiscoverError;
use std::io::Write;
use std::path::{Path, PathBuf};

pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

pub fn write_atomic(path: &Path, content: &str) -> Result<(), DiscoverError> {
    let err = |io| DiscoverError::Output {
        path: path.display().to_string(),
        io,
    };
    let tmp = temp_path(path);
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(content.as_bytes()).map_err(err)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        err(e)
    })
}

/// Print the result. A reader that went away (`dns-discover mc | head -1`) is not an error: the
/// output is dropped (under the djinit runner the write never fails for that reason at all).
pub fn write_stdout(content: &str) -> Result<(), DiscoverError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(content.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.map_err(|io| DiscoverError::Output {
            path: "stdout".into(),
            io,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_atomically_in_same_dir() {
        let dir = std::env::temp_dir().join(format!("dns-discover-out-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("servers");
        assert_eq!(temp_path(&p), dir.join(".servers.tmp"));
        write_atomic(&p, "a\n").unwrap();
        write_atomic(&p, "b\n").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "b\n");
        assert!(!temp_path(&p).exists());
        let missing = dir.join("nope").join("servers");
        assert!(write_atomic(&missing, "x").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
