//! Every flag of 01-cli.md §2 in one table: name, aliases, environment twin, default, help.
//!
//! The clap command and the generated help are built from this table, and settings are read
//! back through it with the precedence CLI flag > environment twin > default (01 §1).

use std::ffi::OsString;

use clap::{Arg, ArgAction, ArgMatches, Command};

/// A value flag or a switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Takes a value.
    Value,
    /// Boolean switch.
    Switch,
}

/// One flag.
pub struct Flag {
    /// Long name without dashes.
    pub long: &'static str,
    /// Short alias.
    pub short: Option<char>,
    /// Long aliases.
    pub aliases: &'static [&'static str],
    /// Environment twin.
    pub env: Option<&'static str>,
    /// Value or switch.
    pub kind: Kind,
    /// Default, as shown in help.
    pub default: &'static str,
    /// Help heading.
    pub section: &'static str,
    /// One-line help.
    pub help: &'static str,
}

const fn value(
    long: &'static str,
    env: Option<&'static str>,
    default: &'static str,
    section: &'static str,
    help: &'static str,
) -> Flag {
    Flag { long, short: None, aliases: &[], env, kind: Kind::Value, default, section, help }
}

const fn switch(long: &'static str, env: Option<&'static str>, section: &'static str, help: &'static str) -> Flag {
    Flag { long, short: None, aliases: &[], env, kind: Kind::Switch, default: "off", section, help }
}

const RUN: &str = "Workflow, input and run control";
const SERVE: &str = "Serve mode";
const STATE: &str = "State directory";
const INTEL: &str = "Intelligence and MCP";
const LOG: &str = "Logging";
const SIGN: &str = "Signing";
const INSTR: &str = "Instruction mode";
const OTHER: &str = "Policy, control plane and fleet";

