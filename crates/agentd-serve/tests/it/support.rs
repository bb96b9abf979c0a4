//! Test harness: build a workflow from TOML, start a server on loopback, talk to it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use agentd_engine::audit::CollectingAudit;
use agentd_engine::{Engine, EngineOptions};
use agentd_serve::{CancellationToken, MapSecrets, ServeConfig, ServeExit, Server};
use agentd_store::Store;
use agentd_workflow::{NoFiles, SourceFile, ValidateOptions, Workflow};
use serde_json::Value;
use tokio::task::JoinHandle;

/// A started server with its shutdown switch.
pub struct TestServer {
    pub server: Arc<Server>,
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub run: Option<JoinHandle<ServeExit>>,
    pub audit: Arc<CollectingAudit>,
    pub secrets: Arc<MapSecrets>,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Fires shutdown and waits for the drain result.
    pub async fn stop(mut self) -> ServeExit {
        self.shutdown.cancel();
        self.run.take().expect("running").await.expect("run task")
    }

    /// Names of the audit events emitted so far.
    pub fn events(&self) -> Vec<String> {
        self.audit.events().into_iter().map(|(_, name, _)| name).collect()
    }
}

/// The standard echo graph: `main` → `echo` (json_select of the whole trigger).
pub const ECHO: &str = r#"
[[start_nodes]]
name = "main"
source = "http"
entry_node = "echo"

[[nodes]]
id = "echo"
type = "json_select"
input_from = "trigger"
path = ""
"#;

/// Validates a workflow text (panics with the diagnostics when invalid).
pub fn workflow(text: &str, dir: &Path) -> Arc<Workflow> {
    let source = SourceFile::new("test.toml", Some(dir.join("test.toml")), text.to_string());
    let options = ValidateOptions { mcp_stdio: false, cwd: dir.to_path_buf(), files: &NoFiles };
    match agentd_workflow::load(&source, &options) {
        Ok(workflow) => Arc::new(workflow),
        Err(failure) => panic!("invalid test workflow: {failure:?}"),
    }
}

pub fn engine(workflow: &Arc<Workflow>, audit: Arc<CollectingAudit>, dir: &Path) -> Arc<Engine> {
    let options = EngineOptions { cwd: dir.to_path_buf(), audit, durable: Default::default() };
    Arc::new(Engine::build(workflow.clone(), options).expect("engine"))
}

/// Options a test can change before start.
pub struct Setup {
    pub store: Option<Arc<dyn Store>>,
    pub drain_timeout: Duration,
    pub run_timeout: Duration,
    pub listen: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            store: None,
            drain_timeout: Duration::from_secs(10),
            run_timeout: Duration::from_secs(30),
            listen: true,
        }
    }
}

/// Starts a server for `text` in a fresh temp dir (created first so tests can put files there:
/// `prepare` gets the dir and returns the final workflow text).
pub async fn start_in(prepare: impl FnOnce(&Path) -> String, setup: Setup) -> Result<TestServer, agentd_serve::Error> {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = prepare(dir.path());
    let workflow = workflow(&text, dir.path());
    let audit = Arc::new(CollectingAudit::default());
    let engine = engine(&workflow, audit.clone(), dir.path());
    let secrets = Arc::new(MapSecrets::new());
    let mut config = ServeConfig::new(workflow, engine);
    config.bind = setup.listen.then(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    config.store = setup.store;
    config.drain_timeout = setup.drain_timeout;
    config.run_timeout = setup.run_timeout;
    config.base_dir = dir.path().to_path_buf();
    config.secrets = secrets.clone();
    config.audit = audit.clone();
    let server = Arc::new(Server::start(config).await?);
    let addr = server.local_addr().unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let shutdown = CancellationToken::new();
    let run = {
        let server = server.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move { server.run(shutdown).await })
    };
    Ok(TestServer { server, addr, shutdown, run: Some(run), audit, secrets, dir })
}

/// Starts a server for a workflow text.
pub async fn start(text: &str) -> TestServer {
    let text = text.to_string();
    start_in(move |_| text, Setup::default()).await.expect("server starts")
}

/// A plain HTTP client.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().expect("client")
}

/// The `final_value.value` of an echo outcome: the trigger value the workflow saw.
pub fn seen_trigger(body: &Value) -> &Value {
    &body["final_value"]["value"]
}

/// A gate file the `wait` graph blocks on until the test creates it.
pub fn gate_path(dir: &Path) -> PathBuf {
    dir.join("gate")
}

/// A graph whose run waits until the gate file named in its body exists (a hand-off the test
/// controls, not a timer).
pub fn waiting_graph() -> String {
    r#"
[[start_nodes]]
name = "main"
source = "http"
entry_node = "args"

[[nodes]]
id = "args"
type = "json_select"
input_from = "trigger"
path = "missing"

[[nodes]]
id = "wait"
type = "shell_run"
command = "/bin/sh"
args_from = "trigger.wait_args"
timeout_secs = 10

[[edges]]
from = "args"
to = "wait"
"#
    .to_string()
}

/// Body for the waiting graph: `sh -c 'until [ -e GATE ]; do sleep 0.01; done'`.
pub fn waiting_body(gate: &Path, extra: Value) -> Value {
    let mut body = serde_json::json!({
        "wait_args": ["-c", format!("until [ -e '{}' ]; do sleep 0.01; done", gate.display())]
    });
    if let (Value::Object(map), Value::Object(more)) = (&mut body, extra) {
        map.extend(more);
    }
    body
}

/// Polls `condition` (cheap, in-process) until it holds; panics after 10 s.
pub async fn eventually(mut condition: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached within 10 s");
}
