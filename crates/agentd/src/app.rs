//! Dispatch (01 §3): subcommands, flag parsing, loading and validating the workflow, and the
//! one-shot run with its outcome, record and exit code.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use agentd_engine::{Cancel, Engine, EngineOptions, Outcome, RunRequest, RunResult};
use agentd_workflow::{FileSource, LoadFailure, SourceFile, StartSource, ValidateOptions, Workflow};
use clap::error::{ContextKind, ContextValue, ErrorKind};
use serde_json::{Value, json};

use crate::flags::{self, Settings};
use crate::output::{self, note, usage};

const SUBCOMMANDS: [&str; 9] = ["inspect", "validate", "run", "serve", "runs", "approve", "reject", "store", "help"];

/// Exit codes (01 §11).
pub const EXIT_OK: i32 = 0;
/// Usage errors.
pub const EXIT_USAGE: i32 = 2;
/// Semantic errors, failed/timed-out/errored runs.
pub const EXIT_SEMANTIC: i32 = 5;

/// Entry point; returns the process exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    let first = args.first().and_then(|a| a.to_str()).map(str::to_string);
    let subcommand = first.as_deref().filter(|a| SUBCOMMANDS.contains(a));
    match subcommand {
        Some("inspect") => return crate::inspect::main(&args[1..]),
        Some("help") => {
            let topic = args
                .get(1)
                .and_then(|a| a.to_str())
                .filter(|a| SUBCOMMANDS.contains(a) && *a != "help" && *a != "inspect");
            return match flags::command(topic).try_get_matches_from(["--help"]) {
                Err(e) => clap_error(&e),
                Ok(_) => EXIT_OK,
            };
        }
        _ => {}
    }
    let rest = if subcommand.is_some() { args[1..].to_vec() } else { args };
    let matches = match flags::command(subcommand).try_get_matches_from(rest) {
        Ok(m) => m,
        Err(e) => return clap_error(&e),
    };
    let settings = Settings::new(matches);
    if settings.switch("version") && settings.given("version") {
        output::stdout(&format!("{}\n", env!("CARGO_PKG_VERSION")));
        return EXIT_OK;
    }
    match subcommand {
        Some("runs") => return crate::state::runs(&settings, &settings.strings("ACTION")),
        Some("reject") => {
            let id = settings.strings("RUN_ID").into_iter().next().unwrap_or_default();
            return crate::state::reject(&settings, &id);
        }
        Some("store") => return not_in_this_build("`agentd store migrate|status`", "the fleet store"),
        _ => {}
    }
    match run_command(subcommand, &settings) {
        Ok(code) => code,
        Err(code) => code,
    }
}

/// A feature that has not landed: a clear error, never a silent success.
fn not_in_this_build(what: &str, why: &str) -> i32 {
    note(format_args!("{what} is not available in this build yet ({why} has not landed)"));
    EXIT_USAGE
}

fn clap_error(error: &clap::Error) -> i32 {
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            output::stdout(&format!("{}\n", error.render().to_string().trim_end()));
            EXIT_OK
        }
        ErrorKind::UnknownArgument => {
            let arg = context(error, ContextKind::InvalidArg).unwrap_or_default();
            usage(format_args!("unknown argument `{arg}`"))
        }
        ErrorKind::InvalidValue | ErrorKind::NoEquals => {
            let arg = context(error, ContextKind::InvalidArg).unwrap_or_default();
            let value = context(error, ContextKind::InvalidValue).unwrap_or_default();
            if value.is_empty() {
                usage(format_args!("missing value for `{arg}`"))
            } else {
                usage(format_args!("invalid value `{value}` for `{arg}`"))
            }
        }
        ErrorKind::MissingRequiredArgument => {
            let arg = context(error, ContextKind::InvalidArg).unwrap_or_default();
            usage(format_args!("missing required argument {arg}"))
        }
        _ => {
            let rendered = error.render().to_string();
            let first =
                rendered.lines().next().unwrap_or("invalid arguments").trim_start_matches("error: ").to_string();
            usage(first)
        }
    }
}

fn context(error: &clap::Error, kind: ContextKind) -> Option<String> {
    match error.get(kind)? {
        ContextValue::String(s) => Some(s.split_whitespace().next().unwrap_or(s).to_string()),
        ContextValue::Strings(v) => Some(v.join(", ")),
        other => Some(other.to_string()),
    }
}

