//! The `llm_infer` attempt loop (06 §5.2 step 5): budget gate, call, accounting, contract check
//! and repair prompts. The engine renders the prompt, handles dry-run, and maps the outcome to
//! node output or error; everything in between lives here so `agent_loop` and tests share it.

use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::backends::Backends;
use crate::retry::{CallObserver, RetryEvent};
use crate::schema::{OutputContract, Rejection};
use crate::types::{Completion, CompletionRequest, Message, ModelClass, Usage};

/// Output cap when neither the node nor the backend sets one.
const DEFAULT_MAX_TOKENS: u32 = 1024;

/// One `llm_infer` execution.
#[derive(Debug, Clone)]
pub struct InferRequest<'a> {
    /// Node id, for the rejection text.
    pub node_id: &'a str,
    /// Backend name.
    pub backend: &'a str,
    /// The rendered prompt (sent as the single user message).
    pub prompt: String,
    /// Node `max_tokens`; `None` → backend `max_tokens` → 1024. Sent with every attempt.
    pub max_tokens: Option<u32>,
    /// Node `temperature`, sent with every attempt when set.
    pub temperature: Option<f64>,
    /// Output contract; `None` = the text is not parsed.
    pub contract: Option<&'a OutputContract>,
    /// Extra attempts after a rejected output.
    pub output_repairs: u32,
}

/// The engine's side of the loop: the budget gate before each call, accounting after it, audit
/// and metrics. Every method but `before_call` has a no-op default.
pub trait InferHooks: Send + Sync {
    /// Why a call may be refused (the engine's budget error).
    type Refusal;

    /// Budget gate before attempt `attempt` (1-based); `Err` stops the loop unsent.
    fn before_call(&self, attempt: u32) -> Result<(), Self::Refusal>;

    /// A call succeeded: add its tokens to the run, process and fleet tallies and `cost`.
    fn after_call(&self, _completion: &Completion) {}

    /// Attempt `attempt` was rejected and a repair round follows (audit `llm_infer.repair`).
    fn on_repair(&self, _attempt: u32, _reason: &str) {}

    /// A transport retry is about to happen (audit `intel.retry`).
    fn on_retry(&self, _event: &RetryEvent) {}
}

/// Hooks that never refuse and record nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHooks;

impl InferHooks for NoHooks {
    type Refusal = std::convert::Infallible;

    fn before_call(&self, _attempt: u32) -> Result<(), Self::Refusal> {
        Ok(())
    }
}

/// An accepted answer.
#[derive(Debug, Clone, PartialEq)]
pub struct InferOutput {
    /// Raw model text, unmodified.
    pub content: String,
    /// The parsed value when there is a contract.
    pub parsed: Option<Value>,
    /// Usage of the accepted attempt (the node output's `usage`).
    pub usage: Usage,
    /// Calls made, repairs included.
    pub attempts: u32,
    /// Usage summed over every call of this execution.
    pub total_usage: Usage,
}

impl InferOutput {
    /// The node output of 04 §7.1: `{attempts, content, parsed, usage}`.
    pub fn to_value(&self) -> Value {
        json!({
            "attempts": self.attempts,
            "content": self.content,
            "parsed": self.parsed.clone().unwrap_or(Value::Null),
            "usage": {"completion_tokens": self.usage.completion_tokens, "prompt_tokens": self.usage.prompt_tokens},
        })
    }
}

/// The dry-run output: `{"content": "<dry-run>", "dry_run": true, "parsed": null}`.
pub fn dry_run_output() -> Value {
    json!({"content": "<dry-run>", "dry_run": true, "parsed": null})
}

