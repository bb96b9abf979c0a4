//! `call_mcp_tool` and `read_mcp_resource` through the binary (04 §6, 08 §1–2), against our
//! scripted MCP server over stdio: results, the `error` branch, allowlist denials before any call
//! reaches the server, a crashing server, dry-run, and the legacy `--mcp-stdio` flag.

use std::path::PathBuf;

use serde_json::{Value, json};

use crate::support::{Run, Scratch, agentd_path};

fn scripted_server() -> PathBuf {
    let path = agentd_path().with_file_name("agentd-mcp-scripted");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build -p agentd-mcp` (scripts/test builds the whole workspace)",
        path.display()
    );
    path
}

const SCRIPT: &str = r#"
server_name = "docs"

[[tools]]
name = "echo"
description = "echoes"
input_schema = { type = "object" }
result = { content = [{ type = "text", text = "Echo: {{arguments.text}}" }] }

[[tools]]
name = "broken"
description = "always an error result"
input_schema = { type = "object" }
result = { content = [{ type = "text", text = "it broke" }], isError = true }

[[tools]]
name = "forbidden"
description = "listed by the server, not allowed by the workflow"
input_schema = { type = "object" }
result = { content = [{ type = "text", text = "should never run" }] }

[[tools]]
name = "crash"
description = "exits mid-call"
input_schema = { type = "object" }
crash = true

[[resources]]
uri = "docs://readme"
name = "readme"
mime_type = "text/plain"
text = "read me"
"#;

fn workflow(scratch: &Scratch) -> String {
    scratch.write("script.toml", SCRIPT);
    let server = scripted_server();
    let text = format!(
        r#"name = "mcp"

[[mcp_servers]]
name = "docs"
command = ["{server}", "{root}/script.toml", "--call-log", "{root}/calls.jsonl"]
allow_tools = ["echo", "broken", "crash"]
allow_resources = ["docs://*"]
timeout_secs = 5

[logging.audit]
target = "file:audit.jsonl"

[[start_nodes]]
name = "tool"
source = "manual"
entry_node = "tool"

[[start_nodes]]
name = "resource"
source = "manual"
entry_node = "resource"

[[nodes]]
id = "tool"
type = "call_mcp_tool"
tool = "@TOOL@"
args_from = "trigger.args"

[[nodes]]
id = "resource"
type = "read_mcp_resource"
resource_from = "trigger.uri"
"#,
        server = server.display(),
        root = scratch.root_str()
    );
    text
}

fn run_tool(scratch: &Scratch, tool: &str, args: Value, extra: &[&str]) -> Run {
    scratch.write("mcp.toml", workflow(scratch).replace("@TOOL@", tool));
    let input = json!({"args": args}).to_string();
    let mut all = vec!["run", "mcp.toml", "--quiet", "--start", "tool", "--input", &input, "--record", "r.json"];
    all.extend_from_slice(extra);
    scratch.run(all)
}

fn calls(scratch: &Scratch) -> Vec<Value> {
    std::fs::read_to_string(scratch.path("calls.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|c: &Value| c["method"] == "tools/call")
        .collect()
}

#[test]
fn a_tool_call_returns_its_content() {
    let scratch = Scratch::new();
    let run = run_tool(&scratch, "echo", json!({"text": "hi"}), &[]);
    run.code(0);
    let value = &run.json()["final_value"];
    assert_eq!(value["server"], "docs");
    assert_eq!(value["tool"], "echo");
    assert_eq!(value["is_error"], false);
    assert_eq!(value["content"][0]["text"], "Echo: hi");
    assert_eq!(calls(&scratch).len(), 1);
}

#[test]
fn an_error_result_takes_the_error_branch() {
    let scratch = Scratch::new();
    let run = run_tool(&scratch, "broken", json!({}), &[]);
    run.code(0);
    assert_eq!(run.json()["final_value"]["is_error"], true);
    let record: Value = serde_json::from_str(&scratch.read("r.json")).expect("record");
    assert_eq!(record["trace"]["entries"][0]["branch"], "error");
}

#[test]
fn a_tool_not_on_the_allowlist_is_denied_before_the_call() {
    let scratch = Scratch::new();
    let run = run_tool(&scratch, "forbidden", json!({}), &[]);
    run.code(5);
    assert_eq!(
        run.json()["reason"],
        "policy violation: call_mcp_tool denied on docs:forbidden: tool forbidden not in allow_tools of server docs"
    );
    assert!(calls(&scratch).is_empty(), "the server never saw the call");
    let audit = scratch.read("audit.jsonl");
    assert!(audit.contains(r#""event":"policy.denied""#) && audit.contains(r#""family":"mcp""#), "{audit}");
    let record: Value = serde_json::from_str(&scratch.read("r.json")).expect("record");
    assert_eq!(record["cost"]["policy_denials"], 1);
    // The same denial is reported under --dry-run.
    let run = run_tool(&scratch, "forbidden", json!({}), &["--dry-run"]);
    run.code(5);
}

#[test]
fn a_crashing_server_is_a_bounded_mcp_error() {
    let scratch = Scratch::new();
    let started = std::time::Instant::now();
    let run = run_tool(&scratch, "crash", json!({}), &[]);
    run.code(5);
    let reason = run.json()["reason"].as_str().unwrap_or_default().to_string();
    assert!(reason.starts_with("mcp: docs "), "{reason}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn resources_are_read_and_checked() {
    let scratch = Scratch::new();
    scratch.write("mcp.toml", workflow(&scratch).replace("@TOOL@", "echo"));
    let run =
        scratch.run(["run", "mcp.toml", "--quiet", "--start", "resource", "--input", r#"{"uri": "docs://readme"}"#]);
    run.code(0);
    let value = run.json()["final_value"].clone();
    assert_eq!(value["contents"][0]["text"], "read me", "{value}");
    let run = scratch.run([
        "run",
        "mcp.toml",
        "--quiet",
        "--start",
        "resource",
        "--input",
        r#"{"uri": "file:///etc/passwd"}"#,
    ]);
    run.code(5);
    assert_eq!(
        run.json()["reason"],
        "policy violation: read_mcp_resource denied on docs:file:///etc/passwd: resource file:///etc/passwd not in allow_resources of server docs"
    );
}

#[test]
fn dry_run_checks_but_does_not_call() {
    let scratch = Scratch::new();
    let run = run_tool(&scratch, "echo", json!({"text": "x"}), &["--dry-run"]);
    run.code(0);
    assert_eq!(run.json()["final_value"]["dry_run"], true);
    assert!(calls(&scratch).is_empty());
}

#[test]
fn a_server_that_cannot_start_is_a_startup_error() {
    let scratch = Scratch::new();
    let text = workflow(&scratch)
        .replace("@TOOL@", "echo")
        .replace(&scripted_server().display().to_string(), "/no/such/server");
    scratch.write("mcp.toml", text);
    let run = scratch.run(["run", "mcp.toml", "--quiet", "--start", "tool", "--input", "{}"]);
    run.code(2);
    assert!(run.stderr.starts_with("agentd: mcp server `docs`: "), "{}", run.stderr);
}

#[test]
fn no_server_configured_is_a_capability_error() {
    let scratch = Scratch::new();
    scratch.write(
        "none.toml",
        "name = \"none\"\n[[start_nodes]]\nname = \"t\"\nsource = \"manual\"\nentry_node = \"t\"\n[[nodes]]\nid = \"t\"\ntype = \"call_mcp_tool\"\ntool = \"echo\"\n",
    );
    let run = scratch.run(["run", "none.toml", "--quiet"]);
    run.code(5);
    let reason = run.json()["reason"].as_str().unwrap_or_default().to_string();
    assert!(
        reason.starts_with("capability unavailable: no handler registered for node kind `call_mcp_tool` (node `t`)"),
        "{reason}"
    );
}
