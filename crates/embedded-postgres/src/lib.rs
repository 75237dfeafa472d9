//! A private PostgreSQL server under a data directory, started from the
//! binaries of the distribution's `postgresql` package.
//!
//! Used by the host when no `DATABASE_URL` is set, and by the test harness.
//! The server listens on a free loopback port and, where the path fits, on a
//! Unix socket in `<data dir>.sock` (a directory only the server's user may
//! enter), uses password authentication with a generated password kept in
//! the data directory, and is killed with its parent process
//! (`PR_SET_PDEATHSIG`).
//! When started as root, the server runs as the `postgres` system user, since
//! PostgreSQL refuses to run as root.

use std::ffi::CString;
use std::io::Read;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Database and role created in a new cluster.
const DB: &str = "synatra";

/// Tuning of the server.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Trade durability for speed (tests): no fsync, no synchronous commit.
    pub ephemeral: bool,
}

/// A running server; stopped (fast shutdown) on drop.
pub struct EmbeddedPostgres {
    child: Child,
    port: u16,
    password: String,
    data_dir: PathBuf,
    socket_dir: Option<PathBuf>,
    /// An exclusive `flock` on `<data dir>.lock` for the server's lifetime:
    /// one process per data directory. The kernel drops it when we die.
    _lock: Option<std::fs::File>,
}

