//! Starts `tests/support/jsonrpc_server.py` (stdlib only) and waits for its READY line.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A running Python JSON-RPC server; killed on drop.
pub struct PythonServer {
    _child: Child,
    /// `unix`: the socket path; `http`: `http://127.0.0.1:<port>/rpc`.
    pub endpoint: String,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/jsonrpc_server.py")
}

async fn spawn(args: &[&str]) -> PythonServer {
    let mut child = Command::new("python3")
        .arg(script())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 must be installed");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await;
    let line = ready.expect("server start timed out").expect("read stdout").expect("server exited before READY");
    let endpoint = line.strip_prefix("READY ").expect("READY line").to_string();
    PythonServer { _child: child, endpoint }
}

/// A framed JSON-RPC server on a Unix socket at `path`.
pub async fn unix(path: &Path) -> PythonServer {
    spawn(&["unix", path.to_str().expect("utf-8 path")]).await
}

/// An HTTP JSON-RPC server on 127.0.0.1 (ephemeral port), requiring `bearer` when given.
pub async fn http(bearer: Option<&str>) -> PythonServer {
    match bearer {
        Some(token) => spawn(&["http", "--bearer", token]).await,
        None => spawn(&["http"]).await,
    }
}