/// The flag table (01 §2).
pub const FLAGS: &[Flag] = &[
    Flag {
        short: Some('c'),
        ..value("config", Some("AGENTD_CONFIG"), "embedded workflow, else none", RUN, "Workflow TOML to load")
    },
    Flag {
        short: Some('i'),
        aliases: &["input-file"],
        ..value(
            "input",
            Some("AGENTD_INPUT"),
            "JSON null",
            RUN,
            "Trigger payload: a file path, `-` for stdin, or inline JSON starting with { or [",
        )
    },
    Flag {
        short: Some('s'),
        ..value("start", Some("AGENTD_START"), "automatic", RUN, "Start-node name for one-shot runs")
    },
    value("mode", Some("AGENTD_MODE"), "inferred", RUN, "Force the mode: once or serve"),
    value(
        "timeout-secs",
        Some("AGENTD_TIMEOUT_SECS"),
        "120",
        RUN,
        "Per-run deadline in seconds (clamped by [budget].max_run_time_secs)",
    ),
    switch("dry-run", Some("AGENTD_DRY_RUN"), RUN, "Skip side effects; policy checks still run"),
    switch("validate-only", Some("AGENTD_VALIDATE_ONLY"), RUN, "Parse and validate, print the result, exit"),
    value("record", Some("AGENTD_RECORD"), "none", RUN, "Write the run record JSON to PATH after a one-shot run"),
    Flag {
        short: Some('b'),
        ..value("bind", Some("AGENTD_HTTP_BIND"), "127.0.0.1:8080", SERVE, "Listen address IPv4:port or [IPv6]:port")
    },
    value("drain-timeout-secs", Some("AGENTD_DRAIN_TIMEOUT_SECS"), "30", SERVE, "Graceful-shutdown window in seconds"),
    value(
        "reload-file",
        Some("AGENTD_RELOAD_FILE"),
        "none",
        SERVE,
        "Reload the configuration when this file's mtime changes",
    ),
    value(
        "state-dir",
        Some("AGENTD_STATE_DIR"),
        "./.agentd",
        STATE,
        "Directory holding state.db (checkpoints, history, approvals)",
    ),
    value("resume", Some("AGENTD_RESUME"), "none", STATE, "Continue a paused or recoverable run"),
    switch(
        "checkpoint-each-node",
        Some("AGENTD_CHECKPOINT_EACH_NODE"),
        STATE,
        "Write a progress checkpoint after every node",
    ),
    switch("resume-incomplete", None, STATE, "Resume every recoverable checkpoint of the workflow, then exit"),
    switch("list-checkpoints", None, STATE, "Print checkpoints and exit"),
    switch("no-history", Some("AGENTD_NO_HISTORY"), STATE, "Do not store run records in the history"),
    value(
        "history-max-runs",
        Some("AGENTD_HISTORY_MAX_RUNS"),
        "1000",
        STATE,
        "Keep at most N finished runs in the history",
    ),
    value(
        "durability",
        Some("AGENTD_DURABILITY"),
        "normal",
        STATE,
        "State-store commits: normal (survive a process crash) or fsync (also survive power loss; slower)",
    ),
    value(
        "intel-unix",
        Some("AGENTD_INTEL_UNIX"),
        "none",
        INTEL,
        "Backend `default` over a Unix-socket JSON-RPC transport",
    ),
    value("intel-http", Some("AGENTD_INTEL_HTTP"), "none", INTEL, "Backend `default` over an HTTP JSON-RPC transport"),
    value(
        "intel-http-bearer-file",
        Some("AGENTD_INTEL_HTTP_BEARER_FILE"),
        "none",
        INTEL,
        "File whose trimmed content is the bearer token for --intel-http",
    ),
    value("mcp-stdio", Some("AGENTD_MCP_STDIO"), "none", INTEL, "Legacy single MCP server `default`: \"CMD ARGS\""),
    value("log-level", Some("AGENTD_LOG"), "warn", LOG, "Log filter directive (info, agentd=debug,warn, …)"),
    value("log-format", Some("AGENTD_LOG_FORMAT"), "text", LOG, "text (alias pretty) or json"),
    value("log-target", Some("AGENTD_LOG_TARGET"), "stderr", LOG, "stderr, stdout or file:PATH"),
    switch("quiet", Some("AGENTD_QUIET"), LOG, "Silence operational logging (the audit sink keeps receiving events)"),
    switch(
        "signing-required",
        Some("AGENTD_SIGNING_REQUIRED"),
        SIGN,
        "Refuse to start unless the workflow's detached signature verifies",
    ),
    value("signing-key-file", Some("AGENTD_SIGNING_KEY_FILE"), "none", SIGN, "Trusted Ed25519 public key (PEM)"),
    value(
        "instruction",
        Some("AGENTD_INSTRUCTION"),
        "none",
        INSTR,
        "Natural-language task (TEXT or @FILE); selects instruction mode",
    ),
    value("instruction-file", None, "none", INSTR, "Same as --instruction @PATH"),
    value("goal", Some("AGENTD_GOAL"), "none", INSTR, "Legacy alias of --instruction"),
    value("instructions", Some("AGENTD_INSTRUCTIONS"), "none", INSTR, "Agent identity file ([agent] table)"),
    switch("auto-approve", Some("AGENTD_AUTO_APPROVE"), INSTR, "Allow a compiled plan to execute"),
    switch("plan-only", Some("AGENTD_PLAN_ONLY"), INSTR, "Print the compiled workflow TOML and exit"),
    value("plan-out", Some("AGENTD_PLAN_OUT"), "none", INSTR, "Also write the compiled TOML to PATH"),
    value("promote", Some("AGENTD_PROMOTE"), "none", INSTR, "Write a self-contained promoted workflow to PATH"),
    value("max-replans", Some("AGENTD_MAX_REPLANS"), "2", INSTR, "Extra planner attempts after a failure"),
    switch(
        "no-replan-on-failure",
        Some("AGENTD_NO_REPLAN_ON_FAILURE"),
        INSTR,
        "Disable re-planning after a failed run",
    ),
    switch("no-prompt", Some("AGENTD_NO_PROMPT"), INSTR, "Never ask for approval interactively"),
    switch("queue-approval", Some("AGENTD_QUEUE_APPROVAL"), INSTR, "Park the compiled plan in the approval queue"),
    switch(
        "require-policy",
        Some("AGENTD_REQUIRE_POLICY"),
        OTHER,
        "Refuse to start a workflow without a [policy] table",
    ),
    switch("control", Some("AGENTD_CONTROL"), OTHER, "Enable the control-plane API in serve mode"),
    value("control-bind", Some("AGENTD_CONTROL_BIND"), "none", OTHER, "Separate listener for the control plane"),
    value("store", Some("AGENTD_STORE"), "sqlite", OTHER, "Run-state store: sqlite, sqlite:PATH or postgres://…"),
    value("node-id", Some("AGENTD_NODE_ID"), "<hostname>-<pid>-<4 hex>", OTHER, "Fleet node identity"),
];

