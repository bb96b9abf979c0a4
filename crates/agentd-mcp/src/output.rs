//! The node outputs of `04` §6 and `08` §2.6, built from what the server answered.

use serde_json::{Map, Value, json};

/// The branch label of a `call_mcp_tool` result with `isError: true`.
pub const ERROR_LABEL: &str = "error";

/// What `call_mcp_tool` stores under the node id.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutput {
    /// The server name.
    pub server: String,
    /// The tool name.
    pub tool: String,
    /// `result.content`, or `[]` when absent.
    pub content: Value,
    /// `result.isError`, or `false` when absent.
    pub is_error: bool,
    /// `result.structuredContent`, or `null` when absent.
    pub structured: Value,
}

impl ToolOutput {
    /// Builds the output from a `tools/call` result object.
    pub fn from_result(server: &str, tool: &str, result: &Value) -> Self {
        let content = match result.get("content") {
            Some(content @ Value::Array(_)) => content.clone(),
            _ => Value::Array(Vec::new()),
        };
        Self {
            server: server.to_owned(),
            tool: tool.to_owned(),
            content,
            is_error: result.get("isError").and_then(Value::as_bool).unwrap_or(false),
            structured: result.get("structuredContent").cloned().unwrap_or(Value::Null),
        }
    }

    /// `{"content", "is_error", "server", "structured", "tool"}` (keys sorted).
    pub fn to_value(&self) -> Value {
        json!({
            "content": self.content,
            "is_error": self.is_error,
            "server": self.server,
            "structured": self.structured,
            "tool": self.tool,
        })
    }

    /// `Some("error")` when the tool reported an error result, so the engine follows the
    /// `error` edge; `None` otherwise.
    pub fn branch_label(&self) -> Option<&'static str> {
        self.is_error.then_some(ERROR_LABEL)
    }
}

/// What `read_mcp_resource` stores under the node id.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceOutput {
    /// The server name.
    pub server: String,
    /// The resource URI as requested.
    pub uri: String,
    /// `result.contents`, or `[]` when absent.
    pub contents: Value,
}

impl ResourceOutput {
    /// Builds the output from a `resources/read` result object.
    pub fn from_result(server: &str, uri: &str, result: &Value) -> Self {
        let contents = match result.get("contents") {
            Some(contents @ Value::Array(_)) => contents.clone(),
            _ => Value::Array(Vec::new()),
        };
        Self { server: server.to_owned(), uri: uri.to_owned(), contents }
    }

    /// `{"contents", "server", "uri"}` (keys sorted).
    pub fn to_value(&self) -> Value {
        json!({"contents": self.contents, "server": self.server, "uri": self.uri})
    }
}

/// The dry-run output of `call_mcp_tool`: `{"dry_run": true, "server", "tool"}`.
pub fn dry_run_tool_output(server: &str, tool: &str) -> Value {
    json!({"dry_run": true, "server": server, "tool": tool})
}

/// The dry-run output of `read_mcp_resource`: `{"dry_run": true, "server", "uri"}`.
pub fn dry_run_resource_output(server: &str, uri: &str) -> Value {
    json!({"dry_run": true, "server": server, "uri": uri})
}

/// The `arguments` member of `tools/call` (`08` §2.6): an object is sent, `null` means "omit
/// the member", anything else is the tool error of `04` §6.1 (`Err` carries the JSON type name).
pub fn tool_arguments(arguments: Value) -> Result<Option<Map<String, Value>>, &'static str> {
    match arguments {
        Value::Object(object) => Ok(Some(object)),
        Value::Null => Ok(None),
        Value::Bool(_) => Err("bool"),
        Value::Number(_) => Err("number"),
        Value::String(_) => Err("string"),
        Value::Array(_) => Err("array"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_members_get_their_defaults() {
        let output = ToolOutput::from_result("s", "t", &json!({}));
        assert_eq!(
            output.to_value(),
            json!({"content": [], "is_error": false, "server": "s", "structured": null, "tool": "t"})
        );
        assert_eq!(output.branch_label(), None);
        let failed =
            ToolOutput::from_result("s", "t", &json!({"isError": true, "content": [{"type": "text", "text": "no"}]}));
        assert_eq!(failed.branch_label(), Some("error"));
        assert_eq!(
            ResourceOutput::from_result("s", "u", &json!({})).to_value(),
            json!({"contents": [], "server": "s", "uri": "u"})
        );
    }

    #[test]
    fn arguments_must_be_objects_or_null() {
        assert_eq!(tool_arguments(Value::Null), Ok(None));
        assert!(matches!(tool_arguments(json!({"a": 1})), Ok(Some(_))));
        assert_eq!(tool_arguments(json!([1])), Err("array"));
        assert_eq!(tool_arguments(json!("x")), Err("string"));
    }
}