/// Reads files for the validator (schema files).
struct DiskFiles;

impl FileSource for DiskFiles {
    fn read_to_string(&self, path: &Path) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }
}

/// The workflow path from `FILE`, `--config` or `AGENTD_CONFIG`.
fn workflow_path(subcommand: Option<&str>, settings: &Settings) -> Result<Option<OsString>, i32> {
    let positional = match subcommand {
        Some("validate" | "run" | "serve") => settings.positional("FILE"),
        _ => None,
    };
    if positional.is_some() && settings.given("config") {
        return Err(usage("a workflow FILE and --config were both given; pass one of them"));
    }
    Ok(positional.or_else(|| settings.value("config")))
}

/// Reads, parses and validates a workflow file. Err = the exit code, after printing.
pub(crate) fn load_workflow(path: &Path, settings: &Settings, validate_only: bool) -> Result<Workflow, i32> {
    let bytes = std::fs::read(path).map_err(|e| {
        note(format_args!("failed to read {}: {e}", path.display()));
        EXIT_USAGE
    })?;
    let name = path.display().to_string();
    let text = String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let prefix = String::from_utf8_lossy(&e.as_bytes()[..offset]).into_owned();
        let line = prefix.matches('\n').count() + 1;
        let column = prefix.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        note(format_args!("error[toml_syntax]: {name}:{line}:{column}: the workflow file is not valid UTF-8"));
        EXIT_USAGE
    })?;
    let absolute = std::path::absolute(path).ok();
    let source = SourceFile::new(name, absolute, text);
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let options = ValidateOptions { mcp_stdio: settings.value("mcp-stdio").is_some(), cwd, files: &DiskFiles };
    match agentd_workflow::load(&source, &options) {
        Ok(workflow) => Ok(workflow),
        Err(LoadFailure::Load(diagnostics)) => {
            output::diagnostics(&source, &diagnostics);
            Err(EXIT_USAGE)
        }
        Err(LoadFailure::Invalid(rejected)) => {
            let issues: Vec<Value> =
                rejected.errors.iter().map(|d| json!({"code": d.code, "message": d.message})).collect();
            let mut report = json!({"workflow": rejected.workflow_name, "ok": false, "issues": issues});
            if !rejected.warnings.is_empty() {
                report["warnings"] =
                    rejected.warnings.iter().map(|d| json!({"code": d.code, "message": d.message})).collect();
            }
            output::json(&ordered_report(report));
            output::diagnostics(&source, &rejected.errors);
            if !validate_only && !settings.switch("quiet") {
                for warning in &rejected.warnings {
                    note(format_args!("warning: [{}] {}", warning.code, warning.message));
                }
            }
            Err(EXIT_SEMANTIC)
        }
    }
}

/// Validation report fields in the order of 02 §4 (serde_json maps would sort them).
fn ordered_report(report: Value) -> impl serde::Serialize {
    #[derive(serde::Serialize)]
    struct Report {
        workflow: Value,
        ok: Value,
        #[serde(skip_serializing_if = "Option::is_none")]
        issues: Option<Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        warnings: Option<Value>,
    }
    Report {
        workflow: report["workflow"].clone(),
        ok: report["ok"].clone(),
        issues: report.get("issues").cloned(),
        warnings: report.get("warnings").cloned(),
    }
}

