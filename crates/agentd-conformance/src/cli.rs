//! The `agentd-conformance` command line (10 §1): flags, the run, reports, gates and exit codes.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::Parser;

use crate::report::{self, SuiteReport};
use crate::suite::{self, SuiteOptions};
use crate::text;
use crate::trial::TrialOptions;

/// Every selected scenario passed, no gate or drift failure, every write succeeded.
pub const EXIT_OK: i32 = 0;
/// Some scenario failed, a gate or drift failed, or a read/write failed.
pub const EXIT_FAILED: i32 = 1;
/// Usage error.
pub const EXIT_USAGE: i32 = 2;

/// Runs a corpus of declarative scenarios against the real agentd engine and reports
/// reliability (pass^k, pass rate), capability coverage, cost per success and drift.
#[derive(Debug, Parser)]
#[command(name = "agentd-conformance", version, args_override_self = true)]
struct Flags {
    /// A corpus directory (every *.toml under it is a scenario) or one scenario file.
    /// An optional leading `run` word is accepted.
    #[arg(value_name = "PATH", default_value = "./corpus")]
    path: PathBuf,
    /// Print the suite JSON on stdout instead of the text report.
    #[arg(long)]
    json: bool,
    /// Suite-wide reliability floor in [0, 1].
    #[arg(long, value_name = "T")]
    min_pass_rate: Option<String>,
    /// Print a spend forecast for N runs per day.
    #[arg(long, value_name = "N")]
    forecast_runs_per_day: Option<String>,
    /// Dollars per 1 000 000 tokens for the forecast.
    #[arg(long, value_name = "P")]
    price_per_mtok: Option<String>,
    /// Write the suite JSON to PATH (after any comparison).
    #[arg(long, value_name = "PATH")]
    save_baseline: Option<PathBuf>,
    /// Compare against a saved suite JSON; pass-rate regressions fail the run.
    #[arg(long, value_name = "PATH")]
    baseline: Option<PathBuf>,
    /// Suite seed (decimal or 0x hex); default: AGENTD_CONFORMANCE_SEED, else random.
    #[arg(long, value_name = "N")]
    seed: Option<String>,
    /// Run only scenarios whose name contains TEXT (repeatable).
    #[arg(long, value_name = "TEXT", action = clap::ArgAction::Append)]
    filter: Vec<String>,
    /// Run only trial I (0-based) of each selected scenario (replay).
    #[arg(long, value_name = "I")]
    trial: Option<u32>,
    /// Override every scenario's `trials` (at least 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    trials: Option<u32>,
    /// Scenarios run in parallel (default: CPU count).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    jobs: Option<u32>,
    /// Also write a JUnit XML report.
    #[arg(long, value_name = "PATH")]
    junit: Option<PathBuf>,
    /// Also gate token growth against the baseline, in percent.
    #[arg(long, value_name = "PCT")]
    max_token_drift: Option<String>,
    /// Live-model mode (not available in this build).
    #[arg(long, value_name = "ENV.toml")]
    live: Option<PathBuf>,
    /// With --live: the backend answering for `default`.
    #[arg(long, value_name = "NAME")]
    live_default: Option<String>,
    /// POST the report to a control plane (not available in this build).
    #[arg(long, value_name = "URL")]
    publish: Option<String>,
    /// Bearer token file for --publish.
    #[arg(long, value_name = "PATH")]
    publish_token_file: Option<PathBuf>,
    /// Label stored with a published report.
    #[arg(long, value_name = "TEXT")]
    label: Option<String>,
    /// Do not delete trial directories (their paths are printed).
    #[arg(long)]
    keep_trial_dirs: bool,
}

/// Validated numeric settings.
struct Numbers {
    min_pass_rate: Option<f64>,
    runs_per_day: Option<f64>,
    price: Option<f64>,
    max_token_drift: Option<f64>,
    seed: u64,
}

fn usage(message: impl std::fmt::Display) -> i32 {
    eprintln!("agentd-conformance: {message}\nhint: run `agentd-conformance --help`");
    EXIT_USAGE
}

/// Entry point; `args` excludes the program name. Returns the exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    if args.first().and_then(|a| a.to_str()) == Some(crate::mcp::SERVE_SUBCOMMAND) {
        let rest: Vec<String> = args[1..].iter().map(|a| a.to_string_lossy().into_owned()).collect();
        return crate::mcp::serve_main(&rest);
    }
    let mut args = args;
    if args.first().and_then(|a| a.to_str()) == Some("run") {
        args.remove(0);
    }
    let flags = match Flags::try_parse_from(std::iter::once(OsString::from("agentd-conformance")).chain(args)) {
        Ok(flags) => flags,
        Err(e) => return clap_error(&e),
    };
    let numbers = match numbers(&flags) {
        Ok(n) => n,
        Err(message) => return usage(message),
    };
    if flags.live.is_some() || flags.live_default.is_some() {
        return usage("--live is not available in this build yet (live-model mode has not landed)");
    }
    if flags.publish.is_some() || flags.publish_token_file.is_some() || flags.label.is_some() {
        return usage("--publish is not available in this build yet (the control plane has not landed)");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("agentd-conformance: cannot start the async runtime: {e}");
            return EXIT_FAILED;
        }
    };
    runtime.block_on(run(&flags, &numbers))
}

fn clap_error(error: &clap::Error) -> i32 {
    use clap::error::ErrorKind;
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            print!("{}", error.render());
            EXIT_OK
        }
        _ => {
            let rendered = error.render().to_string();
            let first =
                rendered.lines().next().unwrap_or("invalid arguments").trim_start_matches("error: ").to_string();
            usage(first)
        }
    }
}

