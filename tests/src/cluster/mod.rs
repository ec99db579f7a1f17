//! Throwaway PostgreSQL clusters: a copy of a cached template data directory in a temp dir
//! (in `/dev/shm` when available, see `scratch_base`), a free
//! port on 127.0.0.1 only, a unix socket inside the temp dir, a chosen `pg_hba.conf`, durability
//! off for speed. Stopped (killed if need be) and removed on drop, also when the test panics.
//!
//! The harness itself talks to the server over the unix socket (`local all all trust`, first line
//! of `pg_hba.conf`), so `psql()` keeps working whatever a test does to TCP authentication.

pub(crate) mod template;
pub(crate) mod user;

use crate::paths::pg_bindir;
use crate::process::{run, Output};
use crate::secret::PASSWORD;
use crate::urlenc::encode;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};
use user::{chown_to_server_user, server_user, ServerUser};

/// How TCP clients must authenticate (`pg_hba.conf` method for `host all all 127.0.0.1/32`).
/// The stored password hash follows: `Md5` stores md5 hashes, the others SCRAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// No password asked.
    Trust,
    /// Cleartext password (`password`).
    Password,
    /// `md5` challenge, passwords stored as md5 hashes.
    Md5,
    /// `scram-sha-256`, passwords stored as SCRAM verifiers.
    Scram,
}

impl Auth {
    pub fn hba_method(self) -> &'static str {
        match self {
            Auth::Trust => "trust",
            Auth::Password => "password",
            Auth::Md5 => "md5",
            Auth::Scram => "scram-sha-256",
        }
    }

    fn password_encryption(self) -> &'static str {
        match self {
            Auth::Md5 => "md5",
            _ => "scram-sha-256",
        }
    }
}

/// Options for [`Cluster`]. Defaults: `Auth::Scram`, no extra configuration.
#[derive(Debug, Clone)]
pub struct Builder {
    auth: Auth,
    conf: Vec<String>,
    hba: Vec<String>,
    /// Files written into the data directory (owner-only, given to the server user).
    files: Vec<(String, Vec<u8>)>,
}

impl Builder {
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// A `postgresql.conf` line, appended after the harness's own (so it wins).
    pub fn conf(mut self, line: impl Into<String>) -> Self {
        self.conf.push(line.into());
        self
    }

    /// A `pg_hba.conf` line, placed after the harness's `local all all trust` and before the
    /// default `host all all 127.0.0.1/32 <auth>` line (first match wins).
    pub fn hba(mut self, line: impl Into<String>) -> Self {
        self.hba.push(line.into());
        self
    }

    /// A file `name` in the data directory, mode 0600, owned by the server user (e.g. a TLS
    /// key: the server refuses keys readable by others). Refer to it by its bare name in
    /// [`Builder::conf`] (relative to the data directory). TLS helpers: `crate::tls`.
    pub fn data_file(mut self, name: impl Into<String>, contents: impl Into<Vec<u8>>) -> Self {
        self.files.push((name.into(), contents.into()));
        self
    }

    pub fn start(self) -> Cluster {
        Cluster::create(self)
    }
}

/// A running (or stopped) throwaway cluster. Superuser `postgres`, password [`PASSWORD`].
pub struct Cluster {
    // Field order matters for Drop: the server is stopped in Drop::drop, then `dir` is removed.
    auth: Auth,
    port: u16,
    bindir: PathBuf,
    data: PathBuf,
    sock: PathBuf,
    log: PathBuf,
    user: Option<ServerUser>,
    server: Option<Child>,
    /// Cleans up if this process dies without dropping the cluster (see [`Watchdog`]).
    watchdog: Option<Watchdog>,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// A cluster with `auth` on TCP and nothing else special.
    pub fn start(auth: Auth) -> Cluster {
        Cluster::builder().auth(auth).start()
    }

    pub fn builder() -> Builder {
        Builder {
            auth: Auth::Scram,
            conf: Vec::new(),
            hba: Vec::new(),
            files: Vec::new(),
        }
    }