fn run_command(subcommand: Option<&str>, settings: &Settings) -> Result<i32, i32> {
    // Validate flag values that are usage errors whatever the mode (01 §2).
    if let Some(format) = settings.text("log-format")
        && !matches!(format.as_str(), "text" | "pretty" | "json")
    {
        return Err(usage(format_args!("invalid value `{format}` for `--log-format`: expected text, pretty or json")));
    }
    if let Some(target) = settings.text("log-target")
        && !(target == "stderr" || target == "stdout" || target.strip_prefix("file:").is_some_and(|p| !p.is_empty()))
    {
        return Err(usage(format_args!(
            "invalid value `{target}` for `--log-target`: expected stderr, stdout or file:PATH"
        )));
    }
    if let Some(bind) = settings.text("bind")
        && bind.parse::<std::net::SocketAddr>().is_err()
    {
        return Err(usage(format_args!("invalid value `{bind}` for `--bind`: expected IPv4:port or [IPv6]:port")));
    }
    if settings.value("mcp-stdio").is_some_and(|v| v.to_string_lossy().trim().is_empty()) {
        return Err(usage("`--mcp-stdio` needs a command"));
    }
    let timeout_secs = settings.number("timeout-secs", 120).map_err(usage)?.max(1);
    settings.number("drain-timeout-secs", 30).map_err(usage)?;
    settings.number("history-max-runs", 1000).map_err(usage)?;
    settings.number("max-replans", 2).map_err(usage)?;

    // Steps 3–5: state-dir commands and instruction mode.
    if settings.switch("list-checkpoints") {
        return Ok(crate::state::list_checkpoints(settings));
    }
    crate::state::check_store_selection(settings)?;
    if ["instruction", "instruction-file", "goal"].iter().any(|f| settings.value(f).is_some()) {
        return Err(not_in_this_build("instruction mode", "the planner"));
    }

    // Step 6: load.
    let validate_only = subcommand == Some("validate") || settings.switch("validate-only");
    let approve_id =
        (subcommand == Some("approve")).then(|| settings.strings("RUN_ID").into_iter().next().unwrap_or_default());
    let mut path = workflow_path(subcommand, settings)?;
    if path.is_none()
        && let Some(id) = &approve_id
        && let Some(store) = crate::state::open_existing(settings)?
    {
        match store.checkpoint(id) {
            Ok(Some(checkpoint)) => path = checkpoint.workflow_path.map(OsString::from),
            Ok(None) => {}
            Err(e) => {
                note(e);
                return Err(EXIT_SEMANTIC);
            }
        }
    }
    if path.is_none()
        && let Some(id) = &approve_id
    {
        // Nothing names a workflow and no checkpoint points at one.
        let dir = crate::state::state_dir(settings);
        note(format_args!("no checkpoint for run {id} in {}", dir.display()));
        return Err(EXIT_USAGE);
    }
    let Some(path) = path else {
        note("no workflow configured. Pass --config FILE / AGENTD_CONFIG, or `agentd run FILE`");
        return Err(EXIT_USAGE);
    };
    let path = PathBuf::from(path);
    let workflow = load_workflow(&path, settings, validate_only)?;

    // Steps 8–9: warnings and --validate-only.
    if validate_only {
        let mut report = json!({"workflow": workflow.name, "ok": true});
        if !workflow.warnings.is_empty() {
            report["warnings"] =
                workflow.warnings.iter().map(|d| json!({"code": d.code, "message": d.message})).collect();
        }
        output::json(&ordered_report(report));
        return Ok(EXIT_OK);
    }
    let quiet = settings.switch("quiet");
    if !quiet {
        for warning in &workflow.warnings {
            note(format_args!("warning: [{}] {}", warning.code, warning.message));
        }
    }

    // Step 10: logging.
    let audit = crate::logging::install(settings, workflow.environment.logging.as_ref()).map_err(|e| {
        note(e);
        EXIT_SEMANTIC
    })?;

    // Step 11: signing.
    let signing_required = settings.switch("signing-required")
        || workflow.environment.signing.as_ref().and_then(|s| s.required).unwrap_or(false);
    if signing_required || settings.value("signing-key-file").is_some() {
        note("workflow signature verification failed: signature verification is not available in this build yet");
        return Err(EXIT_SEMANTIC);
    }

    // Step 12: process limits and --require-policy.
    if let Some(budget) = &workflow.environment.budget {
        for (kind, value) in [("max_memory_mb", budget.max_memory_mb), ("max_cpu_secs", budget.max_cpu_secs)] {
            if let Some(value) = value.filter(|v| *v > 0) {
                match apply_rlimit(kind, value) {
                    Ok(()) => audit.emit(
                        agentd_engine::audit::Level::Info,
                        "budget.applied",
                        json!({"workflow": workflow.name, "kind": kind, "value": value}),
                    ),
                    Err(reason) => {
                        audit.emit(
                            agentd_engine::audit::Level::Warn,
                            "budget.apply_failed",
                            json!({"workflow": workflow.name, "kind": kind, "value": value, "reason": reason}),
                        );
                        if !quiet {
                            note(format_args!("warning: [budget].{kind} = {value} is not enforced: {reason}"));
                        }
                    }
                }
            }
        }
    }
    if settings.switch("require-policy") && workflow.environment.policy.is_none() {
        note("workflow has no [policy] table and --require-policy is set");
        return Err(EXIT_SEMANTIC);
    }

    // Step 13: engine.
    let workflow = Arc::new(workflow);
    let resume_id = approve_id.clone().or_else(|| settings.text("resume"));
    let needs_hash = settings.switch("checkpoint-each-node")
        || resume_id.is_some()
        || settings.switch("resume-incomplete")
        || workflow.nodes.iter().any(|n| matches!(n.kind, agentd_workflow::NodeKind::PauseForApproval(_)));
    let engine = build_engine(workflow.clone(), &path, settings, audit.clone(), needs_hash)?;

    // Step 14: resume.
    let timeout = effective_timeout(&workflow, timeout_secs);
    if let Some(id) = resume_id {
        return Ok(resume(&engine, &workflow, settings, &id, approve_id.is_some(), timeout));
    }
    if settings.switch("resume-incomplete") {
        return Ok(resume_incomplete(&engine, &workflow, settings, timeout));
    }

    // Step 15: mode.
    let mode = match settings.text("mode") {
        Some(m) if m == "once" || m == "serve" => Some(m),
        Some(other) => {
            note(format_args!("warning: unknown --mode `{other}`; inferring the mode"));
            None
        }
        None => None,
    };
    let serve = match (subcommand, mode.as_deref()) {
        (Some("run"), _) | (_, Some("once")) => false,
        (Some("serve"), _) | (_, Some("serve")) => true,
        _ => {
            workflow.has_serve_work()
                || workflow.environment.control.as_ref().and_then(|c| c.enabled).unwrap_or(false)
                || settings.switch("control")
        }
    };
    if serve {
        return Ok(crate::wiring::serve(engine, &path, settings, timeout, audit));
    }
    Ok(one_shot(&engine, &workflow, settings, timeout))
}

