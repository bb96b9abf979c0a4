//! Discovery (10 §2), loading with every load-time check (§3.5), and running the selected
//! scenarios: scenarios in parallel (`--jobs`), the trials of one scenario one after the other,
//! report order = discovery order.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use agentd_intel::scripted::trial_seed;

use crate::prepare::{self, Placeholders};
use crate::report::ScenarioOutcome;
use crate::scenario::{self, Scenario, TriggerKind};
use crate::trial::{self, TrialOptions};

/// What to run.
#[derive(Debug, Clone)]
pub struct SuiteOptions {
    /// Suite seed.
    pub seed: u64,
    /// `--filter` texts (any matches).
    pub filters: Vec<String>,
    /// `--trial I`.
    pub only_trial: Option<u32>,
    /// `--trials N`.
    pub trials: Option<u32>,
    /// `--jobs N`.
    pub jobs: usize,
    /// Per-trial settings.
    pub trial: TrialOptions,
}

/// Why discovery found nothing to run.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// PATH missing, or nothing left after `--filter`.
    #[error("no scenarios under {0}")]
    Empty(String),
    /// PATH could not be read.
    #[error("read {path}: {source}")]
    Read {
        /// The directory.
        path: String,
        /// The IO error.
        source: std::io::Error,
    },
}

/// Every `*.toml` regular file under `root` (symlinked directories not followed), sorted by
/// full path in byte order; a file `root` is the only scenario.
pub fn discover(root: &Path) -> Result<Vec<PathBuf>, DiscoveryError> {
    let shown = root.display().to_string();
    let metadata = std::fs::metadata(root).map_err(|_| DiscoveryError::Empty(shown.clone()))?;
    if metadata.is_file() {
        return Ok(vec![root.to_path_buf()]);
    }
    let mut found = Vec::new();
    walk(root, &mut found).map_err(|source| DiscoveryError::Read { path: shown.clone(), source })?;
    found.sort_by(|a, b| a.as_os_str().as_encoded_bytes().cmp(b.as_os_str().as_encoded_bytes()));
    if found.is_empty() {
        return Err(DiscoveryError::Empty(shown));
    }
    Ok(found)
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let link = std::fs::symlink_metadata(&path)?;
        if link.is_dir() {
            walk(&path, found)?;
        } else if path.extension().is_some_and(|e| e == "toml") && std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            found.push(path);
        }
    }
    Ok(())
}

/// A scenario ready to run, or the outcome it already has (load error, skip).
pub enum Prepared {
    /// Runs its trials.
    Ready(Box<Scenario>, ScenarioOutcome),
    /// Nothing to run.
    Done(ScenarioOutcome),
}

impl Prepared {
    /// The scenario name used by `--filter`.
    pub fn name(&self) -> &str {
        match self {
            Prepared::Ready(_, outcome) | Prepared::Done(outcome) => &outcome.name,
        }
    }
}

/// Loads one file with every load-time check.
pub fn prepare(path: &Path, root: &Path) -> Prepared {
    let relative = path.strip_prefix(root).unwrap_or(path);
    let file_label = if relative.as_os_str().is_empty() {
        path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
    } else {
        relative.display().to_string().replace('\\', "/")
    };
    let mut outcome =
        ScenarioOutcome { name: path.display().to_string(), file: file_label, ..ScenarioOutcome::default() };
    let scenario = match scenario::load(path) {
        Ok(s) => s,
        Err(error) => {
            if let Some(file) = &error.parsed {
                describe(&mut outcome, file);
            }
            outcome.load_error = Some(error.message);
            return Prepared::Done(outcome);
        }
    };
    describe(&mut outcome, &scenario.file);
    for warning in &scenario.warnings {
        eprintln!("agentd-conformance: warning: {}: {warning}", outcome.file);
    }
    if let Some(platforms) = &scenario.file.platforms
        && !platforms.iter().any(|p| p.is_current())
    {
        outcome.skipped = Some(format!("platforms: not for {}", std::env::consts::OS));
        return Prepared::Done(outcome);
    }
    if let Err(text) = check_loadable(&scenario) {
        outcome.load_error = Some(text);
        return Prepared::Done(outcome);
    }
    Prepared::Ready(Box::new(scenario), outcome)
}