    fn create(b: Builder) -> Cluster {
        let template = template::template();
        let user = server_user();
        let dir = tempfile::Builder::new()
            .prefix("djinit-pg-")
            .tempdir_in(scratch_base())
            .expect("temp dir for a cluster");
        chown_to_server_user(dir.path(), user);
        let data = dir.path().join("data");
        let sock = dir.path().join("sock");
        let log = dir.path().join("postgres.log");
        // `cp -a` keeps the owner (the server user) and the 0700 mode initdb gave the directory.
        let cp = run(
            Command::new("cp").arg("-a").arg(template).arg(&data),
            Duration::from_secs(60),
        );
        if cp.code != Some(0) {
            panic!(
                "copying the template data directory failed\n{}",
                cp.report()
            );
        }
        std::fs::create_dir(&sock).unwrap();
        chown_to_server_user(&sock, user);
        for (name, contents) in &b.files {
            use std::os::unix::fs::PermissionsExt;
            let path = data.join(name);
            std::fs::write(&path, contents).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            chown_to_server_user(&path, user);
        }

        let mut conf = format!(
            "\n# djinit test harness\n\
             listen_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{}'\n\
             fsync = off\n\
             synchronous_commit = off\n\
             full_page_writes = off\n\
             wal_level = minimal\n\
             max_wal_senders = 0\n\
             shared_buffers = 32MB\n\
             dynamic_shared_memory_type = mmap\n\
             max_connections = 100\n\
             logging_collector = off\n\
             log_connections = on\n\
             password_encryption = '{}'\n",
            sock.display(),
            b.auth.password_encryption()
        );
        for line in &b.conf {
            conf.push_str(line);
            conf.push('\n');
        }
        append(&data.join("postgresql.conf"), &conf);
        let mut hba = String::from("# djinit test harness\nlocal all all trust\n");
        for line in &b.hba {
            hba.push_str(line);
            hba.push('\n');
        }
        hba.push_str(&format!(
            "host all all 127.0.0.1/32 {}\n",
            b.auth.hba_method()
        ));
        std::fs::write(data.join("pg_hba.conf"), hba).unwrap();

        let mut cluster = Cluster {
            auth: b.auth,
            port: 0,
            bindir: pg_bindir(),
            data,
            sock,
            log,
            user,
            server: None,
            watchdog: None,
            dir,
        };
        cluster.watchdog = Watchdog::start(&cluster.data, cluster.dir.path());
        // A free port can be taken by someone else before the server binds it: try a few.
        let mut last = String::new();
        for _ in 0..5 {
            cluster.port = crate::fakes::free_port();
            match cluster.spawn_and_wait() {
                Ok(()) => {
                    if cluster.auth == Auth::Md5 {
                        // The template stores a SCRAM verifier; store the password as md5.
                        cluster.psql(&format!(
                            "ALTER ROLE postgres PASSWORD {}",
                            literal(PASSWORD)
                        ));
                    }
                    return cluster;
                }
                Err(e) if e.contains("Address already in use") => last = e,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("{last}");
    }

    /// Starts the postmaster and waits until it accepts connections. `Err` carries the reason and
    /// the server log.
    fn spawn_and_wait(&mut self) -> Result<(), String> {
        assert!(self.server.is_none(), "the cluster is already running");
        let logfile = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let log_offset = logfile.metadata().map(|m| m.len()).unwrap_or(0);
        let mut cmd = Command::new(self.bindir.join("postgres"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("LC_ALL", "C")
            .arg("-D")
            .arg(&self.data)
            .arg("-p")
            .arg(self.port.to_string())
            .stdin(Stdio::null())
            .stdout(logfile.try_clone().unwrap())
            .stderr(logfile);
        {
            use std::os::unix::process::CommandExt;
            // Its own process group: a Ctrl-C meant for the test run does not hit it first.
            cmd.process_group(0);
        }
        template::as_server_user(&mut cmd, self.user);
        let mut child = cmd.spawn().expect("start postgres");
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "postgres exited at startup ({status})\n--- server log ---\n{}",
                    self.log_since(log_offset)
                ));
            }
            if self.pidfile_says_ready(pid) {
                self.server = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                kill_and_reap(&mut child, libc::SIGKILL, Duration::from_secs(10));
                return Err(format!(
                    "postgres did not become ready within 60 s\n--- server log ---\n{}",
                    self.log_since(log_offset)
                ));
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    /// `postmaster.pid` line 1 is the pid, line 8 the status (`ready` once it accepts connections).
    fn pidfile_says_ready(&self, pid: u32) -> bool {
        let Ok(text) = std::fs::read_to_string(self.data.join("postmaster.pid")) else {
            return false;
        };
        let lines: Vec<&str> = text.lines().collect();
        lines.first().map(|l| l.trim()) == Some(pid.to_string().as_str())
            && lines.get(7).map(|l| l.trim()) == Some("ready")
    }

    fn log_since(&self, offset: u64) -> String {
        let text = std::fs::read(&self.log).unwrap_or_default();
        let start = (offset as usize).min(text.len());
        String::from_utf8_lossy(&text[start..]).into_owned()
    }

    /// The whole server log so far (for debugging a failing test).
    pub fn log(&self) -> String {
        self.log_since(0)
    }

    /// Fast shutdown (SIGINT: clients are disconnected), waits until the server has exited.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.server.take() {
            kill_and_reap(&mut child, libc::SIGINT, Duration::from_secs(30));
        }
    }

    /// Starts the stopped server again: same data directory, same port.
    pub fn start_again(&mut self) {
        if let Err(e) = self.spawn_and_wait() {
            panic!("restarting the cluster failed: {e}");
        }
    }

    /// `stop()` then `start_again()`.
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    pub fn is_running(&self) -> bool {
        self.server.is_some()
    }

    pub fn auth(&self) -> Auth {
        self.auth
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1` (the only address it listens on).
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    pub fn socket_dir(&self) -> &Path {
        &self.sock
    }

    /// The cluster's temp dir (data dir, socket dir and log inside); removed on drop.
    pub fn temp_dir(&self) -> &Path {
        self.dir.path()
    }

    /// `postgres://postgres:<PASSWORD percent-encoded>@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        self.url_for("postgres", PASSWORD, "postgres")
    }

    /// `postgres://<user>:<password>@127.0.0.1:<port>/<db>`, each part percent-encoded;
    /// an empty password leaves out `:<password>`.
    pub fn url_for(&self, user: &str, password: &str, db: &str) -> String {
        let auth = if password.is_empty() {
            encode(user)
        } else {
            format!("{}:{}", encode(user), encode(password))
        };
        format!("postgres://{auth}@127.0.0.1:{}/{}", self.port, encode(db))
    }

    /// The libpq variables for the superuser over TCP (`PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE`).
    pub fn pg_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("PGHOST", self.host().to_string()),
            ("PGPORT", self.port.to_string()),
            ("PGUSER", "postgres".into()),
            ("PGPASSWORD", PASSWORD.into()),
            ("PGDATABASE", "postgres".into()),
        ]
    }

    /// Runs `sql` with psql in database `postgres` as the superuser; returns its unaligned,
    /// tuples-only output, trimmed (`"1"` for `select 1`). Panics (failing the test) on any error.
    pub fn psql(&self, sql: &str) -> String {
        self.psql_in("postgres", sql)
    }

    /// [`Cluster::psql`] in database `db`.
    pub fn psql_in(&self, db: &str, sql: &str) -> String {
        let out = self.try_psql_in(db, sql);
        if out.code != Some(0) {
            panic!("psql failed\n{}", out.report());
        }
        out.stdout.trim_end_matches('\n').to_string()
    }

    /// Runs `sql` with psql in database `db`, returning the [`Output`] whatever happened.
    pub fn try_psql_in(&self, db: &str, sql: &str) -> Output {
        assert!(self.is_running(), "psql on a stopped cluster");
        let psql = self.bindir.join("psql");
        let mut cmd = Command::new(if psql.is_file() { psql } else { "psql".into() });
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("PGPASSWORD", PASSWORD)
            .env("PGCONNECT_TIMEOUT", "10")
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&self.sock)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
                "-c",
                sql,
            ]);
        run(cmd, Duration::from_secs(60))
    }

    /// `CREATE DATABASE <name>`.
    pub fn create_database(&self, name: &str) {
        self.psql(&format!("CREATE DATABASE {}", ident(name)));
    }

    /// `CREATE ROLE <name> LOGIN PASSWORD <password>` (stored per the cluster's [`Auth`]).
    pub fn create_user(&self, name: &str, password: &str) {
        self.psql(&format!(
            "CREATE ROLE {} LOGIN PASSWORD {}",
            ident(name),
            literal(password)
        ));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // We clean up ourselves: the watchdog must not act (nor outlive us).
        drop(self.watchdog.take());
        // Immediate shutdown: nothing to keep. SIGKILL if it does not go within 10 s.
        if let Some(mut child) = self.server.take() {
            kill_and_reap(&mut child, libc::SIGQUIT, Duration::from_secs(10));
        }
        // `dir` is removed when the field drops.
    }
}

