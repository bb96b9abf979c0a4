//! Tool pins (`08` §2.4, extension): the digest of a tool definition is the SHA-256 of its
//! RFC 8785 (JCS) canonical JSON, written `sha256:<64 lower-case hex>`.
//!
//! The tool object is the one rmcp decoded from `tools/list`, serialised again: fields rmcp does
//! not model would not be covered. Every field of the 2025-06-18 `Tool` schema is modelled.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The pin digest of one tool definition.
pub fn tool_digest(tool: &Value) -> String {
    // JCS output of a serde_json::Value cannot fail (no non-string keys, no NaN); fall back to
    // serde_json's own sorted output rather than panic.
    let canonical = serde_jcs::to_string(tool).unwrap_or_else(|_| tool.to_string());
    format!("sha256:{}", hex::encode(Sha256::digest(canonical.as_bytes())))
}

/// A pinned tool that is missing or differs from its pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinMismatch {
    /// The tool name.
    pub tool: String,
    /// The pin from the configuration.
    pub expected: String,
    /// The digest of the listed definition; `None` when the server does not list the tool.
    pub actual: Option<String>,
}

impl std::fmt::Display for PinMismatch {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.actual {
            Some(actual) => write!(
                formatter,
                "tool `{}` does not match its pin (expected {}, got {actual})",
                self.tool, self.expected
            ),
            None => write!(
                formatter,
                "tool `{}` does not match its pin (expected {}, got no such tool)",
                self.tool, self.expected
            ),
        }
    }
}

/// Every pin that the listed `tools` do not satisfy, in pin order.
pub(crate) fn check_pins<'a>(
    pins: impl IntoIterator<Item = (&'a String, &'a String)>,
    tools: &[Value],
) -> Vec<PinMismatch> {
    let mut mismatches = Vec::new();
    for (tool, expected) in pins {
        let listed = tools.iter().find(|definition| definition.get("name").and_then(Value::as_str) == Some(tool));
        let actual = listed.map(tool_digest);
        if actual.as_deref() != Some(expected.as_str()) {
            mismatches.push(PinMismatch { tool: tool.clone(), expected: expected.clone(), actual });
        }
    }
    mismatches
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_digest_ignores_key_order_and_whitespace() {
        let a = json!({"name": "echo", "inputSchema": {"type": "object", "properties": {}}});
        let b: Value =
            serde_json::from_str("{ \"inputSchema\": {\"properties\": {}, \"type\": \"object\"}, \"name\":\"echo\" }")
                .unwrap_or(Value::Null);
        assert_eq!(tool_digest(&a), tool_digest(&b));
        assert!(tool_digest(&a).starts_with("sha256:"));
        assert_eq!(tool_digest(&a).len(), 7 + 64);
    }

    #[test]
    fn the_digest_is_sha256_of_the_canonical_text() {
        // {"a":1,"b":"x"} hashed independently.
        let expected = format!("sha256:{}", hex::encode(Sha256::digest(b"{\"a\":1,\"b\":\"x\"}")));
        assert_eq!(tool_digest(&json!({"b": "x", "a": 1})), expected);
    }

    #[test]
    fn missing_and_changed_tools_are_reported() {
        let tools = vec![json!({"name": "echo"})];
        let good = tool_digest(&tools[0]);
        let bad = format!("sha256:{}", "0".repeat(64));
        let pins = [("echo".to_owned(), good), ("gone".to_owned(), bad.clone())];
        let mismatches = check_pins(pins.iter().map(|(tool, pin)| (tool, pin)), &tools);
        assert_eq!(mismatches.len(), 1);
        assert_eq!(mismatches[0].tool, "gone");
        assert!(mismatches[0].to_string().contains("got no such tool"));
    }
}
