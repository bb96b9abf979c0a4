//! Decisions and denial texts (`05-policy-budgets.md` §6).

use std::fmt;

use crate::syntax::escape_controls;

/// The longest target, in characters, that a denial text or audit event carries.
pub const MAX_TARGET_CHARS: usize = 200;

/// The family a check belongs to (the `family` label of metrics and audit events).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// `read_file`, `write_file`, `create_dir`.
    Fs,
    /// `read_env`.
    Env,
    /// `http_request`.
    Http,
    /// `shell_run`.
    Shell,
    /// `call_mcp_tool`, `read_mcp_resource`.
    Mcp,
}

impl Family {
    /// `fs`, `env`, `http`, `shell` or `mcp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fs => "fs",
            Self::Env => "env",
            Self::Http => "http",
            Self::Shell => "shell",
            Self::Mcp => "mcp",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the effect may happen.
    pub allowed: bool,
    /// The family of the check.
    pub family: Family,
    /// The pattern (as written) that allowed the effect; `None` for denials and for allows that
    /// no pattern granted (allow-everything mode).
    pub rule: Option<String>,
    /// For a denial, the exact rule reason of §6; for an allow, a short explanation.
    pub reason: String,
}

impl Decision {
    /// An allow granted by `rule`.
    pub fn allow(family: Family, rule: Option<String>, reason: impl Into<String>) -> Self {
        Self { allowed: true, family, rule, reason: reason.into() }
    }

    /// A denial with the rule reason `reason`.
    pub fn deny(family: Family, reason: impl Into<String>) -> Self {
        Self { allowed: false, family, rule: None, reason: reason.into() }
    }

    /// The error text of a denial: `policy violation: <op> denied on <target>: <reason>`.
    pub fn violation_text(&self, op: &str, target: &str) -> String {
        violation_text(op, target, &self.reason)
    }
}

/// `policy violation: <op> denied on <target>: <rule reason>` as one line, the target cut to
/// [`MAX_TARGET_CHARS`] characters.
pub fn violation_text(op: &str, target: &str, reason: &str) -> String {
    escape_controls(&format!("policy violation: {op} denied on {}: {reason}", truncate_target(target)))
}

/// `target` cut to at most [`MAX_TARGET_CHARS`] characters (never inside a character).
pub fn truncate_target(target: &str) -> String {
    match target.char_indices().nth(MAX_TARGET_CHARS) {
        Some((cut, _)) => target[..cut].to_owned(),
        None => target.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violation_text_matches_the_spec_example() {
        let decision = Decision::deny(Family::Fs, "path not in [policy.fs].write");
        assert_eq!(
            decision.violation_text("write_file", "/etc/cron.d/backdoor"),
            "policy violation: write_file denied on /etc/cron.d/backdoor: path not in [policy.fs].write"
        );
    }

    #[test]
    fn targets_are_cut_and_kept_on_one_line() {
        let long = "é".repeat(300);
        assert_eq!(truncate_target(&long).chars().count(), MAX_TARGET_CHARS);
        let text = violation_text("read_env", "A\nB", "key not in [policy.env].read_keys");
        assert!(!text.contains('\n'));
    }
}
