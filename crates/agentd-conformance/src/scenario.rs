//! The scenario file format (10 §2): strict serde types, one per table, and the loader that
//! turns a file into a [`Scenario`] or a load error.
//!
//! agentd 1.3 scenario files keep loading: every 1.3 key keeps its name and meaning, and the
//! extension keys are all optional. Unknown keys are rejected in every table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// A scenario file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// Scenario identity (reports, baselines, `--filter`).
    pub name: String,
    /// Informational.
    #[serde(default)]
    pub description: Option<String>,
    /// Tags against the capability matrix (§5).
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Number of trials; 0 is treated as 1.
    #[serde(default = "one")]
    pub trials: u32,
    /// Tolerated reliability bar in [0, 1].
    #[serde(default)]
    pub min_pass_rate: Option<f64>,
    /// Run deadline per trial in seconds (min 1), clamped by `[budget].max_run_time_secs`.
    #[serde(default = "thirty")]
    pub timeout_secs: u64,
    /// Platforms the scenario runs on (extension); elsewhere it is skipped.
    #[serde(default)]
    pub platforms: Option<Vec<Platform>>,
    /// Run trials with dry-run on (extension).
    #[serde(default)]
    pub dry_run: bool,
    /// Environment overlay (extension).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The workflow under test.
    pub workflow: WorkflowSource,
    /// How the run is triggered.
    #[serde(default)]
    pub trigger: TriggerSpec,
    /// Scripted model turns.
    #[serde(default)]
    pub intel: IntelSpec,
    /// Replaces the workflow's `[policy]` entirely (validated by the workflow validator).
    #[serde(default)]
    pub policy: Option<toml::Table>,
    /// Injected faults.
    #[serde(default)]
    pub faults: Faults,
    /// What a passing trial looks like.
    #[serde(default)]
    pub expected: Expected,
    /// Scripted MCP servers (extension).
    #[serde(default)]
    pub mcp: McpSpec,
    /// Loopback HTTP stub (extension).
    #[serde(default)]
    pub http: HttpSpec,
    /// Decision applied when a trial pauses (extension).
    #[serde(default)]
    pub approval: Option<ApprovalSpec>,
}

fn one() -> u32 {
    1
}

fn thirty() -> u64 {
    30
}

fn two_hundred() -> u16 {
    200
}

/// A platform name of `platforms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Platform {
    /// Linux.
    Linux,
    /// macOS.
    Macos,
    /// Windows.
    Windows,
    /// Any Unix.
    Unix,
}

impl Platform {
    /// Whether this build runs on the platform.
    pub fn is_current(self) -> bool {
        match self {
            Platform::Linux => cfg!(target_os = "linux"),
            Platform::Macos => cfg!(target_os = "macos"),
            Platform::Windows => cfg!(windows),
            Platform::Unix => cfg!(unix),
        }
    }
}

/// `[workflow]`: exactly one of `inline` / `path` should be given.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowSource {
    /// Workflow TOML text.
    #[serde(default)]
    pub inline: Option<String>,
    /// Workflow file relative to the scenario file's directory.
    #[serde(default)]
    pub path: Option<String>,
}

/// The trigger kind of a trial's run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// One-shot manual run.
    #[default]
    Manual,
    /// HTTP-triggered run (direct unless `[trigger.request]`).
    Http,
    /// Event-triggered run.
    Event,
    /// A cron fire (extension).
    Cron,
    /// An interval fire (extension).
    Interval,
    /// A file-system watch fire (extension).
    FsWatch,
}

impl TriggerKind {
    /// The trigger kind word the engine records.
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerKind::Manual => "manual",
            TriggerKind::Http => "http",
            TriggerKind::Event => "event",
            TriggerKind::Cron => "cron",
            TriggerKind::Interval => "interval",
            TriggerKind::FsWatch => "fs_watch",
        }
    }
}

/// `[trigger]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerSpec {
    /// Trigger kind.
    #[serde(default)]
    pub kind: TriggerKind,
    /// Start-node name (default: the workflow's first declared start node).
    #[serde(default)]
    pub start: Option<String>,
    /// Trigger input.
    #[serde(default)]
    pub payload: Option<Value>,
    /// Deliver over real HTTP (extension).
    #[serde(default)]
    pub request: Option<RequestSpec>,
}

/// `[trigger.request]`: deliveries to the workflow's real HTTP server.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    /// HTTP method (default `POST`).
    #[serde(default)]
    pub method: Option<String>,
    /// Request path (default: the first route whose `start_node` is the start).
    #[serde(default)]
    pub path: Option<String>,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Raw body (exclusive with `json`).
    #[serde(default)]
    pub body: Option<String>,
    /// JSON body (exclusive with `body`).
    #[serde(default)]
    pub json: Option<Value>,
    /// Number of sequential deliveries (default 1).
    #[serde(default)]
    pub repeat: Option<u32>,
}

