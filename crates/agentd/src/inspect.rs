//! `agentd inspect RUN.json|-` (01 §8): a text timeline of any version's run record.

use std::ffi::OsString;
use std::io::Read;

use serde_json::Value;

use crate::output::{self, note};

/// Runs the subcommand; returns the exit code.
pub fn main(args: &[OsString]) -> i32 {
    let Some(arg) = args.first() else {
        output::stderr("agentd inspect: usage: agentd inspect RUN.json\n");
        return 2;
    };
    let text = if arg == "-" {
        let mut bytes = Vec::new();
        if let Err(e) = std::io::stdin().read_to_end(&mut bytes) {
            note(format_args!("failed to read stdin: {e}"));
            return 2;
        }
        bytes
    } else {
        match std::fs::read(arg) {
            Ok(b) => b,
            Err(e) => {
                note(format_args!("failed to read {}: {e}", std::path::Path::new(arg).display()));
                return 2;
            }
        }
    };
    let record: Value = match serde_json::from_slice(&text) {
        Ok(v) => v,
        Err(e) => {
            note(format_args!("{} is not valid JSON: {e}", std::path::Path::new(arg).display()));
            return 2;
        }
    };
    output::stdout(&render(&record));
    0
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

fn number(value: &Value, key: &str) -> u64 {
    value.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn or_question(value: &Value, key: &str) -> String {
    value.get(key).and_then(Value::as_str).unwrap_or("?").to_string()
}

/// Cuts to `max` Unicode scalar values, adding `…` when longer.
fn cut(text: &str, max: usize) -> String {
    let mut chars = text.chars();
    let head: String = chars.by_ref().take(max).collect();
    if chars.next().is_some() { format!("{head}…") } else { head }
}

/// Renders trace entries at `indent`; child runs are rendered under their composing node,
/// recursively, so the whole tree shows.
fn render_entries(out: &mut String, entries: &[Value], indent: &str) {
    for (i, entry) in entries.iter().enumerate() {
        let branch = entry.get("branch").and_then(Value::as_str).map(|b| format!(" →{b}")).unwrap_or_default();
        out.push_str(&format!(
            "{indent}{:>2}. {} [{}] {}{branch}  {} ms\n",
            i + 1,
            or_question(entry, "node_id"),
            or_question(entry, "kind"),
            or_question(entry, "outcome"),
            number(entry, "elapsed_ms"),
        ));
        if let Some(output) = entry.get("output").filter(|o| !o.is_null()) {
            out.push_str(&format!("{indent}    output: {}\n", cut(&output.to_string(), 160)));
        }
        if let Some(error) = entry.get("error") {
            let message = error.as_str().map_or_else(|| error.to_string(), str::to_string);
            out.push_str(&format!("{indent}    error: {}\n", cut(&message, 160)));
        }
        for child in entry.get("children").and_then(Value::as_array).into_iter().flatten() {
            let nodes = child.get("entries").and_then(Value::as_array).cloned().unwrap_or_default();
            out.push_str(&format!(
                "{indent}    child {} workflow={} status={} ({} node(s))\n",
                text(child, "execution_id"),
                text(child, "workflow"),
                text(child, "status"),
                nodes.len()
            ));
            render_entries(out, &nodes, &format!("{indent}      "));
        }
    }
}

/// Renders a run record as text.
pub fn render(record: &Value) -> String {
    let mut out = String::new();
    let id = text(record, "execution_id");
    let id = if id.is_empty() { "?" } else { id };
    out.push_str(&format!("run {id}  workflow={}  status={}\n", text(record, "workflow"), text(record, "status")));
    let cost = record.get("cost").cloned().unwrap_or(Value::Null);
    out.push_str(&format!(
        "  start={}  {} ms  {} llm call(s) / {} tokens  {} policy denial(s)\n",
        text(record, "start_node"),
        number(record, "wall_ms"),
        number(&cost, "llm_calls"),
        number(&cost, "llm_tokens"),
        number(&cost, "policy_denials"),
    ));
    let entries =
        record.get("trace").and_then(|t| t.get("entries")).and_then(Value::as_array).cloned().unwrap_or_default();
    if entries.is_empty() {
        out.push_str("  (no node trace captured)\n");
    } else {
        out.push_str("  path:\n");
        render_entries(&mut out, &entries, "    ");
    }
    if let Some(detail) = record.get("detail").filter(|d| !d.is_null()) {
        out.push_str(&format!("  outcome: {}\n", cut(&detail.to_string(), 200)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_missing_fields_as_spec_says() {
        let out = render(&json!({"trace": {"entries": [{"output": "x".repeat(200)}]}}));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "run ?  workflow=  status=");
        assert_eq!(lines[1], "  start=  0 ms  0 llm call(s) / 0 tokens  0 policy denial(s)");
        assert_eq!(lines[3], "     1. ? [?] ?  0 ms");
        assert!(lines[4].ends_with('…') && lines[4].chars().count() == "        output: ".len() + 161);
        assert_eq!(render(&json!([])).lines().nth(2), Some("  (no node trace captured)"));
    }
}
