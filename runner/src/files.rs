//! Files a component opens by the path it was given (TLS certificates and keys, a password
//! file): mounted so that path works inside the sandbox.
//!
//! WASI mounts directories, not files, and wasmtime resolves every path inside a mount without
//! ever leaving it (`openat2` with `RESOLVE_BENEATH`). A symlink that points out of its
//! directory therefore fails with "permission denied" although the file is readable: Debian's
//! `/etc/ssl/certs/*.pem` point to `/usr/share/ca-certificates/`. So, for each directory holding
//! granted files:
//!
//! * every granted file opens through the mount exactly as the component will open it (a plain
//!   file, or links that stay inside the directory, like a Kubernetes Secret volume's
//!   `KEY -> ..data/KEY`, `..data -> ..2024_01_01_...`), or does not exist (the component then
//!   reports it): the directory is mounted read-only at its own path, as the policy always did;
//! * otherwise the runner follows the links on the host and mounts, at the directory's path, a
//!   private directory holding a copy of exactly the granted files under the names the
//!   component uses. The copy lives in `/dev/shm` (memory, and per Pod in Kubernetes), else in
//!   `$TMPDIR`; only the runner's user can read it (0700 directory, 0400 files); it is removed
//!   when the run ends. A runner killed with SIGKILL leaves it behind until the tmpfs goes.
//!   Only regular files up to [`MAX_COPY`] are copied. The component then sees those files of
//!   the directory and nothing else in it.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use djinit_cli::Failure;
use djinit_wait::Kind;
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::grants::DirGrant;

/// Largest file copied (certificate bundles are ~250 KiB, a password a few bytes).
pub const MAX_COPY: u64 = 16 << 20;

/// Where the copies are made, in order of preference.
const COPY_BASES: [&str; 1] = ["/dev/shm"];

/// The mounts for the granted files, and the private copies they need (removed on drop).
pub struct FileMounts {
    pub dirs: Vec<DirGrant>,
    _copies: Option<tempfile::TempDir>,
}

/// Plan the mounts for `files` (paths as the component will open them).
pub fn mount(files: &[String]) -> Result<FileMounts, Failure> {
    let mut by_dir: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for f in files.iter().filter(|f| !f.is_empty()) {
        let path = Path::new(f);
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_string_lossy().into_owned(),
            _ => ".".to_string(),
        };
        let names = by_dir.entry(dir).or_default();
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    let mut out = FileMounts {
        dirs: Vec::new(),
        _copies: None,
    };
    for (dir, names) in by_dir {
        if !Path::new(&dir).is_dir() {
            continue; // the component reports the missing file
        }
        if names.iter().all(|n| opens_inside(&dir, n)) {
            out.dirs.push(DirGrant::read_only(dir.clone(), dir));
            continue;
        }
        if out._copies.is_none() {
            out._copies = Some(copy_dir()?);
        }
        let base = out._copies.as_ref().expect("created above").path();
        let view = base.join(out.dirs.len().to_string());
        std::fs::create_dir(&view).map_err(|e| cannot(&dir, "creating a private copy", e))?;
        for name in &names {
            copy_file(&Path::new(&dir).join(name), &view.join(name))?;
        }
        out.dirs.push(DirGrant::read_only(
            view.to_string_lossy().into_owned(),
            dir,
        ));
    }
    Ok(out)
}

/// Whether `dir/name` opens as wasmtime will open it for the guest: resolved beneath `dir`
/// (missing files count as opening: the component reports them itself).
fn opens_inside(dir: &str, name: &str) -> bool {
    let Ok(d) = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return true;
    };
    match rustix::fs::openat2(
        &d,
        name,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    ) {
        Ok(_) => true,
        Err(Errno::XDEV) => false,
        // No openat2 (Linux < 5.6, or a seccomp filter): compare the resolved paths instead.
        Err(Errno::NOSYS | Errno::PERM) => {
            match (
                std::fs::canonicalize(dir),
                std::fs::canonicalize(Path::new(dir).join(name)),
            ) {
                (Ok(d), Ok(f)) => f.starts_with(d),
                _ => true,
            }
        }
        Err(_) => true,
    }
}