/// `[intel]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntelSpec {
    /// One entry per successive model request (same keys as the scripted backend's turns).
    #[serde(default)]
    pub turns: Vec<agentd_intel::scripted::Turn>,
}

/// `[faults]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// The Nth model request fails with an injected transport fault.
    #[serde(default)]
    pub intel_error_on_call: Option<u32>,
    /// Same, for several requests (extension).
    #[serde(default)]
    pub intel_error_on_calls: Vec<u32>,
    /// The Nth `tools/call` answers JSON-RPC error -32603 (extension).
    #[serde(default)]
    pub mcp_error_on_call: Option<u32>,
    /// The Nth `tools/call` never answers (extension).
    #[serde(default)]
    pub mcp_hang_on_call: Option<u32>,
    /// The HTTP stub refuses connections (extension).
    #[serde(default)]
    pub http_stub_down: bool,
    /// Abandon the run after the checkpoint following this node, then resume it (extension).
    #[serde(default)]
    pub crash_after_node: Option<String>,
}

impl Faults {
    /// Every 1-based model request number that is faulted.
    pub fn intel_calls(&self) -> Vec<u32> {
        let mut calls: Vec<u32> =
            self.intel_error_on_call.into_iter().chain(self.intel_error_on_calls.clone()).collect();
        calls.sort_unstable();
        calls.dedup();
        calls
    }
}

/// A run status word of `[expected].status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusWord {
    /// `completed`.
    Completed,
    /// `failed`.
    Failed,
    /// `timed_out`.
    TimedOut,
    /// `paused`.
    Paused,
    /// `errored`.
    Errored,
    /// `rejected` (no delivery started a run).
    Rejected,
}

impl StatusWord {
    /// The word.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusWord::Completed => "completed",
            StatusWord::Failed => "failed",
            StatusWord::TimedOut => "timed_out",
            StatusWord::Paused => "paused",
            StatusWord::Errored => "errored",
            StatusWord::Rejected => "rejected",
        }
    }
}

/// `[expected]`: every key optional; only keys that are set are checked (§4).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    /// Exact run status.
    #[serde(default)]
    pub status: Option<StatusWord>,
    /// Exact `last_node`.
    #[serde(default)]
    pub last_node: Option<String>,
    /// Substring of the failed reason or errored error text.
    #[serde(default)]
    pub reason_contains: Option<String>,
    /// Prefix of the trace's node ids.
    #[serde(default)]
    pub path: Option<Vec<String>>,
    /// With `path`: the ids must equal `path` exactly.
    #[serde(default)]
    pub path_exact: bool,
    /// Upper bound of `cost.llm_calls`.
    #[serde(default)]
    pub max_llm_calls: Option<u64>,
    /// Upper bound of `cost.llm_tokens`.
    #[serde(default)]
    pub max_total_tokens: Option<u64>,
    /// Lower bound of `cost.policy_denials`.
    #[serde(default)]
    pub min_policy_denials: Option<u64>,
    /// Completed with this final value (extension).
    #[serde(default)]
    pub final_value: Option<Value>,
    /// Upper bound of `cost.policy_denials` (extension).
    #[serde(default)]
    pub max_policy_denials: Option<u64>,
    /// Lower bound of `cost.llm_calls` (extension).
    #[serde(default)]
    pub min_llm_calls: Option<u64>,
    /// Upper bound of `cost.node_executions` (extension).
    #[serde(default)]
    pub max_node_executions: Option<u64>,
    /// Lower bound of requests the stub received (extension).
    #[serde(default)]
    pub min_http_requests: Option<u64>,
    /// Upper bound of requests the stub received (extension).
    #[serde(default)]
    pub max_http_requests: Option<u64>,
    /// Paths that must exist after the trial (extension).
    #[serde(default)]
    pub present_paths: Vec<String>,
    /// Paths that must not exist after the trial (extension).
    #[serde(default)]
    pub absent_paths: Vec<String>,
    /// Upper bound of the trial's wall time (extension).
    #[serde(default)]
    pub max_latency_ms: Option<u64>,
    /// No resolved secret value may appear in the run's documents (extension).
    #[serde(default)]
    pub no_secret_leak: bool,
    /// Node id → expected subset of its stored output (extension).
    #[serde(default)]
    pub outputs: BTreeMap<String, Value>,
    /// Checks on the last HTTP delivery (extension).
    #[serde(default)]
    pub http: Option<ExpectedHttp>,
}

