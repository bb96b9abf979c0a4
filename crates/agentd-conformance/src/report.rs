//! Metrics (10 §6), gates and drift (§7) and the suite JSON document (§8.2). The JSON types
//! read baselines too: every field has a default and unknown keys are ignored, so agentd 1.3
//! baselines load.

use serde::{Deserialize, Serialize};

use crate::capabilities::{self, Coverage};
use crate::trial::{TrialCost, TrialResult};

/// Tolerance of every rate comparison.
const EPSILON: f64 = 1e-9;

/// One scenario after its trials (or its load error, or its skip).
#[derive(Debug, Clone, Default)]
pub struct ScenarioOutcome {
    /// `name` (the file path when the file did not parse).
    pub name: String,
    /// Path relative to the corpus root, forward slashes.
    pub file: String,
    /// Capability tags.
    pub capabilities: Vec<String>,
    /// Trials as declared (0 when the file did not parse).
    pub declared_trials: u32,
    /// `min_pass_rate`.
    pub min_pass_rate: Option<f64>,
    /// Load error text.
    pub load_error: Option<String>,
    /// Skip reason (platform).
    pub skipped: Option<String>,
    /// Trials that ran, in index order.
    pub trials: Vec<TrialResult>,
}

/// The suite JSON (§8.2).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SuiteReport {
    /// Suite metrics.
    pub summary: Summary,
    /// Per scenario, in discovery order.
    pub scenarios: Vec<ScenarioReport>,
}

/// `summary`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Summary {
    /// Scenarios not skipped.
    pub scenarios: u64,
    /// Passed scenarios.
    pub passed: u64,
    /// Failed scenarios.
    pub failed: u64,
    /// Mean of per-scenario pass_k.
    pub mean_pass_k: f64,
    /// Sum of each scenario's trial-0 llm_calls.
    pub total_llm_calls: u64,
    /// Sum of each scenario's trial-0 llm_tokens.
    pub total_llm_tokens: u64,
    /// total_trial_tokens / total_passed_trials.
    pub cost_per_success_tokens: Option<f64>,
    /// Tokens over all trials.
    pub total_trial_tokens: u64,
    /// Passed trials over all scenarios.
    pub total_passed_trials: u64,
    /// Capability coverage.
    pub coverage: CoverageReport,
    /// Skipped scenarios (extension).
    pub skipped: u64,
    /// Suite seed, decimal (extension).
    pub seed: String,
    /// Live-model mode (extension).
    pub live: bool,
    /// Spend forecast (extension).
    pub forecast: Option<Forecast>,
    /// Drift against a baseline (extension).
    pub drift: Option<Drift>,
}

/// `summary.coverage`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CoverageReport {
    /// Covered matrix ids.
    pub covered: u64,
    /// Matrix size.
    pub total: u64,
    /// covered / total.
    pub fraction: f64,
    /// Uncovered ids in matrix order.
    pub uncovered: Vec<String>,
    /// Tags not in the matrix.
    pub unknown_tags: Vec<String>,
}

/// `summary.forecast`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Forecast {
    /// `--forecast-runs-per-day`.
    pub runs_per_day: f64,
    /// Suite cost per success.
    pub cost_per_success_tokens: f64,
    /// cps × runs/day.
    pub tokens_per_day: f64,
    /// tokens/day × 30.
    pub tokens_per_month: f64,
    /// With `--price-per-mtok`.
    pub usd_per_month: Option<f64>,
}

/// `summary.drift`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Drift {
    /// The baseline path.
    pub baseline: String,
    /// Per scenario.
    pub scenarios: Vec<DriftEntry>,
}

/// One scenario of the drift comparison.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct DriftEntry {
    /// Scenario name.
    pub name: String,
    /// Baseline pass_rate (null when added).
    pub old_pass_rate: Option<f64>,
    /// This run's pass_rate (null when removed).
    pub new_pass_rate: Option<f64>,
    /// Baseline trial-0 tokens.
    pub old_tokens: Option<u64>,
    /// This run's trial-0 tokens.
    pub new_tokens: Option<u64>,
    /// Whether this is a regression.
    pub regressed: bool,
    /// `regressed` | `improved` | `same` | `added` | `removed`.
    pub change: String,
}

