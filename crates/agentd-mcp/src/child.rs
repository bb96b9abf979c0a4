//! The stdio child process of one server (`08` §1.3): spawned in its own process group with a
//! minimal environment, stderr pumped into the log, exit watched, stopped gracefully.
//!
//! One task owns the process. It reports the exit status through a `watch` channel, emits
//! `mcp.server_exited` when the exit was not asked for, and kills the group when the
//! [`ChildProcess`] handle is dropped, so no child outlives the hub.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use process_wrap::tokio::{ChildWrapper, CommandWrap, KillOnDrop, ProcessGroup};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{ChildStdin, ChildStdout};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::hooks::{AuditEvents, AuditLevel, Scrubber};

/// Variables copied from the runtime's environment into every child when set (`08` §1.3).
const INHERITED_VARIABLES: [&str; 9] =
    ["PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR"];
/// Stderr lines are cut to this many bytes.
const MAX_STDERR_LINE: usize = 4096;
/// How long each step of the stop sequence waits for the child to exit.
const STOP_STEP: Duration = Duration::from_secs(2);
/// SIGTERM (the same number on every Unix this runs on).
#[cfg(unix)]
const SIGTERM: i32 = 15;

/// What a spawn needs besides the argv.
pub(crate) struct SpawnRequest<'a> {
    /// The server name (log and audit field).
    pub server: &'a str,
    /// Program and arguments.
    pub command: &'a [String],
    /// Child variables with resolved secret values (override everything else).
    pub secret_env: BTreeMap<String, String>,
    /// Names copied from the runtime's environment when set.
    pub passthrough: &'a [String],
    /// Where `mcp.server_exited` goes.
    pub audit: Arc<dyn AuditEvents>,
    /// Scrubs stderr lines.
    pub scrubber: Scrubber,
}

/// A running child: its pipes were handed to the transport, this keeps the process.
#[derive(Debug)]
pub(crate) struct ChildProcess {
    exit: watch::Receiver<Option<String>>,
    stop: CancellationToken,
    kill: CancellationToken,
}

impl ChildProcess {
    /// Spawns the child and returns it with its stdout and stdin.
    pub(crate) fn spawn(request: SpawnRequest<'_>) -> Result<(Self, ChildStdout, ChildStdin), String> {
        let program = resolve_program(&request.command[0])?;
        tracing::info!(target: "agentd::mcp", server = request.server, program = %program.display(), "spawning MCP server");
        let mut command = tokio::process::Command::new(&program);
        command.args(&request.command[1..]).env_clear();
        command.envs(child_environment(request.passthrough, &request.secret_env));
        command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut wrapped = CommandWrap::from(command);
        #[cfg(unix)]
        wrapped.wrap(ProcessGroup::leader());
        wrapped.wrap(KillOnDrop);
        let mut child = wrapped.spawn().map_err(|error| format!("cannot spawn `{}`: {error}", program.display()))?;
        let stdout = child.stdout().take().ok_or("the child has no stdout pipe")?;
        let stdin = child.stdin().take().ok_or("the child has no stdin pipe")?;
        if let Some(stderr) = child.stderr().take() {
            tokio::spawn(pump_stderr(request.server.to_owned(), stderr, request.scrubber.clone()));
        }
        let (exit_sender, exit) = watch::channel(None);
        let stop = CancellationToken::new();
        let kill = CancellationToken::new();
        let watcher =
            Watcher { server: request.server.to_owned(), audit: request.audit, stop: stop.clone(), kill: kill.clone() };
        tokio::spawn(watcher.run(child, exit_sender));
        Ok((Self { exit, stop, kill }, stdout, stdin))
    }

    /// The exit status as text once the child has exited.
    pub(crate) fn exit_status(&self) -> Option<String> {
        self.exit.borrow().clone()
    }

    /// Waits up to `limit` for the exit status (the transport may see EOF a moment before the
    /// process is reaped).
    pub(crate) async fn wait_exit_status(&self, limit: Duration) -> Option<String> {
        let mut exit = self.exit.clone();
        let waited = tokio::time::timeout(limit, exit.wait_for(Option::is_some)).await;
        match waited {
            Ok(Ok(status)) => status.clone(),
            _ => self.exit_status(),
        }
    }

    /// The graceful stop (`08` §1.3): the caller has already closed stdin by dropping the
    /// transport; wait 2 s, SIGTERM the group, wait 2 s, SIGKILL. Returns once the child is gone.
    pub(crate) async fn stop(&self) {
        self.stop.cancel();
        let mut exit = self.exit.clone();
        let _ = exit.wait_for(Option::is_some).await;
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        self.kill.cancel();
    }
}

/// The task that owns the process.
struct Watcher {
    server: String,
    audit: Arc<dyn AuditEvents>,
    stop: CancellationToken,
    kill: CancellationToken,
}

