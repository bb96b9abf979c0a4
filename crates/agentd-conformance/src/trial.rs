//! One trial (10 §3): a fresh trial dir and stub, the workflow loaded with the trial's
//! placeholders, the runtime built, ONE root run (through approvals and a simulated crash when
//! the scenario asks), then the `[expected]` checks.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentd_engine::durable::Resume;
use agentd_engine::{Cancel, Outcome, RunRequest, RunResult};
use agentd_store::{ApprovalDecision, DecisionVia, Store, Verdict};
use agentd_workflow::Workflow;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::expect::{self, Evidence, HttpResponse, Observed};
use crate::prepare::{self, Placeholders};
use crate::runtime::{self, Runtime, Setup};
use crate::scenario::{Decision, Scenario, TriggerKind};
use crate::stub::Stub;

/// Successive pauses a trial follows before it fails.
const MAX_PAUSES: u32 = 16;

/// Trial-0 style cost of one trial.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrialCost {
    /// Successful model calls.
    #[serde(default)]
    pub llm_calls: u64,
    /// Prompt + completion tokens.
    #[serde(default)]
    pub llm_tokens: u64,
    /// Node executions.
    #[serde(default)]
    pub node_executions: u64,
    /// Policy denials.
    #[serde(default)]
    pub policy_denials: u64,
}

/// What one trial produced.
#[derive(Debug, Clone)]
pub struct TrialResult {
    /// 0-based trial index.
    pub index: u32,
    /// The trial seed.
    pub seed: u64,
    /// All checks passed.
    pub passed: bool,
    /// Run status word (or `rejected`).
    pub status: String,
    /// Trial wall time.
    pub latency_ms: u64,
    /// Failure texts, without the `trial <i>:` prefix.
    pub failures: Vec<String>,
    /// The run's cost.
    pub cost: TrialCost,
    /// The kept trial dir (`--keep-trial-dirs`).
    pub kept_dir: Option<PathBuf>,
}

/// Harness settings that are the same for every trial.
#[derive(Debug, Clone)]
pub struct TrialOptions {
    /// This binary, re-executed for scripted MCP servers.
    pub exe: PathBuf,
    /// Keep trial dirs.
    pub keep_dirs: bool,
}

