//! Prometheus metrics of serve mode (08 §5): one process-wide recorder with the spec's
//! histogram buckets and a `# HELP` line for every family.
//!
//! The recorder is installed globally the first time a server starts (or when the CLI calls
//! [`install`]); every series carries the `workflow` label.

use std::sync::OnceLock;

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Histogram bucket upper bounds in seconds (08 §5.3).
pub const BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder once and returns its handle; `None` when another recorder
/// was installed first (then `/metrics` renders nothing of ours).
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new().set_buckets(BUCKETS).ok()?;
            let handle = builder.install_recorder().ok()?;
            describe();
            Some(handle)
        })
        .as_ref()
}

/// The `# HELP` texts (promtool requires them).
fn describe() {
    describe_counter!("agentd_workflow_starts_total", "Runs started, child runs included (a resume is not a start).");
    describe_counter!("agentd_workflow_completions_total", "Runs that ended completed.");
    describe_counter!("agentd_workflow_failures_total", "Runs that ended failed.");
    describe_counter!("agentd_workflow_timeouts_total", "Runs that ended timed_out.");
    describe_counter!("agentd_workflow_errors_total", "Runs that ended errored.");
    describe_counter!("agentd_workflow_pauses_total", "Runs that ended paused.");
    describe_counter!("agentd_node_executions_total", "Node executions (a retried node counts once).");
    describe_counter!("agentd_node_failures_total", "Node executions that ended in an error.");
    describe_counter!("agentd_policy_denials_total", "Policy denials.");
    describe_counter!("agentd_llm_calls_total", "Successful model calls of runs.");
    describe_counter!("agentd_llm_tokens_total", "Prompt plus completion tokens of those calls.");
    describe_gauge!("agentd_build_info", "Always 1; labelled with the runtime version.");
    describe_gauge!("agentd_runs_in_flight", "Root runs currently executing.");
    describe_histogram!("agentd_run_duration_seconds", Unit::Seconds, "Wall time of a root run invocation.");
    describe_counter!("agentd_http_requests_total", "Answered HTTP requests, built-in endpoints included.");
    describe_histogram!(
        "agentd_http_request_duration_seconds",
        Unit::Seconds,
        "Time from request head received to response produced."
    );
    describe_gauge!("agentd_http_in_flight_requests", "HTTP requests being handled.");
    describe_gauge!("agentd_http_open_connections", "Open HTTP connections.");
    describe_counter!("agentd_http_auth_denials_total", "Requests refused by authentication.");
    describe_counter!("agentd_http_rate_limited_total", "Requests refused by a rate limit.");
    describe_counter!("agentd_http_idempotent_replays_total", "Idempotent redeliveries answered from the store.");
    describe_counter!("agentd_http_idempotency_conflicts_total", "Idempotent deliveries answered 409 (in flight).");
    describe_counter!("agentd_trigger_fires_total", "Scheduled and file-watch trigger fires.");
    describe_counter!("agentd_reloads_total", "Configuration reloads by result.");
    describe_gauge!("agentd_process_start_time_seconds", "Process start time as a Unix timestamp.");
}

/// Counts the end of a root run started by serve mode, from its record's cost.
pub fn record_run(workflow: &str, start_node: &str, result: &agentd_engine::RunResult, elapsed_secs: f64) {
    let cost = &result.record.cost;
    let w = workflow.to_string();
    let pairs: [(&'static str, u64); 11] = [
        ("agentd_workflow_starts_total", cost.workflow_starts),
        ("agentd_workflow_completions_total", cost.workflow_completions),
        ("agentd_workflow_failures_total", cost.workflow_failures),
        ("agentd_workflow_timeouts_total", cost.workflow_timeouts),
        ("agentd_workflow_errors_total", cost.workflow_errored),
        ("agentd_node_executions_total", cost.node_executions),
        ("agentd_node_failures_total", cost.node_failures),
        ("agentd_policy_denials_total", cost.policy_denials),
        ("agentd_llm_calls_total", cost.llm_calls),
        ("agentd_llm_tokens_total", cost.llm_tokens),
        ("agentd_workflow_pauses_total", u64::from(result.outcome.status() == "paused")),
    ];
    for (name, value) in pairs {
        metrics::counter!(name, "workflow" => w.clone()).increment(value);
    }
    metrics::histogram!(
        "agentd_run_duration_seconds",
        "workflow" => w,
        "start_node" => start_node.to_string(),
        "status" => result.outcome.status()
    )
    .record(elapsed_secs);
}