impl Watcher {
    async fn run(self, mut child: Box<dyn ChildWrapper>, exit: watch::Sender<Option<String>>) {
        let (status, expected) = tokio::select! {
            status = child.wait() => (status, false),
            () = self.stop.cancelled() => (graceful_stop(&mut child, &self.kill).await, true),
            () = self.kill.cancelled() => (kill_now(&mut child).await, true),
        };
        let text = describe(&status);
        if !expected {
            tracing::warn!(target: "agentd::mcp", server = %self.server, status = %text, "MCP server exited");
            self.audit.emit(AuditLevel::Warn, "mcp.server_exited", json!({"server": self.server, "status": text}));
        }
        let _ = exit.send(Some(text));
    }
}

async fn graceful_stop(child: &mut Box<dyn ChildWrapper>, kill: &CancellationToken) -> std::io::Result<ExitStatus> {
    if let Some(status) = wait_step(child, kill).await {
        return status;
    }
    #[cfg(unix)]
    let _ = child.signal(SIGTERM);
    if let Some(status) = wait_step(child, kill).await {
        return status;
    }
    kill_now(child).await
}

/// Waits one stop step; `None` when the child is still running afterwards.
async fn wait_step(child: &mut Box<dyn ChildWrapper>, kill: &CancellationToken) -> Option<std::io::Result<ExitStatus>> {
    tokio::select! {
        status = tokio::time::timeout(STOP_STEP, child.wait()) => status.ok(),
        () = kill.cancelled() => None,
    }
}

async fn kill_now(child: &mut Box<dyn ChildWrapper>) -> std::io::Result<ExitStatus> {
    let _ = child.start_kill();
    child.wait().await
}

fn describe(status: &std::io::Result<ExitStatus>) -> String {
    match status {
        Ok(status) => status.to_string(),
        Err(error) => format!("unknown status: {error}"),
    }
}

/// The child's environment: the inherited basics, then `env_passthrough`, then secret values.
fn child_environment(passthrough: &[String], secrets: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut environment = BTreeMap::new();
    let names = INHERITED_VARIABLES.iter().map(|name| (*name).to_owned()).chain(passthrough.iter().cloned());
    for name in names {
        if let Ok(value) = std::env::var(&name) {
            environment.insert(name, value);
        }
    }
    environment.extend(secrets.iter().map(|(name, value)| (name.clone(), value.clone())));
    environment
}

/// `command[0]` as a path: with a `/` as given, else the first executable match in `PATH`.
fn resolve_program(program: &str) -> Result<PathBuf, String> {
    if program.contains('/') {
        return Ok(PathBuf::from(program));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|directory| directory.join(program))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| format!("command `{program}` not found in PATH"))
}

fn is_executable(candidate: &Path) -> bool {
    let Ok(metadata) = candidate.metadata() else { return false };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        metadata.is_file() && metadata.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        metadata.is_file()
    }
}

/// Logs stderr line by line at debug level, each line cut to 4 KiB and scrubbed; the rest of an
/// over-long line is skipped without being buffered.
async fn pump_stderr(server: String, stderr: impl AsyncRead + Unpin, scrubber: Scrubber) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::with_capacity(256);
    loop {
        match read_bounded_line(&mut reader, &mut line).await {
            Ok(false) => return,
            Ok(true) => {
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end_matches(['\r', '\n']);
                if !text.is_empty() {
                    tracing::debug!(target: "agentd::mcp", server = %server, line = %scrubber.scrub(text), "stderr");
                }
            }
            Err(_) => return,
        }
    }
}

/// Reads one line into `line` (at most [`MAX_STDERR_LINE`] bytes kept); `false` at end of file.
async fn read_bounded_line<R: AsyncBufReadExt + Unpin>(reader: &mut R, line: &mut Vec<u8>) -> std::io::Result<bool> {
    line.clear();
    let mut read_any = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(read_any);
        }
        read_any = true;
        let newline = available.iter().position(|byte| *byte == b'\n');
        let take = newline.map_or(available.len(), |index| index + 1);
        let room = MAX_STDERR_LINE.saturating_sub(line.len());
        line.extend_from_slice(&available[..take.min(room)]);
        reader.consume(take);
        if newline.is_some() {
            return Ok(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn long_lines_are_cut_without_buffering_them() {
        let mut input = vec![b'x'; 10_000];
        input.extend_from_slice(b"\nshort\n");
        let mut reader = BufReader::new(&input[..]);
        let mut line = Vec::new();
        assert!(read_bounded_line(&mut reader, &mut line).await.unwrap_or(false));
        assert_eq!(line.len(), MAX_STDERR_LINE);
        assert!(read_bounded_line(&mut reader, &mut line).await.unwrap_or(false));
        assert_eq!(line, b"short\n");
        assert!(!read_bounded_line(&mut reader, &mut line).await.unwrap_or(true));
    }

    #[test]
    fn the_environment_is_minimal_and_secrets_win() {
        let secrets = BTreeMap::from([("PATH".to_owned(), "/secret/bin".to_owned())]);
        let environment = child_environment(&[], &secrets);
        assert_eq!(environment.get("PATH").map(String::as_str), Some("/secret/bin"));
        assert!(environment.keys().all(|name| INHERITED_VARIABLES.contains(&name.as_str())));
    }

    #[test]
    fn programs_are_looked_up_in_path() {
        assert!(resolve_program("sh").is_ok_and(|path| path.is_absolute()));
        assert!(resolve_program("agentd-no-such-program").is_err());
    }
}