/// Runs trial `index` of a scenario whose workflow validated at load time.
pub async fn run(scenario: &Scenario, index: u32, seed: u64, options: &TrialOptions) -> TrialResult {
    let started = Instant::now();
    let (observed, failures, kept_dir) = match execute(scenario, seed, options, started).await {
        Ok(done) => done,
        Err(text) => (startup_errored(text.clone()), vec![text], None),
    };
    let latency_ms = elapsed_ms(started);
    let cost = TrialCost {
        llm_calls: observed.llm_calls,
        llm_tokens: observed.llm_tokens,
        node_executions: observed.node_executions,
        policy_denials: observed.policy_denials,
    };
    TrialResult {
        index,
        seed,
        passed: failures.is_empty(),
        status: observed.status,
        latency_ms,
        failures,
        cost,
        kept_dir,
    }
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Sets up, runs and checks one trial; the checks run before the trial dir goes away.
async fn execute(
    scenario: &Scenario,
    seed: u64,
    options: &TrialOptions,
    started: Instant,
) -> Result<(Observed, Vec<String>, Option<PathBuf>), String> {
    let dir = tempfile::Builder::new().prefix("agentd-trial-").tempdir().map_err(|e| format!("trial dir: {e}"))?;
    let trial_path = std::fs::canonicalize(dir.path()).unwrap_or_else(|_| dir.path().to_path_buf());
    let file = &scenario.file;
    let stub = Stub::start(file.faults.http_stub_down).await.map_err(|e| format!("http stub: {e}"))?;
    let placeholders = Placeholders {
        scenario_dir: scenario.dir.clone(),
        trial_dir: trial_path.display().to_string().replace('\\', "/"),
        http_stub: stub.base_url.clone(),
    };
    stub.configure(
        file.http
            .stubs
            .iter()
            .cloned()
            .map(|mut s| {
                s.body = placeholders.apply(&s.body);
                s
            })
            .collect(),
    );
    let workflow = Arc::new(prepare::load_workflow(scenario, &placeholders)?);
    let setup = Setup {
        scenario,
        workflow: workflow.clone(),
        placeholders: &placeholders,
        trial_dir: &trial_path,
        seed,
        exe: &options.exe,
        serve: file.trigger.request.is_some(),
    };
    let (observed, response, runtime) = match runtime::build(&setup).await {
        Ok(runtime) => {
            let (observed, response) = drive(scenario, &workflow, &runtime, &placeholders).await?;
            (observed, response, Some(runtime))
        }
        Err(text) => (startup_errored(text), None, None),
    };
    let mut extra = Vec::new();
    let mut leaks = Vec::new();
    if let Some(runtime) = &runtime {
        extra.extend(runtime.model.prompt_mismatches());
        if file.expected.no_secret_leak {
            leaks = secret_leaks(runtime, &workflow, &observed_documents(runtime, &observed)).await;
        }
    }
    let expected = expect::substituted(&file.expected, &placeholders);
    let requests = u64::try_from(stub.requests().len()).unwrap_or(u64::MAX);
    let evidence = Evidence {
        observed: &observed,
        http_requests: requests,
        latency_ms: elapsed_ms(started),
        response: response.as_ref(),
        leaks: &leaks,
    };
    let mut failures = expect::check(&expected, &evidence);
    failures.extend(extra);
    if let Some(hub) = runtime.as_ref().and_then(|r| r.engine.mcp()) {
        hub.shutdown().await;
    }
    drop(runtime);
    let kept = options.keep_dirs.then(|| dir.keep());
    Ok((observed, failures, kept))
}

fn startup_errored(text: String) -> Observed {
    Observed { status: "errored".into(), reason: Some(text), ..Observed::default() }
}

/// Starts the run (directly or over HTTP), then follows crashes and pauses to the end.
async fn drive(
    scenario: &Scenario,
    workflow: &Arc<Workflow>,
    runtime: &Runtime,
    placeholders: &Placeholders,
) -> Result<(Observed, Option<HttpResponse>), String> {
    let file = &scenario.file;
    let start = file.trigger.start.clone().or_else(|| workflow.start_nodes.first().map(|s| s.name.clone()));
    let start = start.ok_or("the workflow has no start node")?;
    let timeout = effective_timeout(workflow, file.timeout_secs);
    if let Some(request) = &file.trigger.request {
        return crate::deliver::deliver(scenario, workflow, runtime, request, &start, timeout, placeholders).await;
    }
    let input = trigger_input(workflow, file.trigger.kind, &start, file.trigger.payload.as_ref(), placeholders)?;
    let request = RunRequest {
        start,
        input,
        trigger_kind: file.trigger.kind.as_str().to_string(),
        timeout,
        dry_run: file.dry_run,
        cancel: runtime.cancel.clone(),
        resume: None,
    };
    let mut result = runtime.engine.run(request).await;
    if let Some(crashing) = &runtime.crashing
        && crashing.crashed()
    {
        crashing.revive();
        result = resume_after_crash(runtime, &result, timeout, file.dry_run).await?;
    }
    let result = follow_pauses(scenario, runtime, result, timeout).await?;
    Ok((observed_from_result(&result), None))
}

/// min(`timeout_secs` (≥ 1), `[budget].max_run_time_secs` when > 0).
pub fn effective_timeout(workflow: &Workflow, timeout_secs: u64) -> Duration {
    let secs = timeout_secs.max(1);
    let cap = workflow.environment.budget.as_ref().and_then(|b| b.max_run_time_secs).filter(|s| *s > 0);
    Duration::from_secs(cap.map_or(secs, |c| c.min(secs)))
}

/// The trigger input: the payload, or for schedule and watch kinds the payload the real
/// trigger would deliver with the scenario's object payload merged over it (10 §2.3).
pub fn trigger_input(
    workflow: &Workflow,
    kind: TriggerKind,
    start: &str,
    payload: Option<&Value>,
    placeholders: &Placeholders,
) -> Result<Value, String> {
    let mut payload = payload.cloned().unwrap_or(Value::Null);
    placeholders.apply_json(&mut payload);
    let base = match kind {
        TriggerKind::Manual | TriggerKind::Http | TriggerKind::Event => return Ok(payload),
        TriggerKind::Cron | TriggerKind::Interval | TriggerKind::FsWatch => schedule_payload(workflow, kind, start)?,
    };
    let mut merged = base;
    if let (Value::Object(target), Value::Object(fields)) = (&mut merged, payload) {
        target.extend(fields);
    }
    Ok(merged)
}

fn schedule_payload(workflow: &Workflow, kind: TriggerKind, start: &str) -> Result<Value, String> {
    use agentd_workflow::TriggerConfig;
    let now = u64::try_from(jiff::Timestamp::now().as_millisecond()).unwrap_or(0);
    let found = workflow.environment.triggers.iter().find_map(|t| match (kind, t) {
        (TriggerKind::Cron, TriggerConfig::Cron(c)) if c.start_node.get_ref() == start => {
            Some(json!({"kind": "cron", "schedule": c.schedule.get_ref(), "fired_at_unix_ms": now, "tick": 1}))
        }
        (TriggerKind::Interval, TriggerConfig::Interval(i)) if i.start_node.get_ref() == start => {
            let every =
                agentd_workflow::schedule::parse_interval(i.every.get_ref()).map(|d| d.as_millis()).unwrap_or(0);
            Some(json!({"kind": "interval", "every_ms": every, "fired_at_unix_ms": now, "tick": 1}))
        }
        (TriggerKind::FsWatch, TriggerConfig::FsWatch(f)) if f.start_node.get_ref() == start => {
            let path = std::path::absolute(&f.path).map_or_else(|_| f.path.clone(), |p| p.display().to_string());
            Some(json!({"kind": "fs_watch", "path": path, "event": "create", "fired_at_unix_ms": now, "tick": 1}))
        }
        _ => None,
    });
    found.ok_or_else(|| format!("no [[triggers]] entry of type {} starts `{start}`", kind.as_str()))
}

/// `--resume-incomplete` of the crashed run: claim, resume from the progress checkpoint.
async fn resume_after_crash(
    runtime: &Runtime,
    crashed: &RunResult,
    timeout: Duration,
    dry_run: bool,
) -> Result<RunResult, String> {
    let store = runtime.store.as_ref().ok_or("crash_after_node needs the trial store")?;
    let run_id = crashed.record.execution_id.clone();
    let checkpoint = store
        .checkpoint(&run_id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("crash_after_node: run {run_id} left no checkpoint to resume"))?;
    let owner = agentd_store::process_owner();
    store.claim(&run_id, &owner, timeout * 2 + Duration::from_secs(60)).map_err(|e| e.to_string())?;
    let result = runtime.engine.run(resume_request(checkpoint, None, timeout, dry_run)).await;
    let _ = store.release(&run_id, &owner);
    Ok(result)
}

fn resume_request(
    checkpoint: agentd_store::Checkpoint,
    note: Option<String>,
    timeout: Duration,
    dry_run: bool,
) -> RunRequest {
    RunRequest {
        start: String::new(),
        input: Value::Null,
        trigger_kind: "manual".to_string(),
        timeout,
        dry_run,
        cancel: Cancel::default(),
        resume: Some(Resume { checkpoint, note }),
    }
}

/// Applies `[approval]` to every pause, up to [`MAX_PAUSES`].
async fn follow_pauses(
    scenario: &Scenario,
    runtime: &Runtime,
    mut result: RunResult,
    timeout: Duration,
) -> Result<RunResult, String> {
    let Some(approval) = &scenario.file.approval else { return Ok(result) };
    let mut pauses = 0;
    while let Outcome::Paused { run_id, .. } = &result.outcome {
        pauses += 1;
        if pauses > MAX_PAUSES {
            return Err("too many pauses".into());
        }
        let run_id = run_id.clone();
        let store = runtime.store.as_ref().ok_or("a paused run needs the trial store")?;
        let checkpoint = store
            .checkpoint(&run_id)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("run {run_id}: no checkpoint"))?;
        let approve = approval.decision == Decision::Approve;
        let decision = ApprovalDecision {
            decision: if approve { Verdict::Approved } else { Verdict::Rejected },
            via: if approve { DecisionVia::Approve } else { DecisionVia::Reject },
            note: if approve { approval.note.clone() } else { approval.reason.clone() },
            actor: "agentd-conformance".to_string(),
            decided_at: agentd_engine::timestamp(jiff::Timestamp::now()),
        };
        store.decide_approval(&run_id, &decision).map_err(|e| e.to_string())?;
        if !approve {
            return Ok(reject(store.as_ref(), result, &checkpoint, approval.reason.as_deref()));
        }
        result =
            runtime.engine.run(resume_request(checkpoint, approval.note.clone(), timeout, scenario.file.dry_run)).await;
    }
    Ok(result)
}