/// 01 §3 step 13: the engine with its durable options, secrets checked, intelligence backends
/// and MCP servers started. Used at startup and by serve-mode reloads.
pub(crate) fn build_engine(
    workflow: Arc<Workflow>,
    path: &Path,
    settings: &Settings,
    audit: Arc<dyn agentd_engine::audit::AuditSink>,
    needs_hash: bool,
) -> Result<Engine, i32> {
    let quiet = settings.switch("quiet");
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let dir = crate::state::state_dir(settings);
    let durability = crate::state::durability(settings)?;
    let durable = agentd_engine::durable::DurableOptions {
        store: Some(Arc::new(agentd_engine::durable::StoreHandle::lazy(move || crate::state::open(&dir, durability)))),
        checkpoint_each_node: settings.switch("checkpoint-each-node"),
        history_max_runs: if settings.switch("no-history") {
            None
        } else {
            Some(settings.number("history-max-runs", 1000).map_err(usage)?)
        },
        workflow_path: std::path::absolute(path).ok(),
        workflow_sha256: needs_hash
            .then(|| std::fs::read(path).map(|b| agentd_workflow::sha256_hex(&b)).ok())
            .flatten(),
    };
    let engine = Engine::build(workflow, EngineOptions { cwd: cwd.clone(), audit, durable }).map_err(|e| {
        note(e);
        EXIT_SEMANTIC
    })?;
    check_secrets(&engine)?;
    let engine = crate::wiring::start_intel(engine, settings)?;
    crate::wiring::start_mcp(engine, settings, &cwd, quiet)
}

/// min(`--timeout-secs`, `[budget].max_run_time_secs` when > 0).
pub(crate) fn effective_timeout(workflow: &Workflow, timeout_secs: u64) -> Duration {
    let max_run = workflow.environment.budget.as_ref().and_then(|b| b.max_run_time_secs).filter(|s| *s > 0);
    Duration::from_secs(max_run.map_or(timeout_secs, |m| m.min(timeout_secs)))
}

