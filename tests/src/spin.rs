//! The released Spin CLI (4.x) as the second host of the suites: found,
//! started with `spin up` on a free port, and killed with the test.
//!
//! Spin is found as `SPIN_BIN`, else `spin` on `PATH` if it reports 4.x,
//! else `../shared/tools/spin` beside the repository. Without one, a Spin
//! test prints that it was skipped and how to get Spin, unless
//! `SYNATRA_REQUIRE_SPIN` is set (CI sets it): then it fails.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use embedded_postgres::free_port;

use crate::Server;

/// Which host a case runs on: our `synatra up`, or the released Spin.
pub enum Backend {
    Synatra,
    Spin(PathBuf),
}

/// Declares each listed case (a `fn(&Backend)` in scope) twice: as a test
/// under `synatra up` (module `synatra`) and under the released Spin (module
/// `spin`, skipped with a notice when there is no Spin; see
/// [`spin_or_skip`]).
#[macro_export]
macro_rules! on_both_hosts {
    ($($case:ident),* $(,)?) => {
        mod synatra {
            $(#[test] fn $case() { super::$case(&$crate::spin::Backend::Synatra) })*
        }
        mod spin {
            $(#[test] fn $case() {
                if let Some(bin) = $crate::spin::spin_or_skip() {
                    super::$case(&$crate::spin::Backend::Spin(bin))
                }
            })*
        }
    };
}

/// `host:port` of a database URL (what `allowed_outbound_hosts` names).
pub fn host_port(url: &str) -> String {
    let after_at = url.rsplit_once('@').map(|(_, r)| r).unwrap_or(url);
    after_at.split('/').next().unwrap_or_default().to_string()
}

/// The Spin CLI to test against, if this machine has one.
pub fn spin_bin() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("SPIN_BIN") {
        return Some(PathBuf::from(bin));
    }
    let on_path = Command::new("spin").arg("--version").output();
    if let Ok(out) = on_path {
        if String::from_utf8_lossy(&out.stdout).starts_with("spin 4.") {
            return Some(PathBuf::from("spin"));
        }
    }
    // Beside the repository; a clone elsewhere on a workplace machine finds
    // the shared tools at their fixed place.
    [
        crate::repo_root().join("../shared/tools/spin"),
        PathBuf::from("/work/shared/tools/spin"),
    ]
    .into_iter()
    .find(|p| p.exists())
}

/// Spin, or `None` after printing why the test is skipped; panics instead
/// when `SYNATRA_REQUIRE_SPIN` is set.
pub fn spin_or_skip() -> Option<PathBuf> {
    let bin = spin_bin();
    if bin.is_none() {
        assert!(
            std::env::var_os("SYNATRA_REQUIRE_SPIN").is_none(),
            "SYNATRA_REQUIRE_SPIN is set but no Spin 4.x was found (SPIN_BIN, PATH, ../shared/tools/spin)"
        );
        eprintln!(
            "SKIPPED: no Spin 4.x CLI found. Install it (https://spinframework.dev/install) \
             or set SPIN_BIN to run the tests against the real Spin."
        );
    }
    bin
}

/// A running `spin up`.
pub struct SpinUp {
    child: Child,
    /// `http://127.0.0.1:<port>`
    pub base: String,
    log: PathBuf,
}

impl SpinUp {
    /// Starts `spin up --from manifest` with `env`; panics with its log if it
    /// does not serve.
    pub fn start(bin: &Path, manifest: &Path, env: &[(String, String)], args: &[&str]) -> Self {
        let mut attempts = 0;
        loop {
            match Self::try_start(bin, manifest, env, args) {
                Ok(spin) => return spin,
                Err(log) if log.contains("in use") && attempts < 3 => attempts += 1,
                Err(log) => panic!("spin up failed to start:\n{log}"),
            }
        }
    }

    /// Starts `spin up`; on failure returns its log.
    pub fn try_start(
        bin: &Path,
        manifest: &Path,
        env: &[(String, String)],
        args: &[&str],
    ) -> Result<Self, String> {
        static SWEPT: std::sync::Once = std::sync::Once::new();
        SWEPT.call_once(kill_orphaned_triggers);
        let port = free_port().unwrap();
        let log = manifest.with_extension(format!("spin-{port}.log"));
        let log_file = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(bin);
        cmd.arg("up")
            .arg("--from")
            .arg(manifest)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(args)
            .current_dir(manifest.parent().unwrap())
            .env("RUST_LOG", "spin=warn")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file);
        // `spin up` runs the app in a child (`spin trigger http`): a process
        // group of their own lets Drop kill both.
        cmd.process_group(0);
        // SAFETY: prctl in the forked child before exec; kills `spin up` if
        // the test process dies (its trigger child is swept by the next run).
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        let mut spin = SpinUp {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        // The first start unpacks the CLI (~141 MB): allow for it.
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if let Ok(Some(_)) = spin.child.try_wait() {
                return Err(spin.log());
            }
            if ureq::get(&format!("{}/.well-known/spin/health", spin.base))
                .timeout(Duration::from_secs(1))
                .call()
                .is_ok()
            {
                return Ok(spin);
            }
            if Instant::now() > deadline {
                return Err(format!("timed out\n{}", spin.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `spin up` expecting it to fail at start; returns its output.
    pub fn start_failure(bin: &Path, manifest: &Path, env: &[(String, String)]) -> String {
        match Self::try_start(bin, manifest, env, &[]) {
            Ok(spin) => panic!("spin up started although it should not:\n{}", spin.log()),
            Err(log) => log,
        }
    }
}

impl Server for SpinUp {
    fn base(&self) -> &str {
        &self.base
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for SpinUp {
    fn drop(&mut self) {
        // SAFETY: signalling the process group this struct started.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// Kills `spin trigger` processes left by test processes that died before
/// their Drop ran: orphans (parent 1) working in a test directory whose
/// owning process is gone.
fn kill_orphaned_triggers() {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        let parent = crate::proc_stat(pid as u32)
            .get(1)
            .and_then(|p| p.parse::<i32>().ok());
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
        let owner = cwd
            .to_string_lossy()
            .split("synatra-test-")
            .nth(1)
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        let orphan = parent == Some(1) && cmdline.contains("trigger");
        if let (true, Some(owner)) = (orphan, owner) {
            if !Path::new(&format!("/proc/{owner}")).exists() {
                // SAFETY: a leftover Spin process of a finished test run.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}
