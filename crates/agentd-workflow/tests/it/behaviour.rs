//! Validator behaviour that spans several checks (03 §9): every finding is collected, errors come
//! in the specified check order, and every warning of §9.3 is raised under its condition and
//! only then.

use agentd_workflow::{FileSource, LoadFailure, NoFiles, SourceFile, ValidateOptions, load};
use serde_json::{Value, json};

use crate::support::{MemoryFiles, diagnostics, error_codes, load_text, load_text_with, warning_codes};

/// Diagnostics as the `validate` JSON output lists them: code, severity, location, message.
fn as_json(source: &SourceFile, result: &Result<agentd_workflow::Workflow, LoadFailure>) -> Value {
    diagnostics(result)
        .into_iter()
        .map(|d| {
            let location = d.location(source);
            json!({
                "severity": d.severity,
                "code": d.code,
                "line": location.map(|l| l.line),
                "column": location.map(|l| l.column),
                "message": d.message,
            })
        })
        .collect()
}

#[test]
fn three_errors_of_three_checks_are_all_reported_in_check_order() {
    // Declared in the reverse of the check order: #12, then #10, then #2.
    let text = r#"
name = "three_mistakes"

[[nodes]]
id = "draft"
type = "llm_infer"
backend = "default"
prompt = "Write a haiku about {{topic}}."
input_from = "trigger"
temperature = 3.0

[[nodes]]
id = "fan_out"
type = "map"
items_from = "draft.parsed"
workflow = "child.toml"
max_items = 0

[[edges]]
from = "draft"
to = "fan_out"

[[edges]]
from = "fan_out"
when = "error"
to = "draft"
max_iterations = 1

[[start_nodes]]
name = "main"
source = "manual"
entry_node = "draft"

[[start_nodes]]
name = "main"
source = "http"
entry_node = "draft"
"#;
    let (source, result) = load_text(text);
    let Err(LoadFailure::Invalid(rejected)) = &result else { panic!("validation must fail: {result:?}") };
    assert_eq!(rejected.workflow_name, "three_mistakes");
    assert_eq!(error_codes(&result), ["dup_start_name", "map_zero_max_items", "llm_bad_temperature"]);
    assert!(rejected.warnings.is_empty(), "{:?}", rejected.warnings);
    insta::assert_json_snapshot!(as_json(&source, &result));
}