/// Flags accepted only after particular subcommands.
pub const SUBCOMMAND_FLAGS: &[Flag] = &[
    value("note", None, "none", "approve", "Approval note (approve)"),
    value("reason", None, "none", "reject", "Rejection reason (reject)"),
    value("limit", None, "20", "runs", "Rows to show, 0 = all (runs list)"),
    value("status", None, "any", "runs", "Filter by status (runs list)"),
    value("workflow", None, "any", "runs", "Filter by workflow name (runs list)"),
    value("since", None, "any", "runs", "Only runs started at or after this RFC 3339 instant (runs list)"),
    switch("json", None, "runs", "Print JSON (runs)"),
];

fn arg(flag: &Flag) -> Arg {
    let mut help = flag.help.to_string();
    if let Some(env) = flag.env {
        help.push_str(&format!(" [env: {env}]"));
    }
    help.push_str(&format!(" [default: {}]", flag.default));
    let mut arg = Arg::new(flag.long).long(flag.long).help(help).help_heading(flag.section);
    if let Some(short) = flag.short {
        arg = arg.short(short);
    }
    for alias in flag.aliases {
        arg = arg.visible_alias(*alias);
    }
    match flag.kind {
        Kind::Value => arg
            .action(ArgAction::Set)
            .value_name("VALUE")
            .value_parser(clap::value_parser!(OsString))
            .allow_hyphen_values(true),
        Kind::Switch => arg.action(ArgAction::SetTrue),
    }
}

/// The clap command for a given subcommand (or the flags-only form).
pub fn command(subcommand: Option<&str>) -> Command {
    let name = match subcommand {
        Some(sub) => format!("agentd {sub}"),
        None => "agentd".to_string(),
    };
    let mut command = Command::new(name)
        .no_binary_name(true)
        .disable_version_flag(true)
        .disable_help_flag(true)
        .arg(Arg::new("help").short('h').long("help").action(ArgAction::HelpLong).help("Print help (same as `agentd help`)").help_heading("Meta"))
        .args_override_self(true)
        .about("A single-binary runtime for bounded AI-agent workflows")
        .override_usage(
            "agentd [FLAGS]\n       agentd validate FILE [FLAGS]\n       agentd run FILE [FLAGS]\n       agentd serve FILE [FLAGS]\n       agentd inspect RUN.json|-\n       agentd runs [list|show ID] | approve RUN_ID | reject RUN_ID | store migrate|status",
        )
        .arg(Arg::new("version").short('V').long("version").action(ArgAction::SetTrue).help("Print the version and exit").help_heading("Meta"));
    for flag in FLAGS {
        command = command.arg(arg(flag));
    }
    match subcommand {
        Some("validate" | "run" | "serve") => {
            command = command.arg(Arg::new("FILE").value_parser(clap::value_parser!(OsString)).help("Workflow file"));
        }
        Some("approve" | "reject") => {
            command = command.arg(Arg::new("RUN_ID").required(true).help("Execution id"));
            for flag in SUBCOMMAND_FLAGS.iter().filter(|f| f.section == subcommand.unwrap_or_default()) {
                command = command.arg(arg(flag));
            }
        }
        Some("runs") => {
            command = command.arg(Arg::new("ACTION").num_args(0..=2).help("list | show RUN_ID"));
            for flag in SUBCOMMAND_FLAGS.iter().filter(|f| f.section == "runs") {
                command = command.arg(arg(flag));
            }
        }
        Some("store") => {
            command = command.arg(Arg::new("ACTION").required(true).help("migrate | status"));
        }
        _ => {}
    }
    command
}

