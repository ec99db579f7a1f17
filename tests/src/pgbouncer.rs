//! A real PgBouncer (Debian's `pgbouncer`) in front of a throwaway [`Cluster`]: its own free port
//! on 127.0.0.1, its own config dir in a temp dir, `auth_type = scram-sha-256` with the
//! superuser's password in `auth_file` (PgBouncer then authenticates the client with SCRAM and
//! logs in to the server with the same password), every database of the cluster behind it
//! (`* = host=127.0.0.1 port=...`), the chosen `pool_mode`. Run as the `postgres` user when we are
//! root (PgBouncer refuses root), in its own process group, killed (SIGKILL to the group) and
//! removed on drop. Start is bounded: [`START_LIMIT`].

use crate::cluster::template::as_server_user;
use crate::cluster::user::{chown_to_server_user, server_user};
use crate::cluster::Cluster;
use crate::secret::PASSWORD;
use crate::urlenc::encode;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long PgBouncer may take to listen (it starts in ~10 ms here).
pub const START_LIMIT: Duration = Duration::from_secs(20);

/// PgBouncer's `pool_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolMode {
    /// A server connection per client connection, for the client's lifetime.
    Session,
    /// A server connection per transaction (each statement outside a transaction is one).
    Transaction,
}

impl PoolMode {
    pub fn name(self) -> &'static str {
        match self {
            PoolMode::Session => "session",
            PoolMode::Transaction => "transaction",
        }
    }
}

pub struct PgBouncer {
    port: u16,
    mode: PoolMode,
    child: Option<Child>,
    log: PathBuf,
    dir: tempfile::TempDir,
}

fn binary() -> PathBuf {
    [
        "/usr/sbin/pgbouncer",
        "/usr/bin/pgbouncer",
        "/usr/local/bin/pgbouncer",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
    .expect("pgbouncer is not installed (apt-get install -y pgbouncer; .ci/setup does it)")
}

/// `"..."` for PgBouncer's auth_file (a `"` inside is doubled).
fn quoted(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

impl PgBouncer {
    /// PgBouncer in `mode` in front of `pg` (superuser `postgres`, [`PASSWORD`]).
    pub fn start(pg: &Cluster, mode: PoolMode) -> PgBouncer {
        let user = server_user();
        let mut dir = tempfile::Builder::new()
            .prefix("djinit-pgbouncer-")
            .tempdir()
            .expect("temp dir for pgbouncer");
        chown_to_server_user(dir.path(), user);
        let auth = dir.path().join("userlist.txt");
        std::fs::write(
            &auth,
            format!("{} {}\n", quoted("postgres"), quoted(PASSWORD)),
        )
        .unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&auth, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        chown_to_server_user(&auth, user);
        let log = dir.path().join("pgbouncer.log");
        let mut last = String::new();
        for _ in 0..5 {
            let port = crate::fakes::free_port();
            let ini = dir.path().join("pgbouncer.ini");
            std::fs::write(
                &ini,
                format!(
                    "[databases]\n\
                     * = host=127.0.0.1 port={pg_port}\n\
                     [pgbouncer]\n\
                     listen_addr = 127.0.0.1\n\
                     listen_port = {port}\n\
                     unix_socket_dir =\n\
                     auth_type = scram-sha-256\n\
                     auth_file = {auth}\n\
                     pool_mode = {mode}\n\
                     max_client_conn = 500\n\
                     default_pool_size = 40\n\
                     ignore_startup_parameters = extra_float_digits,options\n\
                     logfile = {log}\n\
                     log_connections = 0\n\
                     log_disconnections = 0\n",
                    pg_port = pg.port(),
                    auth = auth.display(),
                    mode = mode.name(),
                    log = log.display(),
                ),
            )
            .unwrap();
            chown_to_server_user(&ini, user);
            let mut cmd = Command::new(binary());
            cmd.arg(&ini)
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            {
                use std::os::unix::process::CommandExt;
                cmd.process_group(0);
            }
            as_server_user(&mut cmd, user);
            let child = cmd.spawn().expect("start pgbouncer");
            let mut b = PgBouncer {
                port,
                mode,
                child: Some(child),
                log: log.clone(),
                dir,
            };
            match b.wait_listening() {
                Ok(()) => return b,
                Err(e) => {
                    b.kill();
                    last = e;
                    dir = std::mem::replace(&mut b.dir, tempfile::tempdir().unwrap());
                    if !last.contains("in use") {
                        panic!("{last}");
                    }
                }
            }
        }
        panic!("{last}");
    }

    fn wait_listening(&mut self) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                return Err(format!(
                    "pgbouncer exited at startup ({status})\n--- pgbouncer log ---\n{}",
                    self.log()
                ));
            }
            if TcpStream::connect_timeout(
                &([127, 0, 0, 1], self.port).into(),
                Duration::from_millis(200),
            )
            .is_ok()
            {
                return Ok(());
            }
            if start.elapsed() > START_LIMIT {
                return Err(format!(
                    "pgbouncer did not listen on 127.0.0.1:{} within {}s\n--- pgbouncer log ---\n{}",
                    self.port,
                    START_LIMIT.as_secs(),
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn mode(&self) -> PoolMode {
        self.mode
    }

    pub fn config_dir(&self) -> &Path {
        self.dir.path()
    }

    /// `postgres://<user>:<password>@127.0.0.1:<pgbouncer port>/<db>`, each part percent-encoded.
    pub fn url_for(&self, user: &str, password: &str, db: &str) -> String {
        format!(
            "postgres://{}:{}@127.0.0.1:{}/{}",
            encode(user),
            encode(password),
            self.port,
            encode(db)
        )
    }

    /// The superuser's URL for database `db` through PgBouncer.
    pub fn url(&self, db: &str) -> String {
        self.url_for("postgres", PASSWORD, db)
    }

    /// PgBouncer's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling the process group of our own, unreaped child.
            unsafe { libc::kill(-(c.id() as libc::pid_t), libc::SIGKILL) };
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        self.kill();
    }
}