impl EmbeddedPostgres {
    /// Initialises `data_dir` if needed and starts the server on a free port.
    ///
    /// Only one process may run a server on a data directory; a server left
    /// behind by a process that was killed (`kill -9`) is stopped first, so a
    /// restart right after a crash works on the first try.
    pub fn start(data_dir: &Path, options: Options) -> Result<Self> {
        let bin = find_bin_dir()?;
        let owner = server_user()?;
        let data_dir = absolute(data_dir)?;
        if let Some(parent) = data_dir.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let lock = lock_data_dir(&data_dir)?;
        stop_orphaned_server(&data_dir)?;
        let password_file = data_dir.with_extension("password");
        if !data_dir.join("PG_VERSION").exists() {
            init_cluster(&bin, &data_dir, &password_file, owner)?;
        }
        let password = std::fs::read_to_string(&password_file)
            .with_context(|| format!("cannot read {}", password_file.display()))?
            .trim()
            .to_string();
        // Backends of a killed server may hold its shared memory for a
        // moment after it died: retry while the server says so.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match Self::start_server(&bin, &data_dir, &password, owner, options) {
                Ok(mut server) => {
                    server._lock = Some(lock);
                    return Ok(server);
                }
                Err(e) if Instant::now() < deadline && is_leftover_of_crash(&format!("{e:#}")) => {
                    stop_orphaned_server(&data_dir)?;
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn start_server(
        bin: &Path,
        data_dir: &Path,
        password: &str,
        owner: Option<User>,
        options: Options,
    ) -> Result<Self> {
        let port = free_port()?;
        let socket_dir = prepare_socket_dir(data_dir, port, owner)?;
        let log_path = data_dir.with_extension("log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("cannot create {}", log_path.display()))?;
        let mut cmd = Command::new(bin.join("postgres"));
        cmd.arg("-D")
            .arg(data_dir)
            .args(["-p", &port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!(
                "unix_socket_directories={}",
                socket_dir
                    .as_deref()
                    .map_or("".into(), Path::to_string_lossy)
            ))
            .args(["-c", "max_connections=200"]);
        if options.ephemeral {
            cmd.args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]);
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        as_user(&mut cmd, owner);
        die_with_parent(&mut cmd);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {}", bin.join("postgres").display()))?;
        let mut server = Self {
            child,
            port,
            password: password.to_string(),
            data_dir: data_dir.to_path_buf(),
            socket_dir,
            _lock: None,
        };
        server.wait_ready(bin, &log_path)?;
        Ok(server)
    }

    /// A connection URL for the `synatra` database.
    pub fn url(&self) -> String {
        self.url_for(DB)
    }

    /// A connection URL for another database on the same server.
    pub fn url_for(&self, database: &str) -> String {
        format!(
            "postgres://{DB}:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        )
    }

    /// The TCP port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The directory of the server's Unix socket (`.s.PGSQL.<port>`), when
    /// it has one: a local client reaches the server through it without the
    /// TCP stack's work per message.
    pub fn socket_dir(&self) -> Option<&Path> {
        self.socket_dir.as_deref()
    }

    fn wait_ready(&mut self, bin: &Path, log: &Path) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait()? {
                let mut text = String::new();
                std::fs::File::open(log)?.read_to_string(&mut text)?;
                bail!("postgres exited with {status} during start-up:\n{text}");
            }
            let ready = Command::new(bin.join("pg_isready"))
                .args([
                    "-q",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-d",
                    DB,
                    "-U",
                    DB,
                ])
                .status()
                .context("cannot run pg_isready")?;
            if ready.success() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "postgres did not become ready within 60 s; see {}",
                    log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Fast shutdown, waiting for the server to exit.
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        // SAFETY: plain signal to our own child process.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

fn init_cluster(
    bin: &Path,
    data_dir: &Path,
    password_file: &Path,
    owner: Option<User>,
) -> Result<()> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let password = random_hex(16)?;
    std::fs::write(password_file, &password)?;
    set_mode(password_file, 0o600)?;
    set_mode(data_dir, 0o700)?;
    let pwfile = data_dir.with_extension("pwfile");
    std::fs::write(&pwfile, &password)?;
    if let Some(u) = owner {
        chown(data_dir, u)?;
        chown(&pwfile, u)?;
    }
    let mut cmd = Command::new(bin.join("initdb"));
    cmd.arg("-D")
        .arg(data_dir)
        .args([
            "-U",
            DB,
            "-E",
            "UTF8",
            "--locale=C",
            "--auth=scram-sha-256",
            "--no-sync",
        ])
        .arg(format!("--pwfile={}", pwfile.display()))
        .stdout(Stdio::null());
    as_user(&mut cmd, owner);
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {}", bin.join("initdb").display()))?;
    let _ = std::fs::remove_file(&pwfile);
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(data_dir);
        bail!(
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stderr),
            if owner.is_some() {
                "\n(running as root: the data directory and its parents must be reachable by the `postgres` user; set DATABASE_URL or choose another --data-dir)"
            } else {
                ""
            }
        );
    }
    // The `synatra` database is created by the first start.
    let mut server = EmbeddedPostgres::start_bare(bin, data_dir, &password, owner)?;
    let status = Command::new(bin.join("createdb"))
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &server.port.to_string(),
            "-U",
            DB,
            DB,
        ])
        .env("PGPASSWORD", &password)
        .status()
        .context("cannot run createdb")?;
    server.stop();
    if !status.success() {
        bail!("createdb failed");
    }
    Ok(())
}