fn number(value: Option<&String>, flag: &str, check: impl Fn(f64) -> bool, rule: &str) -> Result<Option<f64>, String> {
    let Some(text) = value else { return Ok(None) };
    match text.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && check(n) => Ok(Some(n)),
        _ => Err(format!("invalid value `{text}` for `{flag}`: expected {rule}")),
    }
}

fn numbers(flags: &Flags) -> Result<Numbers, String> {
    let min_pass_rate =
        number(flags.min_pass_rate.as_ref(), "--min-pass-rate", |n| (0.0..=1.0).contains(&n), "a number in [0, 1]")?;
    let non_negative = |n: f64| n >= 0.0;
    let runs_per_day =
        number(flags.forecast_runs_per_day.as_ref(), "--forecast-runs-per-day", non_negative, "a number >= 0")?;
    let price = number(flags.price_per_mtok.as_ref(), "--price-per-mtok", non_negative, "a number >= 0")?;
    let max_token_drift = number(flags.max_token_drift.as_ref(), "--max-token-drift", non_negative, "a number >= 0")?;
    let from_env = std::env::var("AGENTD_CONFORMANCE_SEED").ok().filter(|s| !s.trim().is_empty());
    let seed = match flags.seed.as_ref().or(from_env.as_ref()) {
        Some(text) => parse_seed(text).ok_or_else(|| format!("invalid value `{text}` for `--seed`: expected a u64"))?,
        None => rand::random::<u64>(),
    };
    Ok(Numbers { min_pass_rate, runs_per_day, price, max_token_drift, seed })
}

/// A u64 in decimal or `0x` hex.
pub fn parse_seed(text: &str) -> Option<u64> {
    let text = text.trim();
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

async fn run(flags: &Flags, numbers: &Numbers) -> i32 {
    eprintln!("agentd-conformance: seed {} (replay with --seed {})", numbers.seed, numbers.seed);
    let files = match suite::discover(&flags.path) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("agentd-conformance: {e}");
            return EXIT_FAILED;
        }
    };
    let prepared: Vec<suite::Prepared> = files
        .iter()
        .map(|f| suite::prepare(f, &flags.path))
        .filter(|p| flags.filter.is_empty() || flags.filter.iter().any(|t| p.name().contains(t.as_str())))
        .collect();
    if prepared.is_empty() {
        eprintln!("agentd-conformance: no scenarios under {}", flags.path.display());
        return EXIT_FAILED;
    }
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("agentd-conformance"));
    let jobs = flags.jobs.map_or_else(|| std::thread::available_parallelism().map_or(1, usize::from), |j| j as usize);
    let options = SuiteOptions {
        seed: numbers.seed,
        filters: flags.filter.clone(),
        only_trial: flags.trial,
        trials: flags.trials,
        jobs,
        trial: TrialOptions { exe, keep_dirs: flags.keep_trial_dirs },
    };
    let outcomes = suite::run(prepared, &options).await;
    let mut suite = report::suite_report(&outcomes, numbers.seed);
    finish(flags, numbers, &mut suite)
}

/// Gates, drift, forecast, output and writes; the exit code.
fn finish(flags: &Flags, numbers: &Numbers, suite: &mut SuiteReport) -> i32 {
    let mut code = if suite.summary.failed > 0 { EXIT_FAILED } else { EXIT_OK };
    let mut messages = String::new();
    let violations = report::gate(suite, numbers.min_pass_rate);
    if !violations.is_empty() {
        messages.push_str(&text::gate_message(&violations));
        code = EXIT_FAILED;
    }
    if let Some(runs) = numbers.runs_per_day {
        let forecast = report::forecast(suite, runs, numbers.price);
        messages.push_str(&text::forecast_message(forecast.as_ref(), runs));
        suite.summary.forecast = forecast;
    }
    if let Some(path) = &flags.baseline {
        match read_baseline(path) {
            Ok(baseline) => {
                let drift = report::drift(suite, &baseline, &path.display().to_string(), numbers.max_token_drift);
                messages.push_str(&text::drift_message(&drift));
                if drift.scenarios.iter().any(|e| e.regressed) {
                    code = EXIT_FAILED;
                }
                suite.summary.drift = Some(drift);
            }
            Err(e) => {
                messages.push_str(&format!("\nagentd-conformance: read baseline {}: {e}\n", path.display()));
                code = EXIT_FAILED;
            }
        }
    }
    let json = serde_json::to_string_pretty(&*suite).unwrap_or_else(|_| "{}".to_string());
    if flags.json {
        println!("{json}");
    } else {
        print!("{}", text::report(suite));
    }
    eprint!("{messages}");
    if let Some(path) = &flags.save_baseline {
        match write_file(path, &format!("{json}\n")) {
            Ok(()) => eprintln!("\nbaseline written to {}", path.display()),
            Err(e) => {
                eprintln!("\nagentd-conformance: write baseline {}: {e}", path.display());
                code = EXIT_FAILED;
            }
        }
    }
    if let Some(path) = &flags.junit
        && let Err(e) = write_file(path, &text::junit(suite))
    {
        eprintln!("\nagentd-conformance: write junit {}: {e}", path.display());
        code = EXIT_FAILED;
    }
    code
}

fn read_baseline(path: &Path) -> Result<SuiteReport, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

fn write_file(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_parse_in_decimal_and_hex() {
        assert_eq!(parse_seed("42"), Some(42));
        assert_eq!(parse_seed("0x2A"), Some(42));
        assert_eq!(parse_seed("0xffffffffffffffff"), Some(u64::MAX));
        assert_eq!(parse_seed("-1"), None);
        assert_eq!(parse_seed("x"), None);
    }
}