#[test]
fn every_check_before_the_graph_checks_reports_in_table_order() {
    // One finding per code of 03 §9.1 #1–#12 and §9.2; the tables are declared in an order
    // unrelated to the check order, to show the order comes from the checks.
    let text = r#"
name = "everything_wrong"

[[edges]]
from = "ghost"
to = "fetch"

[[http_routes]]
method = "POST"
path = "/in"
start_node = "main"
auth = "bearer:nobody"
rate_limit = { capacity = 0, per_second = 1.0 }

[[http_routes]]
method = "post"
path = "/in"
start_node = "missing_start"

[[triggers]]
type = "cron"
schedule = "not a schedule"
start_node = "main"

[[triggers]]
type = "internal.event"
start_node = "ghost_start"

[policy.fs]
read = [""]

[[nodes]]
id = "loop_a"
type = "agent_loop"
backend = "default"
tools = []
max_steps = 0

[[nodes]]
id = "think"
type = "llm_infer"
backend = "default"
prompt = "x"
temperature = 9.0

[[nodes]]
id = "loop_b"
type = "agent_loop"
backend = "default"
instructions = "x"
tools = ["browse"]
max_steps = 1
temperature = 9.0

[[nodes]]
id = "reply"
type = "respond"
status = 1000
content_type = ""
body_template = "x"

[[nodes]]
id = "each"
type = "map"
items_from = "trigger.items"
workflow = ""
max_items = 0
max_concurrent = 0

[[nodes]]
id = "fetch"
type = "http_request"
method = "GET"
url_from = "trigger.url"
headers = { "Bad Name" = "ok", "X-A" = "a\nb", "X-B" = "{{trigger.token}}" }

[[nodes]]
id = "tool"
type = "call_mcp_tool"
server = "nope"
tool = "t"

[[nodes]]
id = "fetch"
type = "terminate"

[[start_nodes]]
name = "main"
source = "manual"
entry_node = "nowhere"

[[start_nodes]]
name = "main"
source = "http"
"#;
    let (source, result) = load_text(text);
    assert_eq!(
        error_codes(&result),
        [
            "dup_node_id",
            "dup_start_name",
            "dup_http_route",
            "unknown_http_start_node",
            "unknown_trigger_start_node",
            "unknown_start_entry_node",
            "dangling_edge",
            "unknown_mcp_server",
            "agent_loop_steps_out_of_range",
            "agent_loop_missing_instructions",
            "agent_loop_no_tools",
            "agent_loop_unknown_tool",
            "respond_status_out_of_range",
            "respond_empty_content_type",
            "map_zero_max_items",
            "map_zero_concurrency",
            "map_empty_workflow",
            "http_header_bad_name",
            "http_header_crlf",
            "http_header_bad_placeholder",
            "policy_bad_pattern",
            "llm_bad_temperature",
            "agent_loop_bad_temperature",
            "trigger_bad_schedule",
            "unsupported_trigger_type",
            "auth_bad_ref",
            "rate_limit_out_of_range",
        ]
    );
    // A dangling edge skips the graph checks (13, 14) and the graph-dependent warnings.
    assert_eq!(warning_codes(&result), ["no_mcp_servers"]);
    insta::assert_json_snapshot!(as_json(&source, &result));
}

#[test]
fn graph_checks_come_last_cycle_then_entries_then_reachability() {
    let text = r#"
name = "graph_errors"

[[start_nodes]]
name = "inferred"
source = "manual"

[[start_nodes]]
name = "explicit"
source = "manual"
entry_node = "c"

[[nodes]]
id = "a"
type = "merge"

[[nodes]]
id = "b"
type = "merge"

[[nodes]]
id = "c"
type = "merge"

[[nodes]]
id = "d"
type = "merge"

[[edges]]
from = "a"
to = "b"

[[edges]]
from = "b"
to = "a"
"#;
    let (source, result) = load_text(text);
    assert_eq!(
        error_codes(&result),
        ["cycle", "ambiguous_start_entry", "unreachable_node", "unreachable_node", "unreachable_node"]
    );
    insta::assert_json_snapshot!(as_json(&source, &result));
}

#[test]
fn a_loop_edge_may_close_a_cycle_but_still_counts_as_incoming() {
    let text = r#"
name = "loop"
[[start_nodes]]
name = "main"
source = "manual"
[[nodes]]
id = "ask"
type = "merge"
[[nodes]]
id = "check"
type = "condition"
expr = "trigger.done"
[[edges]]
from = "ask"
to = "check"
[[edges]]
from = "check"
when = "false"
to = "ask"
max_iterations = 3
"#;
    // No `cycle`, but `ask` has an incoming (loop) edge: no node is without one.
    let (_, result) = load_text(text);
    assert_eq!(error_codes(&result), ["ambiguous_start_entry", "unreachable_node", "unreachable_node"]);
}

#[test]
fn graph_checks_are_skipped_without_start_nodes_or_nodes() {
    let no_starts =
        "name = \"library\"\n[[nodes]]\nid = \"a\"\ntype = \"merge\"\n[[nodes]]\nid = \"b\"\ntype = \"merge\"\n";
    let (_, result) = load_text(no_starts);
    assert!(result.is_ok(), "{:?}", error_codes(&result));
    let no_nodes = "name = \"empty\"\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n";
    let (_, result) = load_text(no_nodes);
    assert!(result.is_ok(), "{:?}", error_codes(&result));
}