/// `[expected.http]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedHttp {
    /// Response status.
    #[serde(default)]
    pub status: Option<u16>,
    /// Substring of the response body.
    #[serde(default)]
    pub body_contains: Option<String>,
    /// Exact `Content-Type`.
    #[serde(default)]
    pub content_type: Option<String>,
    /// Exact header values (names case-insensitive).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Whether `X-Agentd-Idempotent-Replay: true` is present.
    #[serde(default)]
    pub replayed: Option<bool>,
}

/// `[mcp]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpSpec {
    /// Scripted servers by name.
    #[serde(default)]
    pub servers: BTreeMap<String, McpServerScript>,
}

/// Transport of a scripted MCP server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum McpTransport {
    /// A child process on stdin/stdout.
    #[default]
    Stdio,
    /// Streamable HTTP on loopback.
    Http,
}

/// `[mcp.servers.<name>]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServerScript {
    /// Transport (default stdio).
    #[serde(default)]
    pub transport: McpTransport,
    /// Listed tools; omitted → derived from the `calls` tool names.
    #[serde(default)]
    pub tools: Vec<McpTool>,
    /// Listed resources.
    #[serde(default)]
    pub resources: Vec<McpResource>,
    /// `tools/call` replies, FIFO per tool.
    #[serde(default)]
    pub calls: Vec<McpCall>,
    /// `resources/read` replies, FIFO per URI.
    #[serde(default)]
    pub reads: Vec<McpRead>,
}

/// A listed tool.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpTool {
    /// Tool name.
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// JSON Schema of the arguments.
    #[serde(default)]
    pub input_schema: Option<Value>,
}

/// A listed resource.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpResource {
    /// URI.
    pub uri: String,
    /// Name.
    #[serde(default)]
    pub name: Option<String>,
    /// MIME type.
    #[serde(default)]
    pub mime_type: Option<String>,
}

/// A JSON-RPC error reply.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct RpcError {
    /// Error code.
    pub code: i64,
    /// Error message.
    pub message: String,
}

/// A scripted `tools/call` reply.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpCall {
    /// The tool.
    pub tool: String,
    /// JSON-RPC result.
    #[serde(default)]
    pub result: Option<Value>,
    /// JSON-RPC error instead of a result.
    #[serde(default)]
    pub error: Option<RpcError>,
    /// Delay before answering.
    #[serde(default)]
    pub delay_ms: u64,
}

/// A scripted `resources/read` reply.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpRead {
    /// The URI.
    pub uri: String,
    /// JSON-RPC result.
    #[serde(default)]
    pub result: Option<Value>,
    /// JSON-RPC error instead of a result.
    #[serde(default)]
    pub error: Option<RpcError>,
    /// Delay before answering.
    #[serde(default)]
    pub delay_ms: u64,
}

/// `[http]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    /// Stubs, first match answers.
    #[serde(default)]
    pub stubs: Vec<StubSpec>,
}

/// One `[[http.stubs]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StubSpec {
    /// Method to match (default: any).
    #[serde(default)]
    pub method: Option<String>,
    /// Exact path (query ignored).
    pub path: String,
    /// Response status.
    #[serde(default = "two_hundred")]
    pub status: u16,
    /// Response headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Response body.
    #[serde(default)]
    pub body: String,
    /// Delay before answering.
    #[serde(default)]
    pub delay_ms: u64,
    /// 0 = unlimited, else matches only the first N requests.
    #[serde(default)]
    pub times: u32,
}

/// The decision of `[approval]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Approve and continue.
    Approve,
    /// Reject: the run ends failed.
    Reject,
}

/// `[approval]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalSpec {
    /// Approve or reject.
    pub decision: Decision,
    /// Approval note.
    #[serde(default)]
    pub note: Option<String>,
    /// Rejection reason.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A scenario that parsed; the workflow text is resolved but placeholders are still in it.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The file as written.
    pub file: ScenarioFile,
    /// Path of the scenario file.
    pub path: PathBuf,
    /// Canonical directory of the scenario file, forward slashes.
    pub dir: String,
    /// The workflow TOML text (inline or read from `path`).
    pub workflow_text: String,
    /// Absolute path of the workflow file (when `path` was used).
    pub workflow_path: Option<PathBuf>,
    /// Warnings to print (e.g. both `inline` and `path`).
    pub warnings: Vec<String>,
}

/// Parses scenario text; errors are one line with a position.
pub fn parse(text: &str) -> Result<ScenarioFile, String> {
    let deserializer = toml::Deserializer::parse(text).map_err(|e| toml_error(text, &e))?;
    let file: ScenarioFile = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let at = e.path().to_string();
        let inner = toml_error(text, e.inner());
        if at.is_empty() || at == "." { inner } else { format!("{at}: {inner}") }
    })?;
    check(&file)?;
    Ok(file)
}

