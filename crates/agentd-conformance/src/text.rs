//! The human renderings (10 §8.1, §8.3): the text report, the stderr messages of gates, forecast
//! and drift, and the JUnit XML.

use std::fmt::Write as _;

use crate::capabilities::NOT_LANDED;
use crate::report::{Drift, Forecast, ScenarioReport, SuiteReport, Violation};

/// Failure lines printed per scenario.
const MAX_FAILURE_LINES: usize = 8;

/// The text report (stdout).
pub fn report(suite: &SuiteReport) -> String {
    let mut out = String::new();
    for scenario in &suite.scenarios {
        scenario_lines(&mut out, scenario);
    }
    footer(&mut out, suite);
    out
}

fn scenario_lines(out: &mut String, s: &ScenarioReport) {
    let cost = format!("{} calls / {} tok", s.cost.llm_calls, s.cost.llm_tokens);
    match s.status.as_str() {
        "skipped" => {
            let reason = s.skip_reason.as_deref().unwrap_or("not for this platform");
            let _ = writeln!(out, "  skip {:<34} ({reason})", s.name);
        }
        "passed" if s.pass_k >= 1.0 => {
            let _ = writeln!(out, "  ok   {:<34} pass^{:<2} = 1.0   {cost}", s.name, s.trials);
        }
        "passed" => {
            let bar = s.min_pass_rate.unwrap_or(0.0);
            let _ = writeln!(
                out,
                "  ok   {:<34} pass^{:<2} = {:.1}   rate {:.2} >= bar {bar:.2}   {cost}",
                s.name, s.trials, s.pass_k, s.pass_rate
            );
        }
        _ => {
            let _ = writeln!(out, "  FAIL {:<34} pass^{:<2} = {:.2}", s.name, s.trials, s.pass_k);
            for line in failure_lines(s).iter().take(MAX_FAILURE_LINES) {
                let _ = writeln!(out, "         {line}");
            }
        }
    }
}

/// Failure lines with the trial seed (extension): `trial <i> (seed 0x…): <text>`.
fn failure_lines(s: &ScenarioReport) -> Vec<String> {
    let mut lines: Vec<String> = s.load_error.iter().map(|e| format!("load error: {e}")).collect();
    for trial in &s.trial_results {
        for failure in &trial.failures {
            lines.push(format!("trial {} (seed {}): {failure}", trial.trial, trial.seed));
        }
    }
    if lines.is_empty() && !s.passed {
        lines.push(format!("pass_rate {:.2} is below the scenario's bar", s.pass_rate));
    }
    lines
}

fn footer(out: &mut String, suite: &SuiteReport) {
    let m = &suite.summary;
    let skipped = if m.skipped > 0 { format!(", {} skipped", m.skipped) } else { String::new() };
    let _ = writeln!(
        out,
        "\n{} scenario(s): {} passed, {} failed{skipped} | mean pass^k = {:.3} | {} llm calls, {} tokens",
        m.scenarios, m.passed, m.failed, m.mean_pass_k, m.total_llm_calls, m.total_llm_tokens
    );
    if let Some(cps) = m.cost_per_success_tokens {
        let _ = writeln!(
            out,
            "cost-per-success: {cps:.0} tokens/success ({} tokens over {} passing trials)",
            m.total_trial_tokens, m.total_passed_trials
        );
    }
    let c = &m.coverage;
    let _ = writeln!(out, "coverage: {}/{} capabilities ({:.0}%)", c.covered, c.total, c.fraction * 100.0);
    if !c.uncovered.is_empty() {
        let _ = writeln!(out, "  uncovered: {}", c.uncovered.join(", "));
        let not_landed: Vec<&str> =
            c.uncovered.iter().map(String::as_str).filter(|id| NOT_LANDED.contains(id)).collect();
        if !not_landed.is_empty() {
            let _ = writeln!(out, "  not landed in this build: {}", not_landed.join(", "));
        }
    }
    if !c.unknown_tags.is_empty() {
        let _ = writeln!(out, "  WARNING unknown capability tags: {}", c.unknown_tags.join(", "));
    }
}

/// `reliability gate FAILED:` and one line per violation.
pub fn gate_message(violations: &[Violation]) -> String {
    let mut out = String::from("\nreliability gate FAILED:\n");
    for v in violations {
        let _ = writeln!(out, "  {} — pass_rate {:.2} < required {:.2}", v.name, v.pass_rate, v.required);
    }
    out
}

/// The forecast line, or the no-success message.
pub fn forecast_message(forecast: Option<&Forecast>, runs_per_day: f64) -> String {
    match forecast {
        None => "\nforecast: no successful runs to base a projection on\n".to_string(),
        Some(f) => {
            let priced = f.usd_per_month.map(|usd| format!(" (~${usd:.2}/month)")).unwrap_or_default();
            format!(
                "\nforecast @ {runs_per_day:.0} runs/day: {:.0} tokens/success → {:.0} tokens/day, {:.0} tokens/month{priced}\n",
                f.cost_per_success_tokens, f.tokens_per_day, f.tokens_per_month
            )
        }
    }
}

/// The drift summary.
pub fn drift_message(drift: &Drift) -> String {
    let regressions: Vec<_> = drift.scenarios.iter().filter(|e| e.regressed).collect();
    if regressions.is_empty() {
        return "\ndrift vs baseline: no pass_rate regressions\n".to_string();
    }
    let mut out = String::from("\ndrift vs baseline — REGRESSIONS:\n");
    for e in regressions {
        let _ = writeln!(
            out,
            "  {} — pass_rate {:.2} → {:.2}  (tokens {} → {})",
            e.name,
            e.old_pass_rate.unwrap_or(0.0),
            e.new_pass_rate.unwrap_or(0.0),
            e.old_tokens.unwrap_or(0),
            e.new_tokens.unwrap_or(0)
        );
    }
    out
}

/// The JUnit XML document (§8.3).
pub fn junit(suite: &SuiteReport) -> String {
    let tests = suite.scenarios.len();
    let failures = suite.scenarios.iter().filter(|s| s.status == "failed").count();
    let skipped = suite.scenarios.iter().filter(|s| s.status == "skipped").count();
    let time: f64 = suite.scenarios.iter().map(|s| s.total_latency_ms as f64 / 1000.0).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuite name=\"agentd-conformance\" tests=\"{tests}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{time:.3}\">"
    );
    for s in &suite.scenarios {
        let classname = s.file.strip_suffix(".toml").unwrap_or(&s.file).replace('/', ".");
        let _ = write!(
            out,
            "  <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            xml(&classname),
            xml(&s.name),
            s.total_latency_ms as f64 / 1000.0
        );
        match s.status.as_str() {
            "skipped" => out.push_str(">\n    <skipped/>\n  </testcase>\n"),
            "failed" => {
                let lines = failure_lines(s);
                let first = lines.first().cloned().unwrap_or_default();
                let _ = write!(
                    out,
                    ">\n    <failure message=\"{}\">{}</failure>\n  </testcase>\n",
                    xml(&first),
                    xml(&lines.join("\n"))
                );
            }
            _ => out.push_str("/>\n"),
        }
    }
    out.push_str("</testsuite>\n");
    out
}

/// XML text and attribute escaping; characters XML 1.0 cannot carry are dropped.
fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escapes_markup_and_drops_control_characters() {
        assert_eq!(xml("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot;");
    }
}