/// `--resume RUN_ID` and `agentd approve RUN_ID` (01 §7.1, §9.4).
fn resume(
    engine: &Engine,
    workflow: &Workflow,
    settings: &Settings,
    run_id: &str,
    approve: bool,
    timeout: Duration,
) -> i32 {
    let dir = crate::state::state_dir(settings);
    let missing = || {
        note(format_args!("no checkpoint for run {run_id} in {}", dir.display()));
        EXIT_USAGE
    };
    let store = match crate::state::open_existing(settings) {
        Ok(Some(store)) => store,
        Ok(None) => return missing(),
        Err(code) => return code,
    };
    let checkpoint = match store.checkpoint(run_id) {
        Ok(Some(cp)) => cp,
        Ok(None) => return missing(),
        Err(e) => {
            note(e);
            return EXIT_SEMANTIC;
        }
    };
    if approve && !checkpoint.awaiting_approval {
        note(format_args!("run {run_id} is not awaiting approval"));
        return EXIT_USAGE;
    }
    if settings.value("input").is_some() {
        note("warning: --input is ignored when resuming a run");
    }
    let owner = agentd_store::process_owner();
    let stale_after = timeout * 2 + Duration::from_secs(60);
    match store.claim(run_id, &owner, stale_after) {
        Ok(agentd_store::Claim::Claimed) => {}
        Ok(agentd_store::Claim::AlreadyClaimed { .. }) => {
            note(format_args!("run {run_id} is already being resumed"));
            return EXIT_USAGE;
        }
        Ok(agentd_store::Claim::NotFound) => return missing(),
        Err(e) => {
            note(e);
            return EXIT_SEMANTIC;
        }
    }
    // A checkpoint of another workflow is refused by the engine (errored run, record written,
    // checkpoint kept); no approval is recorded for it.
    let code = {
        let note_text = if approve { settings.text("note") } else { None };
        if checkpoint.awaiting_approval && checkpoint.workflow == workflow.name {
            let decision = agentd_store::ApprovalDecision {
                decision: agentd_store::Verdict::Approved,
                via: if approve { agentd_store::DecisionVia::Approve } else { agentd_store::DecisionVia::Resume },
                note: note_text.clone(),
                actor: crate::state::actor(),
                decided_at: agentd_engine::timestamp(jiff::Timestamp::now()),
            };
            if let Err(e) = store.decide_approval(run_id, &decision) {
                note(e);
                let _ = store.release(run_id, &owner);
                return EXIT_SEMANTIC;
            }
            engine.audit().emit(
                agentd_engine::audit::Level::Info,
                "approval.approved",
                json!({"workflow": workflow.name, "run_id": run_id, "note": note_text}),
            );
        }
        let resume = agentd_engine::durable::Resume { checkpoint, note: note_text };
        let request = RunRequest {
            start: String::new(),
            input: Value::Null,
            trigger_kind: "manual".to_string(),
            timeout,
            dry_run: settings.switch("dry-run"),
            cancel: Cancel::default(),
            resume: Some(resume),
        };
        let (result, signal) = execute(engine, request);
        finish(result, settings, signal.as_deref())
    };
    let _ = store.release(run_id, &owner);
    code
}

/// `--resume-incomplete` (01 §7.2).
fn resume_incomplete(engine: &Engine, workflow: &Workflow, settings: &Settings, timeout: Duration) -> i32 {
    let dir = crate::state::state_dir(settings);
    let store = match crate::state::open_existing(settings) {
        Ok(store) => store,
        Err(code) => return code,
    };
    let mut ids: Vec<String> = match store.as_ref().map(|s| s.checkpoint_summaries()).transpose() {
        Ok(list) => list
            .unwrap_or_default()
            .into_iter()
            .filter(|c| !c.awaiting_approval && c.workflow == workflow.name)
            .map(|c| c.run_id)
            .collect(),
        Err(e) => {
            note(e);
            return EXIT_SEMANTIC;
        }
    };
    ids.sort();
    let Some(store) = store.filter(|_| !ids.is_empty()) else {
        note(format_args!("no recoverable runs for workflow `{}` in {}", workflow.name, dir.display()));
        return EXIT_OK;
    };
    let owner = agentd_store::process_owner();
    let (mut any_bad, mut any_paused) = (false, false);
    for id in ids {
        note(format_args!("resuming {id} …"));
        match store.claim(&id, &owner, timeout * 2 + Duration::from_secs(60)) {
            Ok(agentd_store::Claim::Claimed) => {}
            Ok(_) => {
                note(format_args!("resume {id}: run is already being resumed"));
                any_bad = true;
                continue;
            }
            Err(e) => {
                note(format_args!("resume {id}: {e}"));
                any_bad = true;
                continue;
            }
        }
        let checkpoint = match store.checkpoint(&id) {
            Ok(Some(cp)) => cp,
            _ => {
                let _ = store.release(&id, &owner);
                continue;
            }
        };
        let request = RunRequest {
            start: String::new(),
            input: Value::Null,
            trigger_kind: "manual".to_string(),
            timeout,
            dry_run: settings.switch("dry-run"),
            cancel: Cancel::default(),
            resume: Some(agentd_engine::durable::Resume { checkpoint, note: None }),
        };
        let (result, _) = execute(engine, request);
        let _ = store.release(&id, &owner);
        output::json(&result.outcome);
        match &result.outcome {
            Outcome::Errored { reason, .. } => {
                note(format_args!("resume {id}: {reason}"));
                any_bad = true;
            }
            Outcome::Failed { .. } | Outcome::TimedOut { .. } => any_bad = true,
            Outcome::Paused { .. } => any_paused = true,
            Outcome::Completed { .. } => {}
        }
    }
    if any_bad {
        EXIT_SEMANTIC
    } else if any_paused {
        7
    } else {
        EXIT_OK
    }
}

