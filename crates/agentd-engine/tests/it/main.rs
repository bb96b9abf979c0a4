//! Engine behaviour through its public API: edge choice, loops, retries, deadlines, the step
//! cap and the documents a run produces. Time is tokio's paused clock, so back-off and deadline
//! tests run instantly and never sleep for real.

use std::sync::Arc;
use std::time::Duration;

use agentd_engine::audit::CollectingAudit;
use agentd_engine::{Cancel, Engine, EngineOptions, Outcome, RunRequest, RunResult};
use agentd_workflow::{NoFiles, SourceFile, ValidateOptions};
use serde_json::{Value, json};

fn engine(toml: &str, audit: Arc<CollectingAudit>) -> Engine {
    let source = SourceFile::new("test.toml", None, toml.to_string());
    let options = ValidateOptions { mcp_stdio: false, cwd: "/".into(), files: &NoFiles };
    let workflow = agentd_workflow::load(&source, &options).unwrap_or_else(|e| panic!("workflow must load: {e:?}"));
    Engine::build(Arc::new(workflow), EngineOptions { cwd: std::env::temp_dir(), audit, durable: Default::default() })
        .expect("engine")
}

async fn run_with(engine: &Engine, input: Value, timeout: Duration) -> RunResult {
    let request = RunRequest {
        start: "main".into(),
        input,
        trigger_kind: "manual".into(),
        timeout,
        dry_run: false,
        cancel: Cancel::default(),
        resume: None,
    };
    engine.run(request).await
}

async fn run(toml: &str, input: Value) -> (RunResult, Arc<CollectingAudit>) {
    let audit = Arc::new(CollectingAudit::default());
    let engine = engine(toml, audit.clone());
    (run_with(&engine, input, Duration::from_secs(120)).await, audit)
}

const HEAD: &str = "name = \"t\"\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\n";

#[tokio::test(start_paused = true)]
async fn default_edge_and_bounded_loop() {
    // route emits `retry` until the loop edge is used up, then falls to the `*` edge.
    let toml = format!(
        "{HEAD}entry_node = \"route\"
[[nodes]]
id = \"route\"
type = \"switch\"
expr = \"trigger.answer\"
[[nodes]]
id = \"again\"
type = \"merge\"
[[nodes]]
id = \"give_up\"
type = \"fail\"
reason = \"gave up\"
[[edges]]
from = \"route\"
when = \"retry\"
to = \"again\"
max_iterations = 3
[[edges]]
from = \"again\"
to = \"route\"
[[edges]]
from = \"route\"
when = \"*\"
to = \"give_up\"
"
    );
    let (result, _) = run(&toml, json!({"answer": "retry"})).await;
    assert_eq!(result.outcome, Outcome::Failed { reason: "gave up".into(), last_node: "give_up".into() });
    let path: Vec<&str> = result.record.trace.entries.iter().map(|e| e.node_id.as_str()).collect();
    assert_eq!(path, ["route", "again", "route", "again", "route", "again", "route", "give_up"]);
    assert_eq!(result.record.cost.node_executions, 8);
    assert_eq!(result.record.cost.workflow_failures, 1);
}

#[tokio::test(start_paused = true)]
async fn ambiguous_edges_error_without_an_extra_trace_entry() {
    let toml = format!(
        "{HEAD}[[nodes]]\nid = \"a\"\ntype = \"merge\"\n[[nodes]]\nid = \"b\"\ntype = \"merge\"\n[[nodes]]\nid = \"c\"\ntype = \"merge\"\n[[edges]]\nfrom = \"a\"\nto = \"b\"\n[[edges]]\nfrom = \"a\"\nto = \"c\"\n"
    );
    let (result, _) = run(&toml, Value::Null).await;
    assert_eq!(
        result.outcome,
        Outcome::Errored {
            reason: "workflow `t`: node `a` has 2 matching out-edges for branch `none`; workflow graphs must select exactly one".into(),
            last_node: Some("a".into()),
        }
    );
    assert_eq!(result.record.trace.entries.len(), 1);
    assert_eq!(result.record.trace.entries[0].outcome, "continue");
}