/// `agentd reject`: the checkpoint goes, the run ends failed with the rejection reason.
fn reject(
    store: &dyn Store,
    paused: RunResult,
    checkpoint: &agentd_store::Checkpoint,
    reason: Option<&str>,
) -> RunResult {
    let reason = reason.map_or_else(|| "rejected by operator".to_string(), |r| format!("rejected: {r}"));
    let _ = store.delete_checkpoint(&checkpoint.run_id);
    let outcome = Outcome::Failed { reason: reason.clone(), last_node: checkpoint.paused_at.clone() };
    let mut record = paused.record;
    record.status = "failed".into();
    record.last_node = Some(checkpoint.paused_at.clone());
    record.detail = json!({"reason": reason});
    record.cost.count_end(&outcome);
    RunResult { outcome, record }
}

/// The observed run of an engine result.
pub fn observed_from_result(result: &RunResult) -> Observed {
    let (reason, final_value) = match &result.outcome {
        Outcome::Completed { final_value, .. } => (None, Some(final_value.clone())),
        Outcome::Failed { reason, .. } | Outcome::Errored { reason, .. } => (Some(reason.clone()), None),
        Outcome::TimedOut { .. } | Outcome::Paused { .. } => (None, None),
    };
    observed_from_record(&result.record, result.outcome.status(), result.outcome.last_node(), reason, final_value)
}