impl EmbeddedPostgres {
    fn start_bare(
        bin: &Path,
        data_dir: &Path,
        password: &str,
        owner: Option<User>,
    ) -> Result<Self> {
        let port = free_port()?;
        let mut cmd = Command::new(bin.join("postgres"));
        cmd.arg("-D")
            .arg(data_dir)
            .args([
                "-p",
                &port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "unix_socket_directories=",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        as_user(&mut cmd, owner);
        die_with_parent(&mut cmd);
        let child = cmd.spawn().context("cannot start postgres")?;
        let mut server = Self {
            child,
            port,
            password: password.to_string(),
            data_dir: data_dir.to_path_buf(),
            socket_dir: None,
            _lock: None,
        };
        let log = data_dir.join("postmaster.pid");
        server.wait_ready(bin, &log)?;
        Ok(server)
    }
}

/// Takes the data directory's lock, or says which process holds it.
fn lock_data_dir(data_dir: &Path) -> Result<std::fs::File> {
    use std::io::{Seek, Write};
    use std::os::unix::io::AsRawFd;
    let path = data_dir.with_extension("lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        bail!(
            "another process (PID {}) runs the embedded PostgreSQL in {}; stop it first, or use another --data-dir",
            holder.trim(),
            data_dir.display()
        );
    }
    file.set_len(0)?;
    file.rewind()?;
    write!(file, "{}", std::process::id())?;
    Ok(file)
}

/// With the data directory's lock held, a live server named by its
/// `postmaster.pid` was left by a process that died: stop it (immediate
/// shutdown) and wait until it is gone.
fn stop_orphaned_server(data_dir: &Path) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(data_dir.join("postmaster.pid")) else {
        return Ok(());
    };
    let Some(pid) = text
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<i32>().ok())
    else {
        return Ok(());
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let ours = String::from_utf8_lossy(&cmdline).contains(&*data_dir.to_string_lossy());
    if !ours {
        return Ok(());
    }
    eprintln!(
        "embedded-postgres: stopping PostgreSQL (PID {pid}) left behind by a crashed process"
    );
    // SAFETY: signalling a server process that runs on our data directory.
    unsafe { libc::kill(pid, libc::SIGQUIT) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: as above; the server did not stop on SIGQUIT.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    Ok(())
}

/// Whether start-up failed because of what a killed server left behind.
fn is_leftover_of_crash(error: &str) -> bool {
    error.contains("postmaster.pid\" already exists")
        || error.contains("shared memory block")
        || error.contains("Is another postmaster")
}

/// Finds the directory with `initdb`, `postgres` and `pg_isready`:
/// `SYNATRA_PG_BIN`, then `PATH`, then `/usr/lib/postgresql/<newest>/bin`.
pub fn find_bin_dir() -> Result<PathBuf> {
    if let Ok(dir) = std::env::var("SYNATRA_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|p| p.join("initdb").exists() && p.join("pg_isready").exists())
    });
    if let Some(dir) = on_path {
        return Ok(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, p)| p).context(
        "PostgreSQL server binaries not found: install the `postgresql` package (make up does) or set DATABASE_URL",
    )
}

#[derive(Debug, Clone, Copy)]
struct User {
    uid: u32,
    gid: u32,
}

/// The user to run the server as: `postgres` when we are root, else ourselves.
fn server_user() -> Result<Option<User>> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    let name = CString::new("postgres").expect("no NUL");
    // SAFETY: getpwnam returns NULL or a pointer to static storage, read at once.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        bail!("running as root needs the `postgres` system user (from the postgresql package)");
    }
    // SAFETY: pw is non-null and points to a valid passwd record.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Ok(Some(User { uid, gid }))
}

fn as_user(cmd: &mut Command, user: Option<User>) {
    if let Some(u) = user {
        cmd.uid(u.uid).gid(u.gid);
    }
}

fn die_with_parent(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe; it runs in the child after fork
    // (and after the uid change, which would otherwise clear it).
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

fn chown(path: &Path, user: User) -> Result<()> {
    std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
        .with_context(|| format!("cannot chown {}", path.display()))
}

/// Longest socket path the kernel takes (`sun_path` is 108 bytes with its
/// terminating NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Empties (a killed server leaves its socket behind) and creates
/// `<data dir>.sock`, enterable by the server's user only; `None` when the
/// socket's path would be too long, or the path is one PostgreSQL would
/// read as a list.
fn prepare_socket_dir(data_dir: &Path, port: u16, owner: Option<User>) -> Result<Option<PathBuf>> {
    let dir = data_dir.with_extension("sock");
    let socket = dir.join(format!(".s.PGSQL.{port}.lock"));
    let text = dir.to_string_lossy();
    if socket.as_os_str().len() > MAX_SOCKET_PATH || text.contains([',', '\'', '"', '\\']) {
        return Ok(None);
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot empty {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    set_mode(&dir, 0o700)?;
    if let Some(u) = owner {
        chown(&dir, u)?;
    }
    Ok(Some(dir))
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("cannot chmod {}", path.display()))
}

fn absolute(path: &Path) -> Result<PathBuf> {
    Ok(if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()?.join(path)
    })
}

/// A loopback port that is free right now.
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}