fn describe(outcome: &mut ScenarioOutcome, file: &scenario::ScenarioFile) {
    outcome.name = file.name.clone();
    outcome.capabilities = file.capabilities.clone();
    outcome.declared_trials = file.trials.max(1);
    outcome.min_pass_rate = file.min_pass_rate;
}

/// The load-time checks that need the workflow (§3.5).
fn check_loadable(scenario: &Scenario) -> Result<(), String> {
    let file = &scenario.file;
    if !file.env.is_empty() {
        return Err("`env` overlays are not available in this build: the engine reads the process environment \
                    directly and trials must not mutate it"
            .into());
    }
    let workflow = prepare::load_workflow(scenario, &Placeholders::for_validation(&scenario.dir))?;
    let start = match &file.trigger.start {
        Some(start) => start.clone(),
        None => workflow.start_nodes.first().map(|s| s.name.clone()).ok_or("the workflow has no start node")?,
    };
    if matches!(file.trigger.kind, TriggerKind::Cron | TriggerKind::Interval | TriggerKind::FsWatch) {
        let placeholders = Placeholders::for_validation(&scenario.dir);
        trial::trigger_input(&workflow, file.trigger.kind, &start, None, &placeholders)?;
    }
    for (name, server) in &file.mcp.servers {
        let declared = workflow.environment.mcp_servers.iter().any(|c| c.name.get_ref() == name);
        if !declared && name != agentd_mcp::LEGACY_SERVER_NAME {
            return Err(format!(
                "[mcp.servers.{name}] matches no [[mcp_servers]] entry of the workflow (and is not `default`)"
            ));
        }
        crate::mcp::check_script(name, server, &file.faults)?;
    }
    if let Some(node) = &file.faults.crash_after_node
        && workflow.index_of(node).is_none()
    {
        return Err(format!("[faults].crash_after_node: the workflow has no node `{node}`"));
    }
    if file.trigger.request.is_some() && workflow.environment.http_routes.is_empty() {
        return Err("[trigger.request] needs [[http_routes]] in the workflow".into());
    }
    Ok(())
}

/// Runs every prepared scenario; outcomes in input order.
pub async fn run(prepared: Vec<Prepared>, options: &SuiteOptions) -> Vec<ScenarioOutcome> {
    let semaphore = Arc::new(tokio::sync::Semaphore::new(options.jobs.max(1)));
    let mut tasks = Vec::with_capacity(prepared.len());
    for item in prepared {
        let semaphore = semaphore.clone();
        let options = options.clone();
        tasks.push(tokio::spawn(async move {
            match item {
                Prepared::Done(outcome) => outcome,
                Prepared::Ready(scenario, outcome) => {
                    let _permit = semaphore.acquire_owned().await;
                    run_scenario(&scenario, outcome, &options).await
                }
            }
        }));
    }
    let mut outcomes = Vec::with_capacity(tasks.len());
    for task in tasks {
        match task.await {
            Ok(outcome) => outcomes.push(outcome),
            Err(e) => outcomes.push(ScenarioOutcome {
                name: "<harness>".into(),
                load_error: Some(format!("the scenario task failed: {e}")),
                ..ScenarioOutcome::default()
            }),
        }
    }
    outcomes
}

async fn run_scenario(scenario: &Scenario, mut outcome: ScenarioOutcome, options: &SuiteOptions) -> ScenarioOutcome {
    let count = options.trials.unwrap_or(scenario.file.trials).max(1);
    let indices: Vec<u32> = match options.only_trial {
        Some(index) => vec![index],
        None => (0..count).collect(),
    };
    for index in indices {
        let seed = trial_seed(options.seed, &scenario.file.name, u64::from(index));
        let result = trial::run(scenario, index, seed, &options.trial).await;
        if let Some(dir) = &result.kept_dir {
            eprintln!("agentd-conformance: kept trial dir {} ({} trial {index})", dir.display(), scenario.file.name);
        }
        outcome.trials.push(result);
    }
    if options.trials.is_some() {
        outcome.declared_trials = count;
    }
    outcome
}
