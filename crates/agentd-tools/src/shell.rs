//! `shell_run`: one program, argv only, under the shell policy (04 §5.2, 05 §3.3).
//!
//! The command must be an absolute path; it is canonicalised (symlinks resolved) and the
//! canonical path is what policy checks and what is executed, with no shell and no PATH search.
//! The child gets an empty stdin, a scrubbed environment and its own process group; the whole
//! group is killed on timeout, on cancellation, when the caller drops the future, and after the
//! leader exits (so nothing it forked outlives the node).

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use agentd_policy::Policy;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::Error;

/// Each stream is kept up to this many bytes (04 §5.2 step 7).
pub const MAX_STREAM_BYTES: usize = 65_536;
/// The only environment the child sees (04 §5.2 step 6).
pub const CHILD_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// How long output is still drained after the leader exits, for pipes a killed descendant held.
const DRAIN_GRACE: Duration = Duration::from_millis(200);

/// Checks an absolute command path: canonicalise, then ask policy. Returns the canonical path.
pub fn check(op: &'static str, policy: &Policy, command: &str) -> Result<PathBuf, Error> {
    if !Path::new(command).is_absolute() {
        return Err(Error::Failed(format!("shell_run requires an absolute path; got `{}`", command.escape_debug())));
    }
    let canonical = std::fs::canonicalize(command)
        .map_err(|e| Error::Failed(format!("resolve {}: {e}", command.escape_debug())))?;
    let decision = policy.check_shell(&canonical);
    if decision.allowed {
        Ok(canonical)
    } else {
        Err(Error::Denied { op, target: canonical.display().to_string(), decision })
    }
}

/// What ran and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    /// Exit status, `-1` when killed by a signal.
    pub exit_code: i32,
    /// Signal number that ended it, if any.
    pub signal: Option<i32>,
    /// Captured stdout (lossy UTF-8).
    pub stdout: String,
    /// Captured stderr (lossy UTF-8).
    pub stderr: String,
    /// Whether the timeout killed it.
    pub timed_out: bool,
    /// Whether either stream went over [`MAX_STREAM_BYTES`].
    pub truncated: bool,
    /// Wall time from spawn to exit.
    pub duration: Duration,
}

/// How a run of the program is bounded.
pub struct Limits<'a> {
    /// Kill the group after this long.
    pub timeout: Duration,
    /// Working directory.
    pub cwd: &'a Path,
    /// Extra environment entries (e.g. `AGENTD_EFFECT_KEY`).
    pub extra_env: &'a [(String, String)],
}

/// Runs the canonical `program` with `args`. `Ok` covers every way the process ended (exit,
/// signal, timeout); `Err` is a spawn or wait failure. Dropping the future (cancellation, the
/// run deadline) kills the process group.
pub async fn run(program: &Path, args: &[String], limits: Limits<'_>) -> Result<Finished, Error> {
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .env_clear()
        .env("PATH", CHILD_PATH)
        .env("LANG", "C.UTF-8")
        .envs(limits.extra_env.iter().map(|(k, v)| (k, v)))
        .current_dir(limits.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = command.spawn().map_err(|e| Error::Failed(format!("spawn {}: {e}", program.display())))?;
    let group = GroupGuard::new(child.id());
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let capture = async move { tokio::join!(capture(stdout), capture(stderr)) };
    tokio::pin!(capture);

    let mut captured = None;
    let mut timed_out = false;
    let deadline = tokio::time::sleep(limits.timeout);
    tokio::pin!(deadline);
    let status: ExitStatus = loop {
        tokio::select! {
            status = child.wait() => {
                break status.map_err(|e| Error::Failed(format!("wait {}: {e}", program.display())))?;
            }
            out = &mut capture, if captured.is_none() => captured = Some(out),
            () = &mut deadline, if !timed_out => {
                timed_out = true;
                group.kill();
            }
        }
    };
    let duration = started.elapsed();
    // Descendants may still hold the pipes: kill the group, then drain briefly.
    group.kill();
    group.disarm();
    let ((stdout, out_cut), (stderr, err_cut)) = match captured {
        Some(out) => out,
        None => match tokio::time::timeout(DRAIN_GRACE, &mut capture).await {
            Ok(out) => out,
            Err(_) => ((Vec::new(), true), (Vec::new(), true)),
        },
    };
    Ok(finished(status, stdout, stderr, out_cut || err_cut, timed_out, duration))
}

fn finished(
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    truncated: bool,
    timed_out: bool,
    duration: Duration,
) -> Finished {
    use std::os::unix::process::ExitStatusExt;
    let signal = status.signal();
    Finished {
        exit_code: status.code().unwrap_or(-1),
        signal,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        timed_out,
        truncated,
        duration,
    }
}

/// Reads a stream to its end, keeping the first [`MAX_STREAM_BYTES`] and discarding the rest.
async fn capture(stream: Option<impl AsyncRead + Unpin>) -> (Vec<u8>, bool) {
    let Some(mut stream) = stream else { return (Vec::new(), false) };
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = MAX_STREAM_BYTES - kept.len();
                if n > room {
                    truncated = true;
                }
                kept.extend_from_slice(&buffer[..n.min(room)]);
            }
        }
    }
    (kept, truncated)
}

/// Kills the child's whole process group (SIGKILL), also when dropped, until disarmed.
/// `0` = disarmed.
struct GroupGuard(AtomicU32);

impl GroupGuard {
    fn new(pid: Option<u32>) -> GroupGuard {
        GroupGuard(AtomicU32::new(pid.unwrap_or(0)))
    }

    /// After the leader was reaped and the group killed once, the id may be reused: stop.
    fn disarm(&self) {
        self.0.store(0, Ordering::SeqCst);
    }

    fn kill(&self) {
        let pid = self.0.load(Ordering::SeqCst);
        let Some(pid) = i32::try_from(pid).ok().filter(|&p| p > 0) else { return };
        // ESRCH (group already gone) is the common, harmless case.
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}
