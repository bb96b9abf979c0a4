//! The script file of the scripted server (format documented in [`super`]).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::{Value, json};

/// Why a script could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// The file could not be read.
    #[error("cannot read script {path}: {source}")]
    Read {
        /// The script path.
        path: String,
        /// The IO error.
        source: std::io::Error,
    },
    /// The file is not valid TOML / JSON of the script shape.
    #[error("script {path}: {reason}")]
    Parse {
        /// The script path (or `<inline>`).
        path: String,
        /// The parser's message, naming the offending field.
        reason: String,
    },
    /// The file parsed but breaks a rule of the format.
    #[error("script {path}: {reason}")]
    Invalid {
        /// The script path (or `<inline>`).
        path: String,
        /// Which rule, where.
        reason: String,
    },
}

/// A whole script.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// `serverInfo.name` (default `agentd-mcp-scripted`).
    #[serde(default)]
    pub server_name: Option<String>,
    /// The version answered to `initialize`; default: the client's offer when it is one of
    /// 2024-11-05, 2025-03-26, 2025-06-18, 2025-11-25, else 2025-06-18.
    #[serde(default)]
    pub protocol_version: Option<String>,
    /// Tools per `tools/list` page (0 = one page).
    #[serde(default)]
    pub tools_page_size: usize,
    /// Append every received request and notification as one JSON line `{"method", "params"}` to this file.
    #[serde(default)]
    pub call_log: Option<String>,
    /// HTTP only: these request headers (lower-case names) are added to each call-log entry
    /// as `"headers": {name: value}`.
    #[serde(default)]
    pub log_headers: Vec<String>,
    /// Listed tools.
    #[serde(default)]
    pub tools: Vec<ToolScript>,
    /// Listed resources.
    #[serde(default)]
    pub resources: Vec<ResourceScript>,
    /// Replies to `tools/call`, FIFO per tool name.
    #[serde(default)]
    pub calls: Vec<CallScript>,
    /// Replies to `resources/read`, FIFO per URI.
    #[serde(default)]
    pub reads: Vec<ReadScript>,
    /// Faults keyed by the ordinal of the `tools/call` request.
    #[serde(default)]
    pub faults: Faults,
}

/// One listed tool.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolScript {
    /// Tool name (non-blank, unique).
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// JSON Schema of the arguments (default `{"type": "object"}`).
    #[serde(default)]
    pub input_schema: Option<Value>,
    /// The reply used whenever no `calls` entry for this tool is left.
    #[serde(flatten)]
    pub reply: Reply,
}

/// One listed resource.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceScript {
    /// Resource URI (non-blank, unique).
    pub uri: String,
    /// Name (default: the URI).
    #[serde(default)]
    pub name: Option<String>,
    /// MIME type.
    #[serde(default)]
    pub mime_type: Option<String>,
    /// Text content served when no `reads` entry for this URI is left.
    #[serde(default)]
    pub text: Option<String>,
}

/// A scripted `tools/call` reply.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallScript {
    /// The tool this reply is for.
    pub tool: String,
    /// What to answer.
    #[serde(flatten)]
    pub reply: Reply,
}

/// A scripted `resources/read` reply.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadScript {
    /// The URI this reply is for.
    pub uri: String,
    /// What to answer.
    #[serde(flatten)]
    pub reply: Reply,
}

/// What to do with one request. At most one of `result`, `error`, `hang`, `garbage`, `crash`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Reply {
    /// The JSON-RPC `result`; strings may hold `{{arguments.NAME}}`, `{{arguments}}`,
    /// `{{tool}}`, `{{uri}}`, `{{call}}` and `{{pid}}` placeholders.
    #[serde(default)]
    pub result: Option<Value>,
    /// A JSON-RPC error instead of a result.
    #[serde(default)]
    pub error: Option<RpcError>,
    /// Wait this long before answering.
    #[serde(default)]
    pub delay_ms: u64,
    /// Never answer this request (other requests are still served).
    #[serde(default)]
    pub hang: bool,
    /// Answer with a line that is not JSON instead of a response.
    #[serde(default)]
    pub garbage: bool,
    /// Exit the process (status [`Faults::exit_code`]) instead of answering.
    #[serde(default)]
    pub crash: bool,
}

impl Reply {
    fn is_set(&self) -> bool {
        self.result.is_some() || self.error.is_some() || self.hang || self.garbage || self.crash
    }

    fn check(&self, place: &str) -> Result<(), String> {
        let set = [self.result.is_some(), self.error.is_some(), self.hang, self.garbage, self.crash];
        if set.iter().filter(|chosen| **chosen).count() > 1 {
            return Err(format!("{place}: set at most one of result, error, hang, garbage, crash"));
        }
        Ok(())
    }
}

/// A JSON-RPC error answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RpcError {
    /// The error code.
    pub code: i64,
    /// The error message.
    pub message: String,
}

/// Faults by the 1-based ordinal of the `tools/call` request (counted across all tools).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// These calls make the process exit before answering.
    #[serde(default)]
    pub crash_on_call: Vec<u64>,
    /// These calls are never answered.
    #[serde(default)]
    pub hang_on_call: Vec<u64>,
    /// These calls are answered with a line that is not JSON.
    #[serde(default)]
    pub garbage_on_call: Vec<u64>,
    /// These calls are answered with JSON-RPC error -32603 `injected MCP fault`.
    #[serde(default)]
    pub error_on_call: Vec<u64>,
    /// The exit status of a crash (default 3).
    #[serde(default)]
    pub exit_code: Option<i32>,
}