/// One document per §9.3 warning (switch_unrouted_value has its own tests), each raising exactly
/// that warning and no error.
#[test]
fn each_warning_is_raised_on_its_own() {
    let cases: &[(&str, &str)] = &[
        (
            "unrouted_error_branch",
            r#"
[[nodes]]
id = "fetch"
type = "http_request"
method = "GET"
url_from = "trigger.url"
"#,
        ),
        (
            "unrouted_exhausted_branch",
            r#"
[[nodes]]
id = "agent"
type = "agent_loop"
backend = "default"
instructions = "Tidy up."
tools = ["read_file"]
max_steps = 4
"#,
        ),
        (
            "unfollowable_edge",
            r#"
[[nodes]]
id = "stop"
type = "fail"
[[nodes]]
id = "after"
type = "merge"
[[edges]]
from = "stop"
to = "after"
"#,
        ),
        (
            "ambiguous_edges",
            r#"
[[nodes]]
id = "a"
type = "merge"
[[nodes]]
id = "b"
type = "merge"
[[edges]]
from = "a"
to = "b"
[[edges]]
from = "a"
to = "b"
"#,
        ),
        (
            "unknown_backend",
            r#"
[[nodes]]
id = "ask"
type = "llm_infer"
backend = "gpt"
prompt = "hi"
"#,
        ),
        (
            "llm_schema_unusable",
            r#"
[[nodes]]
id = "ask"
type = "llm_infer"
backend = "default"
prompt = "hi"
output_schema = "schemas/missing.json"
"#,
        ),
        (
            "no_mcp_servers",
            r#"
[[nodes]]
id = "doc"
type = "read_mcp_resource"
resource_from = "trigger.uri"
"#,
        ),
        (
            "reserved_node_id",
            r#"
[[nodes]]
id = "trigger"
type = "merge"
"#,
        ),
        (
            "retry_ignored",
            r#"
[[nodes]]
id = "child"
type = "call"
workflow = "child.toml"
retry = { max_attempts = 3 }
[[nodes]]
id = "failed"
type = "fail"
[[edges]]
from = "child"
when = "error"
to = "failed"
"#,
        ),
        (
            "parallel_no_branches",
            r#"
[[nodes]]
id = "fan"
type = "parallel"
branches = []
[[nodes]]
id = "failed"
type = "fail"
[[edges]]
from = "fan"
when = "error"
to = "failed"
"#,
        ),
        (
            "respond_status_informational",
            r#"
[[nodes]]
id = "early"
type = "respond"
status = 103
body_template = "hints"
"#,
        ),
    ];
    for (code, nodes) in cases {
        let text = format!("name = \"warns_{code}\"\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n{nodes}");
        let (_, result) = load_text(&text);
        assert!(result.is_ok(), "{code}: warnings never fail validation, got {:?}", error_codes(&result));
        assert_eq!(warning_codes(&result), [*code], "{code}");
    }
}

#[test]
fn a_default_edge_routes_every_label() {
    let text = r#"
name = "defaults"
[[start_nodes]]
name = "main"
source = "manual"
entry_node = "classify"
[[nodes]]
id = "classify"
type = "llm_infer"
backend = "default"
prompt = "label it"
output_schema = { properties = { label = { enum = ["a", "b"] } } }
[[nodes]]
id = "route"
type = "switch"
expr = "classify.parsed.label"
[[nodes]]
id = "fetch"
type = "http_request"
method = "GET"
url_from = "trigger.url"
[[nodes]]
id = "agent"
type = "agent_loop"
backend = "default"
instructions = "x"
tools = ["read_file"]
max_steps = 1
[[nodes]]
id = "end"
type = "merge"
[[edges]]
from = "classify"
to = "route"
[[edges]]
from = "route"
when = "*"
to = "fetch"
[[edges]]
from = "fetch"
when = "*"
to = "agent"
[[edges]]
from = "agent"
when = "*"
to = "end"
"#;
    let (_, result) = load_text(text);
    assert!(result.is_ok());
    assert_eq!(warning_codes(&result), Vec::<&str>::new());
}

