//! Who runs the server: ourselves, or the `postgres` user when we are root (initdb and postgres
//! refuse to run as root). Dropping privileges uses `setuid`/`setgid` in the child (the same
//! effect as `runuser -u postgres --`, without an extra process between us and the postmaster).

use std::ffi::CString;
use std::path::Path;

#[derive(Debug, Clone, Copy)]
pub struct ServerUser {
    pub uid: u32,
    pub gid: u32,
}

/// `Some(postgres)` when running as root, `None` otherwise.
pub fn server_user() -> Option<ServerUser> {
    // SAFETY: plain libc calls; getpwnam's result is read before any other call.
    unsafe {
        if libc::geteuid() != 0 {
            return None;
        }
        let name = CString::new("postgres").unwrap();
        let pw = libc::getpwnam(name.as_ptr());
        if pw.is_null() {
            panic!("running as root, but there is no `postgres` user to run the server as");
        }
        Some(ServerUser {
            uid: (*pw).pw_uid,
            gid: (*pw).pw_gid,
        })
    }
}

/// Gives `path` to the server's user (no-op when not root).
pub fn chown_to_server_user(path: &Path, user: Option<ServerUser>) {
    if let Some(u) = user {
        std::os::unix::fs::chown(path, Some(u.uid), Some(u.gid))
            .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
    }
}