/// Why an execution ended without an accepted answer. Every variant carries the usage of the
/// calls that did succeed (already reported through [`InferHooks::after_call`]).
#[derive(Debug, thiserror::Error)]
pub enum Error<R> {
    /// The backend failed (unknown name, transport failure after retries, run deadline, cancel).
    #[error("{error}")]
    Call {
        /// The call error; [`crate::Error::is_deadline`] means the run should end `timed_out`.
        error: crate::Error,
        /// Usage of earlier successful calls.
        usage: Usage,
        /// Calls attempted, the failed one included.
        attempts: u32,
    },
    /// Every attempt was rejected by the contract.
    #[error("llm_infer node `{node_id}`: output failed validation after {attempts} attempt(s): {last_rejection}")]
    Rejected {
        /// Node id.
        node_id: String,
        /// Calls made.
        attempts: u32,
        /// Rejection of the last attempt.
        last_rejection: String,
        /// Usage of all those calls.
        usage: Usage,
    },
    /// The budget gate refused a call; nothing was sent.
    #[error("{refusal}")]
    Refused {
        /// The engine's refusal.
        refusal: R,
        /// Usage of earlier calls.
        usage: Usage,
        /// Calls made before the refusal.
        attempts: u32,
    },
}

impl<R> Error<R> {
    /// Tokens spent by this execution before it failed.
    pub fn usage(&self) -> Usage {
        match self {
            Error::Call { usage, .. } | Error::Rejected { usage, .. } | Error::Refused { usage, .. } => *usage,
        }
    }

    /// Whether the run deadline ended the execution (run outcome `timed_out`).
    pub fn is_deadline(&self) -> bool {
        matches!(self, Error::Call { error, .. } if error.is_deadline())
    }
}

/// Adapts the hooks' retry callback to a call observer.
struct RetryForwarder<'a, H>(&'a H);

impl<H: InferHooks> CallObserver for RetryForwarder<'_, H> {
    fn on_retry(&self, event: &RetryEvent) {
        self.0.on_retry(event);
    }
}

/// Runs the attempts of one `llm_infer` execution.
pub async fn infer<H: InferHooks>(
    backends: &Backends,
    request: &InferRequest<'_>,
    hooks: &H,
    deadline: Instant,
    cancel: &CancellationToken,
) -> Result<InferOutput, Error<H::Refusal>> {
    if !backends.contains(request.backend) {
        return Err(Error::Call { error: backends.unknown(request.backend), usage: Usage::default(), attempts: 0 });
    }
    let max_tokens = request.max_tokens.or_else(|| backends.max_tokens(request.backend)).unwrap_or(DEFAULT_MAX_TOKENS);
    let allowed = request.output_repairs.saturating_add(1);
    let mut messages = vec![Message::user(request.prompt.clone())];
    let mut total = Usage::default();
    let mut last_rejection = String::new();
    for attempt in 1..=allowed {
        hooks.before_call(attempt).map_err(|refusal| Error::Refused {
            refusal,
            usage: total,
            attempts: attempt - 1,
        })?;
        let call = CompletionRequest {
            model_class: ModelClass::Fast,
            messages: messages.clone(),
            max_tokens: Some(max_tokens),
            temperature: request.temperature,
        };
        let completion = backends
            .complete_observed(request.backend, &call, deadline, cancel, &RetryForwarder(hooks))
            .await
            .map_err(|error| Error::Call { error, usage: total, attempts: attempt })?;
        total.add(completion.usage);
        hooks.after_call(&completion);
        let Some(contract) = request.contract else {
            return Ok(accepted(completion, None, attempt, total));
        };
        match contract.check(&completion.text) {
            Ok(value) => return Ok(accepted(completion, Some(value), attempt, total)),
            Err(Rejection(reason)) => {
                if attempt < allowed {
                    hooks.on_repair(attempt, &reason);
                    messages.push(Message::assistant(completion.text));
                    messages.push(Message::user(repair_prompt(&reason)));
                }
                last_rejection = reason;
            }
        }
    }
    Err(Error::Rejected { node_id: request.node_id.to_string(), attempts: allowed, last_rejection, usage: total })
}

/// The user message of a repair round.
pub fn repair_prompt(rejection: &str) -> String {
    format!("Your previous output was rejected: {rejection}. Reply with corrected output only.")
}

fn accepted(completion: Completion, parsed: Option<Value>, attempts: u32, total_usage: Usage) -> InferOutput {
    InferOutput { content: completion.text, parsed, usage: completion.usage, attempts, total_usage }
}