/// The private directory for copies: in memory when possible.
fn copy_dir() -> Result<tempfile::TempDir, Failure> {
    let mut bases: Vec<PathBuf> = COPY_BASES.iter().map(PathBuf::from).collect();
    bases.push(std::env::temp_dir());
    let mut last = None;
    for base in bases.iter().filter(|b| b.is_dir()) {
        match tempfile::Builder::new()
            .prefix("djinit-files-")
            .tempdir_in(base)
        {
            Ok(d) => return Ok(d),
            Err(e) => last = Some(e),
        }
    }
    Err(Failure::new(
        Kind::NoInput,
        format!(
            "a file the command reads is a symlink out of its directory, and there is no writable /dev/shm or TMPDIR for a private copy of it ({})",
            last.map_or("none exists".to_string(), |e| e.to_string())
        ),
    ))
}

fn copy_file(from: &Path, to: &Path) -> Result<(), Failure> {
    let shown = from.display().to_string();
    let mut src = match std::fs::File::open(from) {
        Ok(f) => f,
        // Missing or unreadable: leave it out, the component reports it by its own name.
        Err(_) => return Ok(()),
    };
    let meta = src.metadata().map_err(|e| cannot(&shown, "reading", e))?;
    if !meta.is_file() {
        return Err(Failure::new(
            Kind::NoInput,
            format!("{shown} is not a regular file"),
        ));
    }
    let mut content = Vec::new();
    (&mut src)
        .take(MAX_COPY + 1)
        .read_to_end(&mut content)
        .map_err(|e| cannot(&shown, "reading", e))?;
    if content.len() as u64 > MAX_COPY {
        return Err(Failure::new(
            Kind::NoInput,
            format!("{shown} is larger than {} MiB", MAX_COPY >> 20),
        ));
    }
    let mut dst = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .open(to)
        .map_err(|e| cannot(&shown, "copying", e))?;
    dst.write_all(&content)
        .map_err(|e| cannot(&shown, "copying", e))?;
    Ok(())
}

fn cannot(what: &str, doing: &str, e: std::io::Error) -> Failure {
    Failure::new(Kind::NoInput, format!("{doing} {what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn s(p: &Path) -> String {
        p.to_string_lossy().into_owned()
    }

    #[test]
    fn links_inside_the_directory_mount_it_as_is() {
        let t = tempfile::tempdir().unwrap();
        let secret = t.path().join("secret");
        let stamp = secret.join("..2024_01_01_00_00_00.1");
        std::fs::create_dir_all(&stamp).unwrap();
        std::fs::write(stamp.join("password"), "pw").unwrap();
        symlink("..2024_01_01_00_00_00.1", secret.join("..data")).unwrap();
        symlink("..data/password", secret.join("password")).unwrap();
        std::fs::write(secret.join("plain"), "x").unwrap();
        let files = [
            s(&secret.join("password")),
            s(&secret.join("plain")),
            s(&secret.join("missing")),
        ];
        let m = mount(&files).unwrap();
        assert_eq!(m.dirs, vec![DirGrant::read_only(s(&secret), s(&secret))]);
        assert!(m._copies.is_none());
    }

    #[test]
    fn links_out_of_the_directory_get_a_private_copy_of_just_those_files() {
        let t = tempfile::tempdir().unwrap();
        let store = t.path().join("share");
        let certs = t.path().join("certs");
        std::fs::create_dir_all(&store).unwrap();
        std::fs::create_dir_all(&certs).unwrap();
        std::fs::write(store.join("Root.crt"), "CERT").unwrap();
        symlink(store.join("Root.crt"), certs.join("Root.pem")).unwrap();
        symlink("Root.pem", certs.join("abcd1234.0")).unwrap();
        std::fs::write(certs.join("other.pem"), "OTHER").unwrap();
        let files = [s(&certs.join("abcd1234.0")), s(&certs.join("Root.pem"))];
        let m = mount(&files).unwrap();
        assert_eq!(m.dirs.len(), 1);
        let d = &m.dirs[0];
        assert_eq!(d.guest, s(&certs));
        assert!(!d.writable);
        let view = Path::new(&d.host);
        assert_eq!(
            std::fs::read_to_string(view.join("abcd1234.0")).unwrap(),
            "CERT"
        );
        assert_eq!(
            std::fs::read_to_string(view.join("Root.pem")).unwrap(),
            "CERT"
        );
        assert!(!view.join("other.pem").exists());
        let copies = m._copies.as_ref().unwrap().path().to_path_buf();
        drop(m);
        assert!(!copies.exists(), "copies removed with the mounts");
    }

    #[test]
    fn only_regular_files_are_copied() {
        let t = tempfile::tempdir().unwrap();
        symlink("/dev/zero", t.path().join("zero")).unwrap();
        let err = mount(&[s(&t.path().join("zero"))]).err().unwrap();
        assert_eq!(err.kind, Kind::NoInput);
    }
}