#[tokio::test(start_paused = true)]
async fn labelled_results_never_take_unlabelled_edges() {
    let toml = format!(
        "{HEAD}[[nodes]]\nid = \"check\"\ntype = \"condition\"\nexpr = \"trigger.x\"\n[[nodes]]\nid = \"next\"\ntype = \"merge\"\n[[edges]]\nfrom = \"check\"\nto = \"next\"\n"
    );
    let (result, _) = run(&toml, json!({"x": 1})).await;
    // `true` has no `when = "true"` edge: dead end at `check`, completed with its output.
    assert_eq!(
        result.outcome,
        Outcome::Completed { final_value: json!({"value": 1}), last_node: "check".into(), http_response: None }
    );
}

#[tokio::test(start_paused = true)]
async fn step_cap_stops_an_endless_bounded_loop() {
    let toml = format!(
        "{HEAD}entry_node = \"a\"\n[[nodes]]\nid = \"a\"\ntype = \"merge\"\n[[nodes]]\nid = \"b\"\ntype = \"merge\"\n[[edges]]\nfrom = \"a\"\nto = \"b\"\n[[edges]]\nfrom = \"b\"\nto = \"a\"\nmax_iterations = 100000\n"
    );
    let (result, _) = run(&toml, Value::Null).await;
    assert_eq!(
        result.outcome,
        Outcome::Errored {
            reason: "workflow `t`: safety cap hit: engine walked 10000 nodes without reaching a terminal outcome"
                .into(),
            last_node: Some("b".into()),
        }
    );
    assert_eq!(result.record.trace.entries.len(), 10_000);
}

fn retry_workflow(on: &str, missing: &str) -> String {
    format!(
        "{HEAD}[[nodes]]\nid = \"read\"\ntype = \"read_file\"\npath_from = \"trigger.path\"\nretry = {{ max_attempts = 3, backoff_ms = 1000, on = \"{on}\" }}\n[policy.fs]\nread = [\"{missing}/**\"]\n"
    )
}

#[tokio::test(start_paused = true)]
async fn transient_tool_errors_are_retried_with_linear_backoff() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nope.txt");
    let toml = retry_workflow("transient", &dir.path().display().to_string());
    let audit = Arc::new(CollectingAudit::default());
    let engine = engine(&toml, audit.clone());
    let result = run_with(&engine, json!({"path": missing.display().to_string()}), Duration::from_secs(120)).await;
    let Outcome::Errored { reason, .. } = &result.outcome else { panic!("{:?}", result.outcome) };
    assert!(reason.starts_with(&format!("tool `read_file` failed: read {}:", missing.display())), "{reason}");
    let entry = &result.record.trace.entries[0];
    assert_eq!(entry.attempts, Some(3));
    assert_eq!(entry.outcome, "error");
    assert_eq!(result.record.cost.node_executions, 1);
    assert_eq!(result.record.cost.node_failures, 1);
    let waits: Vec<u64> = audit
        .events()
        .iter()
        .filter(|(_, name, _)| name == "node.retry")
        .map(|(_, _, fields)| fields["wait_ms"].as_u64().expect("wait_ms"))
        .collect();
    assert_eq!(waits, [1000, 2000]);
}

#[tokio::test(start_paused = true)]
async fn policy_denials_are_never_retried() {
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = retry_workflow("any", &dir.path().join("allowed").display().to_string());
    let (result, audit) = run(&toml, json!({"path": "/etc/hostname"})).await;
    let Outcome::Errored { reason, .. } = &result.outcome else { panic!("{:?}", result.outcome) };
    assert!(
        reason.starts_with("policy violation: read_file denied on /etc/hostname: path not in [policy.fs].read"),
        "{reason}"
    );
    assert_eq!(result.record.trace.entries[0].attempts, None);
    assert_eq!(result.record.cost.policy_denials, 1);
    assert!(
        audit
            .events()
            .iter()
            .any(|(_, name, f)| name == "policy.denied" && f["family"] == "fs" && f["op"] == "read_file")
    );
    assert!(!audit.events().iter().any(|(_, name, _)| name == "node.retry"));
}

#[tokio::test(start_paused = true)]
async fn a_backoff_past_the_deadline_times_out_at_that_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = retry_workflow("transient", &dir.path().display().to_string());
    let audit = Arc::new(CollectingAudit::default());
    let engine = engine(&toml, audit);
    let path = dir.path().join("nope.txt").display().to_string();
    let result = run_with(&engine, json!({ "path": path }), Duration::from_millis(500)).await;
    let Outcome::TimedOut { last_node, .. } = &result.outcome else { panic!("{:?}", result.outcome) };
    assert_eq!(last_node.as_deref(), Some("read"));
    assert_eq!(result.record.status, "timed_out");
    assert_eq!(result.record.cost.workflow_timeouts, 1);
}

