//! Token accounting (06 §7, 05 §7): what a successful call adds to the run's `cost`, and the
//! per-run token gate checked before every call.

use serde::{Deserialize, Serialize};

use crate::types::Usage;

/// The model part of a run record's `cost` (02 §5): `llm_calls` and `llm_tokens`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LlmCost {
    /// Successful model calls (each repair round is one; failed calls are not counted).
    pub llm_calls: u64,
    /// Prompt + completion tokens of those calls.
    pub llm_tokens: u64,
}

impl LlmCost {
    /// Adds one successful call.
    pub fn record(&mut self, usage: &Usage) {
        self.llm_calls = self.llm_calls.saturating_add(1);
        self.llm_tokens = self.llm_tokens.saturating_add(usage.total());
    }

    /// Adds another tally (a child run's, say).
    pub fn add(&mut self, other: LlmCost) {
        self.llm_calls = self.llm_calls.saturating_add(other.llm_calls);
        self.llm_tokens = self.llm_tokens.saturating_add(other.llm_tokens);
    }
}

/// A token cap was reached before a call (05 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("budget.max_llm_tokens exceeded: {used} / {cap} tokens consumed")]
pub struct BudgetExceeded {
    /// Tokens consumed so far.
    pub used: u64,
    /// The cap.
    pub cap: u64,
}

/// The gate before each model call: refuse when `used ≥ cap`. `None` or `0` means no cap. A
/// call that passes may overshoot the cap by at most its own tokens.
pub fn check_token_budget(used: u64, cap: Option<u64>) -> Result<(), BudgetExceeded> {
    match cap.filter(|c| *c > 0) {
        Some(cap) if used >= cap => Err(BudgetExceeded { used, cap }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_refuses_at_the_cap() {
        assert!(check_token_budget(99, Some(100)).is_ok());
        let refused = check_token_budget(100, Some(100)).unwrap_err();
        assert_eq!(refused.to_string(), "budget.max_llm_tokens exceeded: 100 / 100 tokens consumed");
        assert!(check_token_budget(u64::MAX, Some(0)).is_ok());
        assert!(check_token_budget(u64::MAX, None).is_ok());
    }

    #[test]
    fn cost_counts_calls_and_tokens() {
        let mut cost = LlmCost::default();
        cost.record(&Usage { prompt_tokens: 3, completion_tokens: 4 });
        cost.record(&Usage { prompt_tokens: 1, completion_tokens: 0 });
        assert_eq!(cost, LlmCost { llm_calls: 2, llm_tokens: 8 });
    }
}