/// A `sh` process in its own process group that holds the read end of a pipe whose write end only
/// we hold. If this process dies without dropping the cluster (SIGKILL, SIGTERM from `timeout`, an
/// abort), the pipe closes, and the watchdog stops the postmaster named in `postmaster.pid` and
/// removes the temp dir, so no orphaned server outlives a killed test run. A normal drop kills the
/// watchdog first.
struct Watchdog {
    child: Child,
    _pipe: std::process::ChildStdin,
}

impl Watchdog {
    const SCRIPT: &'static str = r#"read _ignored
pid=$(head -n 1 "$1/postmaster.pid" 2>/dev/null)
if [ -n "$pid" ]; then
  kill -QUIT "$pid" 2>/dev/null
  i=0
  while kill -0 "$pid" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
  kill -KILL "$pid" 2>/dev/null
fi
rm -rf "$2"
"#;

    /// `None` (no watchdog, only Drop cleans up) if `sh` cannot be started.
    fn start(data: &Path, dir: &Path) -> Option<Watchdog> {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(Self::SCRIPT)
            .arg("djinit-pg-watchdog")
            .arg(data)
            .arg(dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .ok()?;
        let pipe = child.stdin.take()?;
        Some(Watchdog { child, _pipe: pipe })
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // `_pipe` closes after this; nobody reads it any more.
    }
}

/// Sends `signal` to the postmaster, waits up to `grace` for it to exit, then SIGKILLs it.
fn kill_and_reap(child: &mut Child, signal: libc::c_int, grace: Duration) {
    let pid = child.id() as libc::pid_t;
    // SAFETY: signalling our own child, not yet reaped (so the pid is still ours).
    unsafe { libc::kill(pid, signal) };
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Where cluster temp dirs go: `$DJINIT_TEST_TMPDIR`, else `/dev/shm` (memory: no disk I/O
/// competing with builds), else the system temp dir.
fn scratch_base() -> PathBuf {
    if let Some(d) = std::env::var_os("DJINIT_TEST_TMPDIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let shm = Path::new("/dev/shm");
    let writable = std::fs::metadata(shm).is_ok_and(|m| m.is_dir())
        && tempfile::Builder::new()
            .prefix("djinit-probe-")
            .tempdir_in(shm)
            .is_ok();
    if writable {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

fn append(path: &Path, text: &str) {
    let mut f: File = OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// A quoted SQL identifier.
pub fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A quoted SQL string literal (standard_conforming_strings is on).
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
