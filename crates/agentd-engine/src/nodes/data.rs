//! Pure data kinds: `parse_json`, `json_select`, `template_render`, `diff_compute`.

use agentd_workflow::{DiffComputeNode, JsonSelectNode, ParseJsonNode, TemplateRenderNode};
use serde_json::{Map, Value, json};

use super::{Step, require, require_str};
use crate::error::NodeError;
use crate::run::RunState;

pub(super) fn parse_json(state: &RunState<'_>, config: &ParseJsonNode) -> Result<Step, NodeError> {
    let text = require_str(state, "parse_json", &config.input_from)?;
    let parsed: Value = serde_json::from_str(text)
        .map_err(|e| NodeError::tool("parse_json", format_args!("invalid JSON at `{}`: {e}", config.input_from)))?;
    Ok(Step::output(json!({ "parsed": parsed })))
}

pub(super) fn json_select(state: &RunState<'_>, config: &JsonSelectNode) -> Result<Step, NodeError> {
    let input = require(state, "json_select", &config.input_from)?;
    let output = match config.path.resolve(input) {
        Some(value) => json!({"found": true, "value": value}),
        None => json!({"found": false, "value": null}),
    };
    Ok(Step::output(output))
}

pub(super) fn template_render(state: &RunState<'_>, config: &TemplateRenderNode) -> Result<Step, NodeError> {
    let null = Value::Null;
    let data = match &config.input_from {
        Some(path) => require(state, "template_render", path)?,
        None => &null,
    };
    let rendered = config.template.render(data, |key| state.lookup(key));
    let mut output = Map::with_capacity(1);
    output.insert("rendered".to_string(), Value::String(rendered));
    Ok(Step::output(Value::Object(output)))
}

pub(super) fn diff_compute(state: &RunState<'_>, config: &DiffComputeNode) -> Result<Step, NodeError> {
    let left = require(state, "diff_compute", &config.left_from)?;
    let right = require(state, "diff_compute", &config.right_from)?;
    let mut diff = Diff::default();
    diff.walk(String::new(), left, right);
    let unchanged = diff.added.is_empty() && diff.changed.is_empty() && diff.removed.is_empty();
    Ok(Step::output(json!({
        "added": diff.added,
        "changed": diff.changed,
        "removed": diff.removed,
        "unchanged": unchanged,
    })))
}

/// The structural diff of 04 §2.4.
#[derive(Default)]
struct Diff {
    added: Map<String, Value>,
    changed: Map<String, Value>,
    removed: Map<String, Value>,
}

impl Diff {
    fn walk(&mut self, path: String, left: &Value, right: &Value) {
        match (left, right) {
            (Value::Object(l), Value::Object(r)) => {
                for (key, lv) in l {
                    let child = join_key(&path, key);
                    match r.get(key) {
                        Some(rv) => self.walk(child, lv, rv),
                        None => {
                            self.removed.insert(child, lv.clone());
                        }
                    }
                }
                for (key, rv) in r {
                    if !l.contains_key(key) {
                        self.added.insert(join_key(&path, key), rv.clone());
                    }
                }
            }
            (Value::Array(l), Value::Array(r)) => {
                for i in 0..l.len().max(r.len()) {
                    let child = format!("{path}[{i}]");
                    match (l.get(i), r.get(i)) {
                        (Some(lv), Some(rv)) => self.walk(child, lv, rv),
                        (Some(lv), None) => {
                            self.removed.insert(child, lv.clone());
                        }
                        (None, Some(rv)) => {
                            self.added.insert(child, rv.clone());
                        }
                        (None, None) => {}
                    }
                }
            }
            // Strict JSON equality: `1` and `1.0` differ, as do `1` and `"1"`.
            _ if left == right => {}
            _ => {
                let key = if path.is_empty() { "$".to_string() } else { path };
                self.changed.insert(key, json!({"from": left, "to": right}));
            }
        }
    }
}

fn join_key(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_string() } else { format!("{path}.{key}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diff(left: Value, right: Value) -> Value {
        let mut d = Diff::default();
        d.walk(String::new(), &left, &right);
        json!({"added": d.added, "changed": d.changed, "removed": d.removed})
    }

    #[test]
    fn nested_paths_and_arrays() {
        let out = diff(
            json!({"a": {"b": 1}, "items": [{"name": "x"}, 2], "gone": true}),
            json!({"a": {"b": 2}, "items": [{"name": "y"}], "new": null}),
        );
        assert_eq!(
            out,
            json!({
                "added": {"new": null},
                "changed": {"a.b": {"from": 1, "to": 2}, "items[0].name": {"from": "x", "to": "y"}},
                "removed": {"gone": true, "items[1]": 2}
            })
        );
    }

    #[test]
    fn root_scalars_and_strict_equality() {
        assert_eq!(diff(json!(1), json!(1.0))["changed"], json!({"$": {"from": 1, "to": 1.0}}));
        assert_eq!(diff(json!(1), json!("1"))["changed"], json!({"$": {"from": 1, "to": "1"}}));
        assert_eq!(diff(json!([1]), json!([1, 2]))["added"], json!({"[1]": 2}));
        assert_eq!(diff(json!({"a": 1}), json!({"a": 1})), json!({"added": {}, "changed": {}, "removed": {}}));
    }
}
