//! Shared helpers: locating servers, building specs, starting HTTP servers on free ports.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use agentd_mcp::{Allowlist, CollectingAudit, HubOptions, McpHub, ServerSpec, TransportSpec};
use agentd_policy::NamePattern;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// The scripted server binary built with this test.
pub fn scripted_binary() -> String {
    env!("CARGO_BIN_EXE_agentd-mcp-scripted").to_owned()
}

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `dist/index.js` of the npm server-everything installed by `scripts/deps/10-mcp-servers.sh`.
/// Panics (fails the test) with instructions when it is not installed.
pub fn everything_entry() -> PathBuf {
    let entry = workspace_root()
        .join("target/test-deps/mcp/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(
        entry.is_file(),
        "the npm MCP server-everything is not installed at {}: run scripts/deps/10-mcp-servers.sh (or scripts/test)",
        entry.display()
    );
    entry
}

/// Parsed allowlist patterns (test input, known good).
pub fn patterns(entries: &[&str]) -> Vec<NamePattern> {
    entries.iter().map(|entry| NamePattern::parse(entry).unwrap_or_else(|e| panic!("{entry}: {e}"))).collect()
}

/// A spec with the given transport and allowlists, 5 s request and 20 s startup timeouts.
pub fn spec(name: &str, transport: TransportSpec, tools: &[&str], resources: &[&str]) -> ServerSpec {
    ServerSpec {
        name: name.to_owned(),
        transport,
        allowlist: Allowlist::Patterns { tools: patterns(tools), resources: patterns(resources) },
        request_timeout: Duration::from_secs(5),
        startup_timeout: Duration::from_secs(20),
        tool_pins: BTreeMap::new(),
    }
}

/// A stdio transport running `command`.
pub fn stdio(command: &[&str]) -> TransportSpec {
    TransportSpec::Stdio {
        command: command.iter().map(|part| (*part).to_owned()).collect(),
        env: BTreeMap::new(),
        env_passthrough: Vec::new(),
    }
}

/// An HTTP transport to `url` with no headers.
pub fn http(url: &str) -> TransportSpec {
    TransportSpec::Http { url: url.to_owned(), headers: BTreeMap::new() }
}

/// Hub options with a collecting audit sink and a short respawn interval.
pub fn options(audit: &Arc<CollectingAudit>) -> HubOptions {
    HubOptions { audit: audit.clone(), respawn_interval: Duration::from_millis(200), ..HubOptions::default() }
}

/// Starts a hub or fails the test with the startup error.
pub async fn start(specs: Vec<ServerSpec>, options: HubOptions) -> McpHub {
    match McpHub::start(specs, options).await {
        Ok(hub) => hub,
        Err(error) => panic!("hub did not start: {error}"),
    }
}

/// Writes `text` to `name` in `dir` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}

/// A server process started for one test; killed when dropped.
pub struct HttpServer {
    /// The `/mcp` endpoint.
    pub url: String,
    _child: Child,
}

/// Starts the scripted server over HTTP on a free port and waits for its `listening on` line.
pub async fn scripted_http(script: &Path, call_log: Option<&Path>) -> HttpServer {
    scripted_http_on(script, "127.0.0.1:0", call_log).await
}

/// Starts the scripted server over HTTP on `address` (`127.0.0.1:PORT`).
pub async fn scripted_http_at(script: &Path, address: &str) -> HttpServer {
    scripted_http_on(script, address, None).await
}

async fn scripted_http_on(script: &Path, address: &str, call_log: Option<&Path>) -> HttpServer {
    let mut command = Command::new(scripted_binary());
    command.arg(script).args(["--http", address]);
    if let Some(log) = call_log {
        command.arg("--call-log").arg(log);
    }
    command.stdout(Stdio::piped()).stderr(Stdio::inherit()).kill_on_drop(true);
    let mut child = command.spawn().unwrap_or_else(|e| panic!("spawn scripted server: {e}"));
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await;
    let line = match line {
        Ok(Ok(Some(line))) => line,
        other => panic!("scripted server did not report its address: {other:?}"),
    };
    let url = line.strip_prefix("listening on ").unwrap_or_else(|| panic!("unexpected line {line}")).to_owned();
    HttpServer { url, _child: child }
}

/// Starts server-everything over streamable HTTP on a free port; waits until it accepts
/// connections.
pub async fn everything_http() -> HttpServer {
    let entry = everything_entry();
    let port = free_port();
    let mut child = Command::new("node")
        .arg(&entry)
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn node: {e}"));
    wait_for_output(&mut child, port).await;
    HttpServer { url: format!("http://127.0.0.1:{port}/mcp"), _child: child }
}

/// Waits for the server's "listening" log line naming `port` (on stdout or stderr).
async fn wait_for_output(child: &mut Child, port: u16) {
    let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let stderr = child.stderr.take().unwrap_or_else(|| panic!("no stderr"));
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<String>();
    for stream in [Box::new(stdout) as Box<dyn tokio::io::AsyncRead + Unpin + Send>, Box::new(stderr)] {
        let sender = sender.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let _ = sender.send(line);
            }
        });
    }
    drop(sender);
    let needle = port.to_string();
    let waited = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = receiver.recv().await {
            if line.contains(&needle) {
                return true;
            }
        }
        false
    })
    .await;
    assert!(matches!(waited, Ok(true)), "server-everything did not report listening on port {port}");
}

/// A port that was free a moment ago (the OS picks it).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    listener.local_addr().map(|address| address.port()).unwrap_or_else(|e| panic!("addr: {e}"))
}

/// The methods and tool names in a scripted server's call log.
pub fn logged_calls(log: &Path) -> Vec<(String, Option<String>)> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .map(|entry| {
            let method = entry["method"].as_str().unwrap_or_default().to_owned();
            let name = entry["params"]["name"].as_str().map(str::to_owned);
            (method, name)
        })
        .collect()
}