#[tokio::test(start_paused = true)]
async fn unknown_start_errors_before_any_node() {
    let audit = Arc::new(CollectingAudit::default());
    let engine = engine(&format!("{HEAD}[[nodes]]\nid = \"done\"\ntype = \"terminate\"\n"), audit);
    let request = RunRequest {
        start: "nope".into(),
        input: Value::Null,
        trigger_kind: "manual".into(),
        timeout: Duration::from_secs(1),
        dry_run: false,
        cancel: Cancel::default(),
        resume: None,
    };
    let result = engine.run(request).await;
    assert_eq!(
        result.outcome,
        Outcome::Errored { reason: "workflow `t`: unknown start node `nope`".into(), last_node: None }
    );
    assert!(result.record.execution_id.starts_with("exec-"));
    assert!(result.record.trace.entries.is_empty());
}

#[tokio::test(start_paused = true)]
async fn cancellation_ends_the_run_errored_with_its_reason() {
    let audit = Arc::new(CollectingAudit::default());
    let engine = engine(&format!("{HEAD}[[nodes]]\nid = \"done\"\ntype = \"terminate\"\n"), audit);
    let cancel = Cancel::default();
    cancel.cancel("interrupted by signal SIGTERM");
    let request = RunRequest {
        start: "main".into(),
        input: Value::Null,
        trigger_kind: "manual".into(),
        timeout: Duration::from_secs(1),
        dry_run: false,
        cancel,
        resume: None,
    };
    let result = engine.run(request).await;
    assert_eq!(result.outcome, Outcome::Errored { reason: "interrupted by signal SIGTERM".into(), last_node: None });
}

#[tokio::test(start_paused = true)]
async fn respond_reply_rides_the_completed_outcome_and_the_record() {
    let toml = format!(
        "{HEAD}[[nodes]]\nid = \"answer\"\ntype = \"respond\"\nstatus = 202\nbody_template = '{{\"id\": \"{{{{id}}}}\"}}'\n"
    );
    let (result, _) = run(&toml, json!({"id": "42"})).await;
    let Outcome::Completed { http_response: Some(reply), final_value, .. } = &result.outcome else {
        panic!("{:?}", result.outcome)
    };
    assert_eq!(reply.status, 202);
    assert_eq!(reply.body, "{\"id\": \"42\"}");
    assert_eq!(final_value, &json!({"bytes": 12, "content_type": "application/json", "status": 202}));
    assert_eq!(result.record.detail["http_response"]["status"], 202);
}

#[tokio::test(start_paused = true)]
async fn trigger_value_merges_object_inputs_and_wraps_others() {
    assert_eq!(
        agentd_engine::trigger_value("manual", &json!({"a": 1, "kind": "cron"})),
        json!({"a": 1, "kind": "cron"})
    );
    assert_eq!(agentd_engine::trigger_value("http", &json!([1])), json!({"kind": "http", "input": [1]}));
    assert_eq!(agentd_engine::trigger_value("manual", &Value::Null), json!({"kind": "manual", "input": null}));
}

#[test]
fn a_rego_layer_this_build_cannot_evaluate_refuses_to_start() {
    let toml = format!(
        "{HEAD}[[nodes]]\nid = \"done\"\ntype = \"terminate\"\n[policy.fs]\nread = [\"/srv/**\"]\n[policy.rego]\ninline = \"package agent\\ndefault allow = false\"\n"
    );
    let source = SourceFile::new("test.toml", None, toml);
    let options = ValidateOptions { mcp_stdio: false, cwd: "/".into(), files: &NoFiles };
    let workflow = agentd_workflow::load(&source, &options).expect("valid");
    let audit = Arc::new(CollectingAudit::default());
    let error =
        Engine::build(Arc::new(workflow), EngineOptions { cwd: "/".into(), audit, durable: Default::default() })
            .err()
            .expect("refused");
    assert!(error.to_string().starts_with("[policy.rego]: the Rego policy layer is not available"), "{error}");
}