/// The start node for a one-shot run (01 §5.1).
fn pick_start(workflow: &Workflow, settings: &Settings) -> Result<String, i32> {
    if let Some(start) = settings.text("start") {
        return Ok(start);
    }
    let manual: Vec<_> = workflow.start_nodes.iter().filter(|s| s.source == StartSource::Manual).collect();
    if manual.len() == 1 {
        return Ok(manual[0].name.clone());
    }
    if workflow.start_nodes.len() == 1 {
        return Ok(workflow.start_nodes[0].name.clone());
    }
    note(format_args!(
        "cannot pick a start node automatically ({} manual / {} total); pass --start NAME",
        manual.len(),
        workflow.start_nodes.len()
    ));
    Err(EXIT_USAGE)
}

/// The trigger input (01 §5.2).
fn read_input(settings: &Settings) -> Result<Value, i32> {
    let Some(raw) = settings.value("input") else {
        return Ok(Value::Null);
    };
    let text_form = raw.to_str().map(str::to_string);
    if text_form.as_deref() == Some("-") {
        let mut bytes = Vec::new();
        std::io::stdin().read_to_end(&mut bytes).map_err(|e| {
            note(format_args!("failed to read stdin: {e}"));
            EXIT_USAGE
        })?;
        let text = String::from_utf8(bytes).map_err(|_| {
            note("failed to read stdin: input is not valid UTF-8");
            EXIT_USAGE
        })?;
        return Ok(file_payload(text));
    }
    if let Some(text) = &text_form
        && matches!(text.trim_start().chars().next(), Some('{' | '['))
    {
        return serde_json::from_str(text).map_err(|e| {
            note(format_args!("--input: invalid inline JSON: {e}"));
            EXIT_USAGE
        });
    }
    let path = PathBuf::from(&raw);
    let bytes = std::fs::read(&path).map_err(|e| {
        note(format_args!("failed to read {}: {e}", path.display()));
        EXIT_USAGE
    })?;
    let text = String::from_utf8(bytes).map_err(|_| {
        note(format_args!("failed to read {}: file is not valid UTF-8", path.display()));
        EXIT_USAGE
    })?;
    Ok(file_payload(text))
}

fn file_payload(text: String) -> Value {
    serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text }))
}

fn one_shot(engine: &Engine, workflow: &Workflow, settings: &Settings, timeout: Duration) -> i32 {
    let start = match pick_start(workflow, settings) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let input = match read_input(settings) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let request = RunRequest {
        start,
        input,
        trigger_kind: "manual".to_string(),
        timeout,
        dry_run: settings.switch("dry-run"),
        cancel: Cancel::default(),
        resume: None,
    };
    let (result, signal) = execute(engine, request);
    finish(result, settings, signal.as_deref())
}

/// Runs one request on a fresh runtime, with signal handling; returns the result and the
/// signal that interrupted it, if any.
fn execute(engine: &Engine, request: RunRequest) -> (RunResult, Option<String>) {
    let runtime = match crate::rt::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            let reason = format!("io error: cannot start the runtime: {e}");
            let outcome = Outcome::Errored { reason: reason.clone(), last_node: None };
            note(&reason);
            output::json(&outcome);
            std::process::exit(EXIT_SEMANTIC);
        }
    };
    let cancel = request.cancel.clone();
    let result = runtime.block_on(async {
        let signals = watch_signals(cancel.clone());
        let result = engine.run(request).await;
        signals.abort();
        result
    });
    (result, cancel.reason().map(str::to_string))
}