#[test]
fn labelled_and_default_out_edges_of_pause_and_terminal_nodes() {
    // `*` is allowed after pause_for_approval; any out-edge of fail/terminate is unfollowable.
    let text = r#"
name = "pause_edges"
[[start_nodes]]
name = "main"
source = "manual"
entry_node = "approve"
[[nodes]]
id = "approve"
type = "pause_for_approval"
[[nodes]]
id = "done"
type = "terminate"
[[nodes]]
id = "never"
type = "merge"
[[edges]]
from = "approve"
when = "*"
to = "done"
[[edges]]
from = "done"
when = "*"
to = "never"
"#;
    let (source, result) = load_text(text);
    assert!(result.is_ok());
    assert_eq!(warning_codes(&result), ["unfollowable_edge"]);
    insta::assert_json_snapshot!(as_json(&source, &result));
}

/// A classifier whose output schema lists the allowed labels, routed by a switch.
fn switch_workflow(output_schema: &str, edges: &[&str]) -> String {
    let mut text = format!(
        r#"
name = "switch_routes"
[[start_nodes]]
name = "main"
source = "manual"
entry_node = "classify"
[[start_nodes]]
name = "direct"
source = "manual"
entry_node = "handled"
[[nodes]]
id = "classify"
type = "llm_infer"
backend = "default"
prompt = "Classify: {{{{text}}}}"
input_from = "trigger"
output_schema = {output_schema}
[[nodes]]
id = "route"
type = "switch"
expr = "classify.parsed.verdict.label"
[[nodes]]
id = "handled"
type = "merge"
[[edges]]
from = "classify"
to = "route"
"#
    );
    for label in edges {
        text.push_str(&format!("[[edges]]\nfrom = \"route\"\nwhen = \"{label}\"\nto = \"handled\"\n"));
    }
    text
}

fn unrouted_values(text: &str, files: &dyn FileSource) -> Vec<String> {
    let (_, result) = load_text_with(text, false, files);
    let Ok(workflow) = result else { panic!("must validate: {:?}", error_codes(&result)) };
    workflow
        .warnings
        .iter()
        .filter(|w| w.code == "switch_unrouted_value")
        .map(|w| w.message.split('`').nth(3).expect("value in message").to_string())
        .collect()
}

#[test]
fn switch_unrouted_value_from_an_inline_schema_enum() {
    let schema =
        r#"{ properties = { verdict = { properties = { label = { enum = ["ok", "warn", 3, 2.0, false] } } } } }"#;
    let text = switch_workflow(schema, &["ok", "3"]);
    assert_eq!(unrouted_values(&text, &NoFiles), ["warn", "2.0", "false"]);
    let (source, result) = load_text(&text);
    insta::assert_json_snapshot!(as_json(&source, &result));
}

#[test]
fn switch_unrouted_value_from_a_schema_file_through_refs() {
    let schema = r##"{
        "$defs": {
            "verdict": {"type": "object", "properties": {"label": {"$ref": "#/$defs/label"}}},
            "label": {"enum": ["accept", "revise", "reject"]}
        },
        "properties": {"verdict": {"$ref": "#/$defs/verdict"}}
    }"##;
    let files = MemoryFiles::default().with("/work/schemas/verdict.json", schema);
    let text = switch_workflow("\"schemas/verdict.json\"", &["accept"]);
    assert_eq!(unrouted_values(&text, &files), ["revise", "reject"]);
    // A `*` edge routes them all.
    let text = switch_workflow("\"schemas/verdict.json\"", &["accept", "*"]);
    assert_eq!(unrouted_values(&text, &files), Vec::<String>::new());
}

