//! The 24 node kinds (04-nodes.md): one config struct per kind, every field documented.
//!
//! The registry is [`NodeKind`]: adding a kind adds a variant, a struct and one line in
//! [`NodeKind::from_type`]; exhaustive matches in the validator and the engine find the rest.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::template::Template;
use crate::value_path::{ContextPath, DataPath};

impl<'de> Deserialize<'de> for Template {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Ok(Template::parse(&raw))
    }
}

/// `condition`: label `true`/`false` by the truthiness of `expr`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionNode {
    /// Value to test; not set → null.
    pub expr: ContextPath,
}

/// `switch`: label = the value of `expr` rendered as a switch label.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchNode {
    /// Value to branch on; not set → null.
    pub expr: ContextPath,
}

/// `merge` and `terminate`: no fields.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoFields {}

/// `fail`: ends the run `failed`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailNode {
    /// Literal failure reason (default `workflow failed`).
    pub reason: Option<String>,
}

/// `pause_for_approval`: checkpoint and pause; handled by the engine, never dispatched.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PauseNode {
    /// Operator prompt, stored in the checkpoint and the paused outcome.
    pub reason: Option<String>,
}

/// `respond`: records the HTTP reply of the run.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RespondNode {
    /// Body template rendered against the data value.
    pub body_template: Template,
    /// HTTP status, 100..=599 (default 200). Wide integer so any value reaches the validator.
    pub status: Option<i64>,
    /// Content type (default `application/json`); must not be blank.
    pub content_type: Option<String>,
    /// Data value; absent → raw trigger input; not set → error.
    pub input_from: Option<ContextPath>,
}

/// `parse_json`: parse a string as JSON.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParseJsonNode {
    /// Must resolve to a string; not set → error.
    pub input_from: ContextPath,
}

/// `json_select`: pick a value by a relative path.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonSelectNode {
    /// Value to select from; not set → error.
    pub input_from: ContextPath,
    /// Dotted path relative to that value (`""` = the whole value).
    pub path: DataPath,
}

/// `template_render`: render a template to a string.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateRenderNode {
    /// The template.
    pub template: Template,
    /// Data value; absent → null; not set → error.
    pub input_from: Option<ContextPath>,
}

/// `diff_compute`: structural diff of two values.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffComputeNode {
    /// Old value; not set → error.
    pub left_from: ContextPath,
    /// New value; not set → error.
    pub right_from: ContextPath,
}

/// `read_file`, `create_dir`: one path.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathNode {
    /// File or directory path; must be a string; not set → error.
    pub path_from: ContextPath,
}

/// `write_file`: write content to a file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteFileNode {
    /// Target path; must be a string; not set → error.
    pub path_from: ContextPath,
    /// Content; a string is written raw, other values as compact JSON; not set → error.
    pub content_from: ContextPath,
}

/// `read_env`: read one process environment variable.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadEnvNode {
    /// Literal variable name.
    pub key: String,
}

/// `http_request`: one outbound HTTP request.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpRequestNode {
    /// Literal method, upper-cased before use.
    pub method: String,
    /// Absolute http(s) URL; must be a string; not set → error.
    pub url_from: ContextPath,
    /// Request body; string raw, other values compact JSON; not set → error.
    pub body_from: Option<ContextPath>,
    /// Declared headers: literal text plus `{{secret:NAME}}` placeholders only.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// `shell_run`: spawn an absolute program with argv.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShellRunNode {
    /// Literal absolute path of the program.
    pub command: String,
    /// Array of strings; not set or null → `[]`.
    pub args_from: Option<ContextPath>,
    /// Kill after this many seconds (default 30; below 1 acts as 1).
    pub timeout_secs: Option<u64>,
}

/// `call_mcp_tool`: `tools/call` on an MCP server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallMcpToolNode {
    /// Literal tool name.
    pub tool: String,
    /// Arguments object; not set or null → no arguments.
    pub args_from: Option<ContextPath>,
    /// Server name (absent → the only configured server).
    pub server: Option<String>,
}

/// `read_mcp_resource`: `resources/read` on an MCP server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadMcpResourceNode {
    /// Resource URI; must be a string; not set → error.
    pub resource_from: ContextPath,
    /// Server name (absent → the only configured server).
    pub server: Option<String>,
}

/// `output_schema` of `llm_infer`: `"inline"`/`"json"`, a schema file path, or an inline table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum OutputSchema {
    /// `"inline"`, `"json"`, or the path of a JSON Schema file.
    Named(String),
    /// An inline JSON Schema (extension).
    Inline(serde_json::Map<String, serde_json::Value>),
}