/// One scenario in the suite JSON.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ScenarioReport {
    /// Name.
    pub name: String,
    /// Tags.
    pub capabilities: Vec<String>,
    /// Trials (as declared on a load error).
    pub trials: u32,
    /// Passed trials.
    pub passed_trials: u32,
    /// All-or-nothing pass^k.
    pub pass_k: f64,
    /// passed_trials / trials.
    pub pass_rate: f64,
    /// Tolerated bar.
    pub min_pass_rate: Option<f64>,
    /// Passed (own bar).
    pub passed: bool,
    /// Trial 0's cost.
    pub cost: TrialCost,
    /// Total tokens / passed trials.
    pub cost_per_success_tokens: Option<f64>,
    /// Sum of trial wall times.
    pub total_latency_ms: u64,
    /// Load error.
    pub load_error: Option<String>,
    /// Every failure line.
    pub failures: Vec<String>,
    /// `passed` | `failed` | `skipped` (extension).
    pub status: String,
    /// Path relative to PATH (extension).
    pub file: String,
    /// Per trial (extension).
    pub trial_results: Vec<TrialReport>,
    /// Why the scenario was skipped (extension; only for skipped scenarios).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
}

/// One trial in the suite JSON.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TrialReport {
    /// Index.
    pub trial: u32,
    /// Seed, `0x` + 16 hex.
    pub seed: String,
    /// Passed.
    pub passed: bool,
    /// Status word.
    pub status: String,
    /// Wall time.
    pub latency_ms: u64,
    /// Failure texts.
    pub failures: Vec<String>,
    /// This trial's cost (extension).
    pub cost: TrialCost,
}

/// `0x` + 16 lower-case hex digits.
pub fn hex_seed(seed: u64) -> String {
    format!("0x{seed:016x}")
}

fn ratio(numerator: u64, denominator: u64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

/// Per-scenario metrics (§6).
pub fn scenario_report(outcome: &ScenarioOutcome) -> ScenarioReport {
    let ran = u32::try_from(outcome.trials.len()).unwrap_or(u32::MAX);
    let passed_trials = u32::try_from(outcome.trials.iter().filter(|t| t.passed).count()).unwrap_or(u32::MAX);
    let trials = if outcome.load_error.is_some() || outcome.skipped.is_some() { outcome.declared_trials } else { ran };
    let loaded = outcome.load_error.is_none() && outcome.skipped.is_none() && ran > 0;
    let pass_rate = if loaded { f64::from(passed_trials) / f64::from(ran) } else { 0.0 };
    let all_passed = loaded && passed_trials == ran;
    let passed = loaded
        && match outcome.min_pass_rate {
            Some(bar) => pass_rate + EPSILON >= bar,
            None => all_passed,
        };
    let total_tokens: u64 = outcome.trials.iter().map(|t| t.cost.llm_tokens).sum();
    let mut failures: Vec<String> = outcome.load_error.iter().map(|e| format!("load error: {e}")).collect();
    for trial in &outcome.trials {
        failures.extend(trial.failures.iter().map(|f| format!("trial {}: {f}", trial.index)));
    }
    let status = if outcome.skipped.is_some() {
        "skipped"
    } else if passed {
        "passed"
    } else {
        "failed"
    };
    ScenarioReport {
        name: outcome.name.clone(),
        capabilities: outcome.capabilities.clone(),
        trials,
        passed_trials,
        pass_k: if all_passed { 1.0 } else { 0.0 },
        pass_rate,
        min_pass_rate: outcome.min_pass_rate,
        passed,
        cost: outcome.trials.first().map(|t| t.cost).unwrap_or_default(),
        cost_per_success_tokens: ratio(total_tokens, u64::from(passed_trials)),
        total_latency_ms: outcome.trials.iter().map(|t| t.latency_ms).sum(),
        load_error: outcome.load_error.clone(),
        failures,
        status: status.to_string(),
        file: outcome.file.clone(),
        trial_results: outcome
            .trials
            .iter()
            .map(|t| TrialReport {
                trial: t.index,
                seed: hex_seed(t.seed),
                passed: t.passed,
                status: t.status.clone(),
                latency_ms: t.latency_ms,
                failures: t.failures.clone(),
                cost: t.cost,
            })
            .collect(),
        skip_reason: outcome.skipped.clone(),
    }
}

/// The whole suite JSON (without forecast and drift, which the caller adds).
pub fn suite_report(outcomes: &[ScenarioOutcome], seed: u64) -> SuiteReport {
    let scenarios: Vec<ScenarioReport> = outcomes.iter().map(scenario_report).collect();
    let counted: Vec<&ScenarioReport> = scenarios.iter().filter(|s| s.status != "skipped").collect();
    let total_trial_tokens: u64 =
        outcomes.iter().filter(|o| o.skipped.is_none()).flat_map(|o| o.trials.iter()).map(|t| t.cost.llm_tokens).sum();
    let total_passed_trials: u64 = counted.iter().map(|s| u64::from(s.passed_trials)).sum();
    let coverage = capabilities::coverage(scenarios.iter().map(|s| (s.capabilities.as_slice(), s.passed)));
    let count = counted.len() as u64;
    let passed = counted.iter().filter(|s| s.passed).count() as u64;
    let summary = Summary {
        scenarios: count,
        passed,
        failed: count - passed,
        mean_pass_k: if counted.is_empty() {
            0.0
        } else {
            counted.iter().map(|s| s.pass_k).sum::<f64>() / count as f64
        },
        total_llm_calls: counted.iter().map(|s| s.cost.llm_calls).sum(),
        total_llm_tokens: counted.iter().map(|s| s.cost.llm_tokens).sum(),
        cost_per_success_tokens: ratio(total_trial_tokens, total_passed_trials),
        total_trial_tokens,
        total_passed_trials,
        coverage: coverage_report(&coverage),
        skipped: (scenarios.len() - counted.len()) as u64,
        seed: seed.to_string(),
        live: false,
        forecast: None,
        drift: None,
    };
    SuiteReport { summary, scenarios }
}

fn coverage_report(coverage: &Coverage) -> CoverageReport {
    CoverageReport {
        covered: coverage.covered as u64,
        total: coverage.total as u64,
        fraction: (coverage.fraction() * 10_000.0).round() / 10_000.0,
        uncovered: coverage.uncovered.clone(),
        unknown_tags: coverage.unknown_tags.clone(),
    }
}

/// A reliability-gate violation (§7.1).
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// Scenario name.
    pub name: String,
    /// Its pass rate.
    pub pass_rate: f64,
    /// The bar it missed.
    pub required: f64,
}