/// Parsed flags with environment fallback.
#[derive(Clone)]
pub struct Settings {
    matches: ArgMatches,
}

/// An environment variable, trimmed; empty or whitespace-only counts as unset (01 §2.10).
pub fn env_var(name: &str) -> Option<OsString> {
    let value = std::env::var_os(name)?;
    match value.to_str() {
        Some(s) if s.trim().is_empty() => None,
        _ => Some(value),
    }
}

impl Settings {
    /// Wraps clap's matches.
    pub fn new(matches: ArgMatches) -> Settings {
        Settings { matches }
    }

    fn flag(long: &str) -> Option<&'static Flag> {
        FLAGS.iter().chain(SUBCOMMAND_FLAGS).find(|f| f.long == long)
    }

    /// A value: CLI, then the environment twin.
    pub fn value(&self, long: &str) -> Option<OsString> {
        if let Ok(Some(v)) = self.matches.try_get_one::<OsString>(long) {
            return Some(v.clone());
        }
        Self::flag(long).and_then(|f| f.env).and_then(env_var)
    }

    /// A value as UTF-8 text (lossy for display-only values).
    pub fn text(&self, long: &str) -> Option<String> {
        self.value(long).map(|v| v.to_string_lossy().into_owned())
    }

    /// Whether the flag was given on the command line (not from the environment).
    pub fn given(&self, long: &str) -> bool {
        matches!(self.matches.value_source(long), Some(clap::parser::ValueSource::CommandLine))
    }

    /// A switch: CLI, then the environment twin (true iff `1`, `true`, `TRUE`, `True`).
    pub fn switch(&self, long: &str) -> bool {
        if self.matches.try_get_one::<bool>(long).ok().flatten().copied().unwrap_or(false) {
            return true;
        }
        Self::flag(long)
            .and_then(|f| f.env)
            .and_then(|e| std::env::var(e).ok())
            .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "TRUE" | "True"))
    }

    /// A u64: a malformed CLI value is a usage error; a malformed or zero environment value
    /// falls back to the default with a warning.
    pub fn number(&self, long: &str, default: u64) -> Result<u64, String> {
        if let Ok(Some(v)) = self.matches.try_get_one::<OsString>(long) {
            let text = v.to_string_lossy();
            return text
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("invalid value `{text}` for `--{long}`: expected a non-negative integer"));
        }
        let Some(env) = Self::flag(long).and_then(|f| f.env) else {
            return Ok(default);
        };
        match env_var(env) {
            None => Ok(default),
            Some(v) => match v.to_string_lossy().trim().parse::<u64>() {
                Ok(n) if n > 0 => Ok(n),
                _ => {
                    eprintln!(
                        "agentd: warning: {env}={} is not a positive integer; using the default {default}",
                        v.to_string_lossy()
                    );
                    Ok(default)
                }
            },
        }
    }

    /// String positionals (`runs` actions, run ids).
    pub fn strings(&self, name: &str) -> Vec<String> {
        self.matches.try_get_many::<String>(name).ok().flatten().map(|v| v.cloned().collect()).unwrap_or_default()
    }

    /// A positional argument.
    pub fn positional(&self, name: &str) -> Option<OsString> {
        self.matches.try_get_one::<OsString>(name).ok().flatten().cloned()
    }
}