/// `llm_infer`: one model call with an optional output contract.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmInferNode {
    /// Backend name; `default` = the CLI transport.
    pub backend: String,
    /// User-message template.
    pub prompt: Template,
    /// Template data; not set → null.
    pub input_from: Option<ContextPath>,
    /// Output contract.
    pub output_schema: Option<OutputSchema>,
    /// Extra re-prompt rounds after a rejected output (default 0).
    #[serde(default)]
    pub output_repairs: u32,
    /// Output-token cap per request (extension).
    pub max_tokens: Option<u32>,
    /// Sampling temperature 0.0..=2.0 (extension).
    pub temperature: Option<f64>,
}

/// `agent_loop`: a bounded tool loop.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentLoopNode {
    /// Backend name.
    pub backend: String,
    /// Inline task text (wins when both are set).
    pub instructions: Option<String>,
    /// Task from the context.
    pub instructions_from: Option<ContextPath>,
    /// Subset of the six loop tools; must be non-empty (validator).
    #[serde(default)]
    pub tools: Vec<String>,
    /// 1..=64 (validator). Wide integer so any value reaches the validator.
    pub max_steps: i64,
    /// Cumulative token cap for this node.
    pub max_tokens: Option<u64>,
    /// Output-token cap per step (extension).
    pub step_max_tokens: Option<u32>,
    /// Sampling temperature 0.0..=2.0 (extension).
    pub temperature: Option<f64>,
    /// Cap on one tool result fed back to the model (extension, min 1024).
    pub max_result_bytes: Option<u32>,
}

/// `call`: run a child workflow.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallNode {
    /// Child workflow file (literal path).
    pub workflow: String,
    /// Child input; absent → raw trigger input of the parent; not set → null.
    pub input_from: Option<ContextPath>,
    /// Child start name (default: the child's first start node).
    pub start: Option<String>,
}

/// One branch of `parallel`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParallelBranch {
    /// Child workflow file.
    pub workflow: String,
    /// Child input; absent → raw trigger input; not set → null.
    pub input_from: Option<ContextPath>,
    /// Child start name.
    pub start: Option<String>,
}

/// `parallel`: fan out several child workflows and wait for all.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParallelNode {
    /// The branches, run concurrently.
    pub branches: Vec<ParallelBranch>,
}

/// `map`: one child run per array element.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapNode {
    /// Must resolve to an array.
    pub items_from: ContextPath,
    /// Child workflow file (must not be blank).
    pub workflow: String,
    /// Hard upper bound on the array length (≥ 1).
    pub max_items: u32,
    /// Children in flight at most (default 4, ≥ 1).
    pub max_concurrent: Option<u32>,
    /// Child start name.
    pub start: Option<String>,
}

/// A node's kind and its kind-specific configuration.
#[derive(Debug, Clone)]
pub enum NodeKind {
    /// `condition`
    Condition(ConditionNode),
    /// `switch`
    Switch(SwitchNode),
    /// `merge`
    Merge(NoFields),
    /// `fail`
    Fail(FailNode),
    /// `terminate`
    Terminate(NoFields),
    /// `pause_for_approval`
    PauseForApproval(PauseNode),
    /// `respond`
    Respond(RespondNode),
    /// `parse_json`
    ParseJson(ParseJsonNode),
    /// `json_select`
    JsonSelect(JsonSelectNode),
    /// `template_render`
    TemplateRender(TemplateRenderNode),
    /// `diff_compute`
    DiffCompute(DiffComputeNode),
    /// `read_file`
    ReadFile(PathNode),
    /// `write_file`
    WriteFile(WriteFileNode),
    /// `create_dir`
    CreateDir(PathNode),
    /// `read_env`
    ReadEnv(ReadEnvNode),
    /// `http_request`
    HttpRequest(HttpRequestNode),
    /// `shell_run`
    ShellRun(ShellRunNode),
    /// `call_mcp_tool`
    CallMcpTool(CallMcpToolNode),
    /// `read_mcp_resource`
    ReadMcpResource(ReadMcpResourceNode),
    /// `llm_infer`
    LlmInfer(LlmInferNode),
    /// `agent_loop`
    AgentLoop(AgentLoopNode),
    /// `call`
    Call(CallNode),
    /// `parallel`
    Parallel(ParallelNode),
    /// `map`
    Map(MapNode),
}

/// Every kind name, in the order of 04-nodes.md.
pub const KIND_NAMES: [&str; 24] = [
    "condition",
    "switch",
    "merge",
    "fail",
    "terminate",
    "pause_for_approval",
    "respond",
    "parse_json",
    "json_select",
    "template_render",
    "diff_compute",
    "read_file",
    "write_file",
    "create_dir",
    "read_env",
    "http_request",
    "shell_run",
    "call_mcp_tool",
    "read_mcp_resource",
    "llm_infer",
    "agent_loop",
    "call",
    "parallel",
    "map",
];

/// The six tools an `agent_loop` may declare.
pub const LOOP_TOOLS: [&str; 6] = ["read_file", "write_file", "read_env", "http_request", "shell_run", "call_mcp_tool"];