impl Script {
    /// Reads a script: `.json` files as JSON, anything else as TOML.
    pub fn load(path: &Path) -> Result<Self, ScriptError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScriptError::Read { path: shown.clone(), source })?;
        let json = path.extension().is_some_and(|extension| extension.eq_ignore_ascii_case("json"));
        Self::parse(&text, json, &shown)
    }

    /// Parses and checks a script text; `path` only names it in errors.
    pub fn parse(text: &str, json: bool, path: &str) -> Result<Self, ScriptError> {
        let parse_error = |reason: String| ScriptError::Parse { path: path.to_owned(), reason };
        let script: Self = if json {
            serde_json::from_str(text).map_err(|error| parse_error(error.to_string()))?
        } else {
            toml::from_str(text).map_err(|error| parse_error(error.to_string().trim_end().to_owned()))?
        };
        script.check().map_err(|reason| ScriptError::Invalid { path: path.to_owned(), reason })?;
        Ok(script)
    }

    fn check(&self) -> Result<(), String> {
        let mut tool_names = BTreeMap::new();
        for (index, tool) in self.tools.iter().enumerate() {
            if tool.name.trim().is_empty() {
                return Err(format!("tools[{index}]: name is blank"));
            }
            if tool_names.insert(tool.name.as_str(), index).is_some() {
                return Err(format!("tools[{index}]: duplicate tool `{}`", tool.name));
            }
            tool.reply.check(&format!("tools[{index}]"))?;
        }
        for (index, resource) in self.resources.iter().enumerate() {
            if resource.uri.trim().is_empty() {
                return Err(format!("resources[{index}]: uri is blank"));
            }
        }
        for (index, call) in self.calls.iter().enumerate() {
            call.reply.check(&format!("calls[{index}]"))?;
            if !call.reply.is_set() {
                return Err(format!("calls[{index}]: set one of result, error, hang, garbage, crash"));
            }
        }
        for (index, read) in self.reads.iter().enumerate() {
            read.reply.check(&format!("reads[{index}]"))?;
            if !read.reply.is_set() {
                return Err(format!("reads[{index}]: set one of result, error, hang, garbage, crash"));
            }
        }
        Ok(())
    }

    /// The `tools/list` entries: the `tools` table, plus tools only named by `calls`.
    pub fn listed_tools(&self) -> Vec<Value> {
        let mut listed: Vec<Value> = self.tools.iter().map(tool_definition).collect();
        let mut extra: Vec<&str> = Vec::new();
        for call in &self.calls {
            let declared = self.tools.iter().any(|tool| tool.name == call.tool);
            if !declared && !extra.contains(&call.tool.as_str()) {
                extra.push(&call.tool);
            }
        }
        listed.extend(extra.into_iter().map(|name| json!({"name": name, "inputSchema": {"type": "object"}})));
        listed
    }

    /// The `resources/list` entries.
    pub fn listed_resources(&self) -> Vec<Value> {
        self.resources
            .iter()
            .map(|resource| {
                let mut entry =
                    json!({"uri": resource.uri, "name": resource.name.clone().unwrap_or_else(|| resource.uri.clone())});
                if let Some(mime_type) = &resource.mime_type {
                    entry["mimeType"] = json!(mime_type);
                }
                entry
            })
            .collect()
    }
}

fn tool_definition(tool: &ToolScript) -> Value {
    let mut definition = json!({
        "name": tool.name,
        "inputSchema": tool.input_schema.clone().unwrap_or_else(|| json!({"type": "object"})),
    });
    if let Some(description) = &tool.description {
        definition["description"] = json!(description);
    }
    definition
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_and_json_scripts_parse() {
        let toml_text = r#"
            [[tools]]
            name = "echo"
            result = { content = [{ type = "text", text = "{{arguments.text}}" }] }
            [[calls]]
            tool = "other"
            crash = true
            [faults]
            hang_on_call = [2]
        "#;
        let script = Script::parse(toml_text, false, "<inline>").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(script.listed_tools().len(), 2);
        let json_text = r#"{"tools": [{"name": "echo", "error": {"code": -1, "message": "no"}}]}"#;
        assert!(Script::parse(json_text, true, "<inline>").is_ok());
    }

    #[test]
    fn garbage_scripts_are_clear_errors() {
        let cases = [
            ("tools = 3", false, "invalid type"),
            ("[[tools]]\nname = \"a\"\nbogus = 1", false, "bogus"),
            ("[[calls]]\ntool = \"a\"", false, "set one of"),
            ("[[calls]]\ntool = \"a\"\nhang = true\ncrash = true", false, "at most one"),
            ("[[tools]]\nname = \"a\"\n[[tools]]\nname = \"a\"", false, "duplicate"),
            ("{not json", true, "script <inline>"),
            ("\u{0}\u{1}binary", false, "script <inline>"),
        ];
        for (text, json, expected) in cases {
            match Script::parse(text, json, "<inline>") {
                Ok(_) => panic!("accepted: {text}"),
                Err(error) => assert!(error.to_string().contains(expected), "{text}: {error}"),
            }
        }
    }
}