/// Cancels the run on SIGINT/SIGTERM; a second signal exits at once (01 §5.4). The signal
/// streams are registered before this returns, so a signal that arrives as the run starts is
/// never lost to the default handler.
fn watch_signals(cancel: Cancel) -> tokio::task::JoinHandle<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let streams = (signal(SignalKind::interrupt()), signal(SignalKind::terminate()));
        tokio::spawn(async move {
            let (Ok(mut int), Ok(mut term)) = streams else { return };
            let code = tokio::select! {
                _ = int.recv() => { cancel.cancel("interrupted by signal SIGINT"); 130 }
                _ = term.recv() => { cancel.cancel("interrupted by signal SIGTERM"); 143 }
            };
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            output::flush();
            std::process::exit(code);
        })
    }
    #[cfg(not(unix))]
    {
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel("interrupted by signal SIGINT");
            }
        })
    }
}

/// Record, outcome and exit code (01 §5.3).
fn finish(result: RunResult, settings: &Settings, signal: Option<&str>) -> i32 {
    if let Some(path) = settings.value("record") {
        let path = PathBuf::from(path);
        match write_atomically(&path, &result.record) {
            Ok(()) => note(format_args!("run record written to {}", path.display())),
            Err(e) => note(format_args!("failed to write run record to {}: {e}", path.display())),
        }
    }
    output::json(&result.outcome);
    if let Outcome::Errored { reason, .. } = &result.outcome {
        note(reason);
    }
    match signal {
        Some(s) if s.ends_with("SIGINT") => 130,
        Some(s) if s.ends_with("SIGTERM") => 143,
        _ => result.outcome.exit_code(),
    }
}

/// Writes JSON to a sibling temp file, then renames it over `path`: never a partial record.
fn write_atomically(path: &Path, value: &impl serde::Serialize) -> std::io::Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let file_name = path.file_name().ok_or_else(|| std::io::Error::other("the path names no file"))?;
    let mut tmp_name = OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        use std::io::Write;
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Applies `max_memory_mb` (RLIMIT_AS) or `max_cpu_secs` (RLIMIT_CPU) to this process (05 §7).
/// Only the soft limit is lowered, never raised above the current hard limit.
fn apply_rlimit(kind: &str, value: u64) -> Result<(), String> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (resource, limit) = match kind {
        "max_memory_mb" => (Resource::RLIMIT_AS, value.saturating_mul(1_048_576)),
        _ => (Resource::RLIMIT_CPU, value),
    };
    let (_, hard) = getrlimit(resource).map_err(|e| e.to_string())?;
    let limit = limit.min(hard);
    setrlimit(resource, limit, hard).map_err(|e| e.to_string())
}

/// Resolves every declared secret once at startup (08 §3.3); a failure stops before any run.
/// Values too short to scrub reliably get a warning and `secrets.short_value` (08 §6).
fn check_secrets(engine: &Engine) -> Result<(), i32> {
    if engine.workflow().environment.secrets.is_empty() {
        return Ok(());
    }
    let runtime = crate::rt::runtime().map_err(|e| {
        note(format_args!("cannot start the async runtime: {e}"));
        EXIT_SEMANTIC
    })?;
    let registry = engine.secrets().clone();
    let short = runtime.block_on(async move {
        registry.check_all().await?;
        Ok::<_, agentd_engine::secrets::SecretError>(registry.short_values().await)
    });
    match short {
        Err(e) => {
            note(format_args!("[[secrets]]: {e}"));
            Err(EXIT_SEMANTIC)
        }
        Ok(short) => {
            for name in short {
                note(format_args!(
                    "warning: [[secrets]]: secret `{name}` is shorter than 4 bytes and cannot be scrubbed reliably"
                ));
                engine.audit().emit(
                    agentd_engine::audit::Level::Warn,
                    "secrets.short_value",
                    serde_json::json!({"secret_name": name}),
                );
            }
            Ok(())
        }
    }
}