impl NodeKind {
    /// Deserializes the kind-specific fields of a node of type `type_name` (`None` for an
    /// unknown type). `shell_run` keeps `timeout_secs` among its own fields.
    pub fn from_type<'de, D>(type_name: &str, fields: D) -> Option<Result<NodeKind, D::Error>>
    where
        D: serde::Deserializer<'de>,
    {
        fn de<'de, T: Deserialize<'de>, D: serde::Deserializer<'de>>(
            d: D,
            f: fn(T) -> NodeKind,
        ) -> Result<NodeKind, D::Error> {
            T::deserialize(d).map(f)
        }
        Some(match type_name {
            "condition" => de(fields, NodeKind::Condition),
            "switch" => de(fields, NodeKind::Switch),
            "merge" => de(fields, NodeKind::Merge),
            "fail" => de(fields, NodeKind::Fail),
            "terminate" => de(fields, NodeKind::Terminate),
            "pause_for_approval" => de(fields, NodeKind::PauseForApproval),
            "respond" => de(fields, NodeKind::Respond),
            "parse_json" => de(fields, NodeKind::ParseJson),
            "json_select" => de(fields, NodeKind::JsonSelect),
            "template_render" => de(fields, NodeKind::TemplateRender),
            "diff_compute" => de(fields, NodeKind::DiffCompute),
            "read_file" => de(fields, NodeKind::ReadFile),
            "write_file" => de(fields, NodeKind::WriteFile),
            "create_dir" => de(fields, NodeKind::CreateDir),
            "read_env" => de(fields, NodeKind::ReadEnv),
            "http_request" => de(fields, NodeKind::HttpRequest),
            "shell_run" => de(fields, NodeKind::ShellRun),
            "call_mcp_tool" => de(fields, NodeKind::CallMcpTool),
            "read_mcp_resource" => de(fields, NodeKind::ReadMcpResource),
            "llm_infer" => de(fields, NodeKind::LlmInfer),
            "agent_loop" => de(fields, NodeKind::AgentLoop),
            "call" => de(fields, NodeKind::Call),
            "parallel" => de(fields, NodeKind::Parallel),
            "map" => de(fields, NodeKind::Map),
            _ => return None,
        })
    }

    /// The `type` string of this kind.
    pub fn type_name(&self) -> &'static str {
        match self {
            NodeKind::Condition(_) => "condition",
            NodeKind::Switch(_) => "switch",
            NodeKind::Merge(_) => "merge",
            NodeKind::Fail(_) => "fail",
            NodeKind::Terminate(_) => "terminate",
            NodeKind::PauseForApproval(_) => "pause_for_approval",
            NodeKind::Respond(_) => "respond",
            NodeKind::ParseJson(_) => "parse_json",
            NodeKind::JsonSelect(_) => "json_select",
            NodeKind::TemplateRender(_) => "template_render",
            NodeKind::DiffCompute(_) => "diff_compute",
            NodeKind::ReadFile(_) => "read_file",
            NodeKind::WriteFile(_) => "write_file",
            NodeKind::CreateDir(_) => "create_dir",
            NodeKind::ReadEnv(_) => "read_env",
            NodeKind::HttpRequest(_) => "http_request",
            NodeKind::ShellRun(_) => "shell_run",
            NodeKind::CallMcpTool(_) => "call_mcp_tool",
            NodeKind::ReadMcpResource(_) => "read_mcp_resource",
            NodeKind::LlmInfer(_) => "llm_infer",
            NodeKind::AgentLoop(_) => "agent_loop",
            NodeKind::Call(_) => "call",
            NodeKind::Parallel(_) => "parallel",
            NodeKind::Map(_) => "map",
        }
    }

    /// Labels this kind can emit (03 §4): `None` = any string (switch).
    pub fn producible_labels(&self) -> Option<&'static [&'static str]> {
        match self {
            NodeKind::Condition(_) => Some(&["true", "false"]),
            NodeKind::Switch(_) => None,
            NodeKind::HttpRequest(_)
            | NodeKind::ShellRun(_)
            | NodeKind::CallMcpTool(_)
            | NodeKind::Call(_)
            | NodeKind::Parallel(_)
            | NodeKind::Map(_) => Some(&["error"]),
            NodeKind::AgentLoop(_) => Some(&["exhausted"]),
            _ => Some(&[]),
        }
    }

    /// True for kinds that run child workflows.
    pub fn is_composition(&self) -> bool {
        matches!(self, NodeKind::Call(_) | NodeKind::Parallel(_) | NodeKind::Map(_))
    }

    /// The MCP server name of an MCP node (`Some(None)` = MCP node without `server`).
    pub fn mcp_server(&self) -> Option<Option<&str>> {
        match self {
            NodeKind::CallMcpTool(n) => Some(n.server.as_deref()),
            NodeKind::ReadMcpResource(n) => Some(n.server.as_deref()),
            _ => None,
        }
    }
}