#[test]
fn switch_unrouted_value_from_a_const() {
    let schema = r#"{ properties = { verdict = { properties = { label = { const = "only" } } } } }"#;
    assert_eq!(unrouted_values(&switch_workflow(schema, &[]), &NoFiles), ["only"]);
    assert_eq!(unrouted_values(&switch_workflow(schema, &["only"]), &NoFiles), Vec::<String>::new());
}

#[test]
fn switch_unrouted_value_is_skipped_when_the_schema_says_nothing() {
    // No enum at the path, a JSON-only contract, an unreadable file: no switch warnings.
    let no_enum = r#"{ properties = { verdict = { properties = { label = { type = "string" } } } } }"#;
    assert_eq!(unrouted_values(&switch_workflow(no_enum, &[]), &NoFiles), Vec::<String>::new());
    assert_eq!(unrouted_values(&switch_workflow("\"inline\"", &[]), &NoFiles), Vec::<String>::new());
    let text = switch_workflow("\"schemas/absent.json\"", &[]);
    assert_eq!(unrouted_values(&text, &NoFiles), Vec::<String>::new());
    let (_, result) = load_text(&text);
    assert_eq!(warning_codes(&result), ["llm_schema_unusable"]);
}

#[test]
fn schema_files_are_looked_up_in_the_working_directory_first_then_next_to_the_workflow() {
    let text = switch_workflow("\"schemas/verdict.json\"", &[]);
    let schema = |labels: &str| {
        format!(r#"{{"properties": {{"verdict": {{"properties": {{"label": {{"enum": {labels}}}}}}}}}}}"#)
    };
    let source = SourceFile::new("flows/wf.toml", Some("/flows/wf.toml".into()), text);
    let unrouted = |files: &dyn FileSource| -> Vec<String> {
        let options = ValidateOptions { mcp_stdio: false, cwd: "/work".into(), files };
        let workflow = load(&source, &options).expect("valid");
        workflow.warnings.iter().map(|w| w.message.split('`').nth(3).unwrap_or_default().to_string()).collect()
    };
    let both = MemoryFiles::default()
        .with("/work/schemas/verdict.json", &schema(r#"["from_cwd"]"#))
        .with("/flows/schemas/verdict.json", &schema(r#"["from_workflow_dir"]"#));
    assert_eq!(unrouted(&both), ["from_cwd"]);
    let beside = MemoryFiles::default().with("/flows/schemas/verdict.json", &schema(r#"["from_workflow_dir"]"#));
    assert_eq!(unrouted(&beside), ["from_workflow_dir"]);
}

#[test]
fn unusable_schema_files_are_warnings_with_the_reason() {
    let files = MemoryFiles::default()
        .with("/work/schemas/not_json.json", "{ this is not json")
        .with("/work/schemas/not_a_schema.json", r#"{"type": 12}"#)
        .with("/work/schemas/array.json", "[1, 2]");
    for file in ["not_json", "not_a_schema", "array"] {
        let text = format!(
            "name = \"s\"\n[[start_nodes]]\nname = \"main\"\nsource = \"http\"\n[[http_routes]]\nmethod = \"POST\"\npath = \"/\"\nstart_node = \"main\"\ninput_schema = \"schemas/{file}.json\"\n[[nodes]]\nid = \"ok\"\ntype = \"respond\"\nbody_template = \"{{}}\"\n"
        );
        let (source, result) = load_text_with(&text, false, &files);
        assert_eq!(warning_codes(&result), ["llm_schema_unusable"], "{file}");
        insta::with_settings!({ snapshot_suffix => file }, {
            insta::assert_json_snapshot!(as_json(&source, &result));
        });
    }
}

#[test]
fn graph_warnings_are_skipped_when_an_edge_dangles_but_the_others_are_kept() {
    let text = r#"
name = "dangling"
[[start_nodes]]
name = "main"
source = "manual"
entry_node = "trigger"
[[nodes]]
id = "trigger"
type = "http_request"
method = "GET"
url_from = "x.url"
[[edges]]
from = "trigger"
to = "nowhere"
"#;
    let (_, result) = load_text(text);
    let Err(LoadFailure::Invalid(rejected)) = &result else { panic!("must be rejected") };
    assert_eq!(error_codes(&result), ["dangling_edge"]);
    // `unrouted_error_branch` depends on the graph and is skipped; `reserved_node_id` is not.
    assert_eq!(rejected.warnings.iter().map(|w| w.code).collect::<Vec<_>>(), ["reserved_node_id"]);
}

#[test]
fn the_mcp_stdio_server_is_named_default_and_counts_as_configured() {
    let text = |server: &str| {
        format!(
            "name = \"m\"\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n[[nodes]]\nid = \"call\"\ntype = \"call_mcp_tool\"\ntool = \"t\"\n{server}[[nodes]]\nid = \"failed\"\ntype = \"fail\"\n[[edges]]\nfrom = \"call\"\nwhen = \"error\"\nto = \"failed\"\n"
        )
    };
    let named = text("server = \"default\"\n");
    let (_, without_stdio) = load_text_with(&named, false, &NoFiles);
    assert_eq!(error_codes(&without_stdio), ["unknown_mcp_server"]);
    let (_, with_stdio) = load_text_with(&named, true, &NoFiles);
    assert!(with_stdio.is_ok());
    assert_eq!(warning_codes(&with_stdio), Vec::<&str>::new());
    let unnamed = text("");
    let (_, alone) = load_text_with(&unnamed, true, &NoFiles);
    assert!(alone.is_ok(), "a single configured server needs no `server` field");
    let (_, none) = load_text_with(&unnamed, false, &NoFiles);
    assert_eq!(warning_codes(&none), ["no_mcp_servers"]);
}

#[test]
fn a_valid_workflow_compiles_entries_and_edges() {
    let (_, result) = load_text(
        r#"
name = "compiled"
[[start_nodes]]
name = "main"
source = "manual"
[[nodes]]
id = "first"
type = "condition"
expr = "trigger.ok"
[[nodes]]
id = "yes"
type = "merge"
[[nodes]]
id = "other"
type = "merge"
[[edges]]
from = "first"
when = "true"
to = "yes"
[[edges]]
from = "first"
when = "*"
to = "other"
"#,
    );
    let workflow = result.expect("valid");
    assert_eq!(workflow.start("main").and_then(|s| s.entry), workflow.index_of("first"));
    assert_eq!(workflow.edges[0].when, agentd_workflow::When::Label("true".into()));
    assert_eq!(workflow.edges[1].when, agentd_workflow::When::Default);
    assert_eq!(workflow.out_edges[workflow.index_of("first").expect("node")], [0, 1]);
}

#[test]
fn the_worked_example_warns_about_spam_without_its_default_edge() {
    // 03 §10 run 3: without the `*` edge (and the node it led to) `spam` is unrouted.
    let path = crate::support::corpus_dir().join("valid").join("ticket_triage.toml");
    let text = std::fs::read_to_string(path).expect("corpus file");
    let without_default = text.replace("[[nodes]]\nid = \"discard\"\ntype = \"terminate\"\n", "").replace(
        "[[edges]]\nfrom = \"route\"\nwhen = \"*\"            # spam, or anything unexpected\nto = \"discard\"\n",
        "",
    );
    assert_ne!(text, without_default);
    let files = MemoryFiles::default().with(
        "/work/schemas/ticket.json",
        &std::fs::read_to_string(crate::support::corpus_dir().join("valid/schemas/ticket.json")).expect("schema"),
    );
    let (_, result) = load_text_with(&without_default, false, &files);
    let workflow = result.expect("still valid");
    let messages: Vec<&str> = workflow.warnings.iter().map(|w| w.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "node `route` (switch): value `spam` allowed by the output schema of `classify` has no `when = \"spam\"` edge"
        ]
    );
}