/// Scenarios whose pass rate is under max(`--min-pass-rate`, `min_pass_rate`).
pub fn gate(report: &SuiteReport, suite_floor: Option<f64>) -> Vec<Violation> {
    report
        .scenarios
        .iter()
        .filter(|s| s.status != "skipped")
        .filter_map(|s| {
            let required = match (suite_floor, s.min_pass_rate) {
                (Some(a), Some(b)) => a.max(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => return None,
            };
            (s.pass_rate + EPSILON < required).then(|| Violation {
                name: s.name.clone(),
                pass_rate: s.pass_rate,
                required,
            })
        })
        .collect()
}

/// The spend forecast (§6); `None` when no trial passed.
pub fn forecast(report: &SuiteReport, runs_per_day: f64, price_per_mtok: Option<f64>) -> Option<Forecast> {
    let cps = report.summary.cost_per_success_tokens?;
    let tokens_per_day = cps * runs_per_day;
    let tokens_per_month = tokens_per_day * 30.0;
    Some(Forecast {
        runs_per_day,
        cost_per_success_tokens: cps,
        tokens_per_day,
        tokens_per_month,
        usd_per_month: price_per_mtok.map(|p| tokens_per_month * p / 1_000_000.0),
    })
}

/// Compares with a baseline (§7.2); `max_token_drift` is the extension gate in percent.
pub fn drift(current: &SuiteReport, baseline: &SuiteReport, path: &str, max_token_drift: Option<f64>) -> Drift {
    let mut entries = Vec::new();
    let live = |s: &&ScenarioReport| s.status != "skipped";
    for new in current.scenarios.iter().filter(live) {
        match baseline.scenarios.iter().find(|old| old.name == new.name) {
            Some(old) => {
                let rate_regressed = new.pass_rate + EPSILON < old.pass_rate;
                let token_regressed = max_token_drift
                    .is_some_and(|pct| new.cost.llm_tokens as f64 > old.cost.llm_tokens as f64 * (1.0 + pct / 100.0));
                let regressed = rate_regressed || token_regressed;
                let change = if regressed {
                    "regressed"
                } else if new.pass_rate > old.pass_rate + EPSILON {
                    "improved"
                } else {
                    "same"
                };
                entries.push(DriftEntry {
                    name: new.name.clone(),
                    old_pass_rate: Some(old.pass_rate),
                    new_pass_rate: Some(new.pass_rate),
                    old_tokens: Some(old.cost.llm_tokens),
                    new_tokens: Some(new.cost.llm_tokens),
                    regressed,
                    change: change.into(),
                });
            }
            None => entries.push(DriftEntry {
                name: new.name.clone(),
                new_pass_rate: Some(new.pass_rate),
                new_tokens: Some(new.cost.llm_tokens),
                change: "added".into(),
                ..DriftEntry::default()
            }),
        }
    }
    for old in &baseline.scenarios {
        if !current.scenarios.iter().filter(live).any(|s| s.name == old.name) {
            entries.push(DriftEntry {
                name: old.name.clone(),
                old_pass_rate: Some(old.pass_rate),
                old_tokens: Some(old.cost.llm_tokens),
                change: "removed".into(),
                ..DriftEntry::default()
            });
        }
    }
    Drift { baseline: path.to_string(), scenarios: entries }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial(index: u32, passed: bool, tokens: u64) -> TrialResult {
        TrialResult {
            index,
            seed: 1,
            passed,
            status: "completed".into(),
            latency_ms: 2,
            failures: if passed { vec![] } else { vec!["boom".into()] },
            cost: TrialCost { llm_calls: 1, llm_tokens: tokens, ..TrialCost::default() },
            kept_dir: None,
        }
    }

    #[test]
    fn pass_k_rate_and_tolerated_bar() {
        let outcome = ScenarioOutcome {
            name: "s".into(),
            declared_trials: 4,
            min_pass_rate: Some(0.75),
            trials: vec![trial(0, true, 10), trial(1, false, 10), trial(2, true, 10), trial(3, true, 10)],
            ..ScenarioOutcome::default()
        };
        let r = scenario_report(&outcome);
        assert_eq!((r.pass_k, r.pass_rate, r.passed), (0.0, 0.75, true));
        assert_eq!(r.cost_per_success_tokens, Some(40.0 / 3.0));
        assert_eq!(r.failures, vec!["trial 1: boom".to_string()]);
        let suite = suite_report(&[outcome], 7);
        assert_eq!(gate(&suite, Some(0.8)).len(), 1);
        assert!(gate(&suite, Some(0.7)).is_empty());
    }

    #[test]
    fn drift_flags_rate_regressions_and_lists_added_and_removed() {
        let make = |name: &str, rate: f64, tokens: u64| ScenarioReport {
            name: name.into(),
            pass_rate: rate,
            status: "passed".into(),
            cost: TrialCost { llm_tokens: tokens, ..TrialCost::default() },
            ..ScenarioReport::default()
        };
        let old = SuiteReport { scenarios: vec![make("a", 1.0, 10), make("gone", 1.0, 1)], ..SuiteReport::default() };
        let new = SuiteReport { scenarios: vec![make("a", 0.5, 30), make("new", 1.0, 1)], ..SuiteReport::default() };
        let d = drift(&new, &old, "b.json", None);
        let changes: Vec<&str> = d.scenarios.iter().map(|e| e.change.as_str()).collect();
        assert_eq!(changes, ["regressed", "added", "removed"]);
        let tokens_only = SuiteReport { scenarios: vec![make("a", 1.0, 30)], ..SuiteReport::default() };
        assert!(!drift(&tokens_only, &old, "b", None).scenarios[0].regressed);
        assert!(drift(&tokens_only, &old, "b", Some(50.0)).scenarios[0].regressed);
    }

    #[test]
    fn baselines_of_1_3_load_with_missing_and_unknown_keys() {
        let text = r#"{"summary": {"scenarios": 1, "whatever": 3}, "scenarios": [{"name": "x", "pass_rate": 1.0, "cost": {"llm_tokens": 5}}]}"#;
        let report: SuiteReport = serde_json::from_str(text).expect("reads");
        assert_eq!(report.scenarios[0].cost.llm_tokens, 5);
        assert_eq!(report.scenarios[0].cost.llm_calls, 0);
    }
}