/// The observed run of a run record (status, reason and final value given by the caller).
pub fn observed_from_record(
    record: &agentd_engine::RunRecord,
    status: &str,
    last_node: Option<&str>,
    reason: Option<String>,
    final_value: Option<Value>,
) -> Observed {
    let mut outputs = std::collections::BTreeMap::new();
    for entry in &record.trace.entries {
        if entry.outcome == "continue" {
            outputs.insert(entry.node_id.clone(), entry.output.clone());
        }
    }
    Observed {
        status: status.to_string(),
        last_node: last_node.map(str::to_string),
        reason,
        final_value,
        path: record.trace.entries.iter().map(|e| e.node_id.clone()).collect(),
        outputs,
        llm_calls: record.cost.llm_calls,
        llm_tokens: record.cost.llm_tokens,
        node_executions: record.cost.node_executions,
        policy_denials: record.cost.policy_denials,
        record_json: serde_json::to_string(record).unwrap_or_default(),
    }
}

/// Texts a secret must not appear in: the observed outcome and record parts, and the audit.
fn observed_documents(runtime: &Runtime, observed: &Observed) -> Vec<(String, String)> {
    let outcome = json!({
        "status": observed.status, "last_node": observed.last_node, "reason": observed.reason,
        "final_value": observed.final_value,
    });
    let mut documents = vec![
        ("the outcome".to_string(), outcome.to_string()),
        ("the run record".to_string(), observed.record_json.clone()),
    ];
    let audit: Vec<Value> =
        runtime.audit.events().into_iter().map(|(_, event, fields)| json!([event, fields])).collect();
    documents.push(("the audit log".to_string(), Value::Array(audit).to_string()));
    documents
}

/// `secret `NAME` leaked into <where>` for every declared secret found in a document.
async fn secret_leaks(runtime: &Runtime, workflow: &Workflow, documents: &[(String, String)]) -> Vec<String> {
    let mut leaks = Vec::new();
    for secret in &workflow.environment.secrets {
        let Ok(value) = runtime.engine.secrets().resolve(&secret.name).await else { continue };
        if value.is_empty() {
            continue;
        }
        for (place, text) in documents {
            if text.contains(&value) {
                leaks.push(format!("secret `{}` leaked into {place}", secret.name));
            }
        }
    }
    leaks
}