/// A TOML error as one line: `line L, column C: message`.
pub fn toml_error(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().split_whitespace().collect::<Vec<_>>().join(" ");
    match error.span() {
        Some(span) => {
            let before = text.get(..span.start.min(text.len())).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

/// Value checks serde cannot express.
fn check(file: &ScenarioFile) -> Result<(), String> {
    if file.name.trim().is_empty() {
        return Err("`name` must not be empty".into());
    }
    if let Some(rate) = file.min_pass_rate
        && !(0.0..=1.0).contains(&rate)
    {
        return Err(format!("`min_pass_rate` must be within [0, 1], got {rate}"));
    }
    if let Some(request) = &file.trigger.request {
        if request.body.is_some() && request.json.is_some() {
            return Err("[trigger.request]: set `body` or `json`, not both".into());
        }
        if request.repeat == Some(0) {
            return Err("[trigger.request].repeat must be at least 1".into());
        }
    }
    for n in file.faults.intel_calls().iter().chain(&file.faults.mcp_error_on_call).chain(&file.faults.mcp_hang_on_call)
    {
        if *n == 0 {
            return Err("[faults]: call numbers start at 1".into());
        }
    }
    for (index, stub) in file.http.stubs.iter().enumerate() {
        if !stub.path.starts_with('/') {
            return Err(format!("[[http.stubs]] #{}: `path` must start with `/`", index + 1));
        }
        if !(100..=599).contains(&stub.status) {
            return Err(format!("[[http.stubs]] #{}: status {} is not an HTTP status", index + 1, stub.status));
        }
    }
    Ok(())
}

/// A scenario file that could not be loaded.
#[derive(Debug)]
pub struct LoadError {
    /// The file as parsed, when it got that far (its name and tags still count).
    pub parsed: Option<Box<ScenarioFile>>,
    /// One-line reason.
    pub message: String,
}

impl LoadError {
    fn new(parsed: Option<ScenarioFile>, message: String) -> LoadError {
        LoadError { parsed: parsed.map(Box::new), message }
    }
}

/// Reads and parses a scenario file, resolving `[workflow]`.
pub fn load(path: &Path) -> Result<Scenario, LoadError> {
    let bytes = std::fs::read(path).map_err(|e| LoadError::new(None, format!("read {}: {e}", path.display())))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| LoadError::new(None, "the scenario file is not valid UTF-8".to_string()))?;
    let file = parse(&text).map_err(|e| LoadError::new(None, e))?;
    let canonical_dir = path
        .parent()
        .map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p })
        .and_then(|p| std::fs::canonicalize(p).ok())
        .unwrap_or_else(|| PathBuf::from("."));
    let dir = canonical_dir.display().to_string().replace('\\', "/");
    let mut warnings = Vec::new();
    let (workflow_text, workflow_path) = match (&file.workflow.inline, &file.workflow.path) {
        (Some(inline), other) => {
            if other.is_some() {
                warnings.push("[workflow] has both `inline` and `path`; using `inline`".to_string());
            }
            (inline.clone(), None)
        }
        (None, Some(relative)) => {
            let full = canonical_dir.join(relative);
            match std::fs::read_to_string(&full) {
                Ok(text) => (text, Some(full)),
                Err(e) => return Err(LoadError::new(Some(file), format!("workflow {}: {e}", full.display()))),
            }
        }
        (None, None) => {
            return Err(LoadError::new(Some(file), "scenario.workflow needs `inline` or `path`".to_string()));
        }
    };
    Ok(Scenario { file, path: path.to_path_buf(), dir, workflow_text, workflow_path, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_scenario_parses_with_defaults() {
        let file = parse("name = \"x\"\n[workflow]\ninline = \"\"\n").expect("parses");
        assert_eq!(file.trials, 1);
        assert_eq!(file.timeout_secs, 30);
        assert_eq!(file.trigger.kind, TriggerKind::Manual);
    }

    #[test]
    fn garbage_is_a_one_line_error() {
        for (text, needle) in [
            ("name = \"x\"\nbogus = 1\n[workflow]\ninline = \"\"", "bogus"),
            ("name = 3", "line 1"),
            ("\u{0}\u{1}", "line 1"),
            ("name = \"x\"\nmin_pass_rate = 1.5\n[workflow]\ninline = \"\"", "min_pass_rate"),
            ("name = \"x\"\n[workflow]\ninline = \"\"\n[expected]\nstatus = \"done\"", "status"),
            ("name = \"x\"\n[workflow]\ninline = \"\"\n[expected]\nnope = 1", "nope"),
            ("name = \"x\"\n[workflow]\ninline = \"\"\n[[intel.turns]]\nstatuz = 1", "statuz"),
        ] {
            let error = parse(text).expect_err(text);
            assert!(error.contains(needle), "{text}: {error}");
            assert!(!error.contains('\n'), "{error}");
        }
    }
}
