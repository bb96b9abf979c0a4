//! The capability matrix (10 §5): the 37 ids of agentd 1.3 followed by the 10 extension ids, in
//! matrix order, and which of them this build can exercise.

use std::collections::BTreeSet;

/// Every matrix id, in matrix order (47).
pub const MATRIX: [&str; 47] = [
    // control
    "condition",
    "switch",
    "merge",
    "fail",
    "pause_for_approval",
    "terminate",
    "respond",
    // data
    "parse_json",
    "json_select",
    "template_render",
    "diff_compute",
    // io
    "read_file",
    "write_file",
    "create_dir",
    "read_env",
    // net / exec
    "http_request",
    "shell_run",
    // composition
    "call",
    "parallel",
    "map",
    // mcp
    "call_mcp_tool",
    "read_mcp_resource",
    // intel
    "llm_infer",
    "agent_loop",
    // trigger
    "trigger_manual",
    "trigger_http",
    "trigger_event",
    "trigger_cron",
    "trigger_fs_watch",
    // policy
    "policy_fs",
    "policy_env",
    "policy_http",
    "policy_shell",
    "policy_mcp",
    // assurance
    "reliability_passk",
    "security_injection",
    "fault_tolerance",
    // extension ids
    "loop_edge",
    "default_edge",
    "retry",
    "budget_llm_tokens",
    "budget_fs_write",
    "crash_recovery",
    "idempotency",
    "policy_rego",
    "secret_redaction",
    "mcp_streamable_http",
];

/// Matrix ids whose runtime part has not landed in this build: the engine answers
/// `capability unavailable` for `agent_loop`, and refuses to start with `[policy.rego]`.
/// They stay in the matrix (coverage reports them uncovered) and are never faked.
pub const NOT_LANDED: [&str; 2] = ["agent_loop", "policy_rego"];

/// Coverage of a suite (§5).
#[derive(Debug, Clone, PartialEq)]
pub struct Coverage {
    /// Matrix ids tagged by at least one passed scenario.
    pub covered: usize,
    /// Matrix size.
    pub total: usize,
    /// Uncovered ids in matrix order.
    pub uncovered: Vec<String>,
    /// Tags not in the matrix, sorted and unique.
    pub unknown_tags: Vec<String>,
}

impl Coverage {
    /// `covered / total`.
    pub fn fraction(&self) -> f64 {
        if self.total == 0 { 0.0 } else { self.covered as f64 / self.total as f64 }
    }
}

/// Computes coverage from every scenario's tags and whether it passed.
pub fn coverage<'a>(scenarios: impl IntoIterator<Item = (&'a [String], bool)>) -> Coverage {
    let mut tagged = BTreeSet::new();
    let mut unknown = BTreeSet::new();
    for (tags, passed) in scenarios {
        for tag in tags {
            if !MATRIX.contains(&tag.as_str()) {
                unknown.insert(tag.clone());
            } else if passed {
                tagged.insert(tag.as_str());
            }
        }
    }
    let uncovered: Vec<String> = MATRIX.iter().filter(|id| !tagged.contains(*id)).map(|id| id.to_string()).collect();
    Coverage {
        covered: MATRIX.len() - uncovered.len(),
        total: MATRIX.len(),
        uncovered,
        unknown_tags: unknown.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_has_47_unique_ids() {
        let unique: BTreeSet<_> = MATRIX.iter().collect();
        assert_eq!(unique.len(), 47);
        assert!(NOT_LANDED.iter().all(|id| MATRIX.contains(id)));
    }

    #[test]
    fn only_passed_scenarios_cover_and_unknown_tags_are_flagged() {
        let a = vec!["switch".to_string(), "bogus".to_string()];
        let b = vec!["merge".to_string(), "another".to_string(), "bogus".to_string()];
        let c = coverage([(a.as_slice(), true), (b.as_slice(), false)]);
        assert_eq!(c.covered, 1);
        assert_eq!(c.unknown_tags, vec!["another".to_string(), "bogus".to_string()]);
        assert!(c.uncovered.contains(&"merge".to_string()));
        assert_eq!(c.uncovered[0], "condition");
    }
}
