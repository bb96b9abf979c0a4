//! The normalised request and response every backend speaks (06 §3 "internal request/response").
//!
//! Providers translate these to and from their own wire formats; nodes never see a wire format.

use serde::{Deserialize, Serialize};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions for the model.
    System,
    /// The caller.
    User,
    /// The model.
    Assistant,
}

impl Role {
    /// The JSON-RPC / OpenAI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One conversation message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Author.
    pub role: Role,
    /// Plain text content.
    pub content: String,
}

impl Message {
    /// A `system` message.
    pub fn system(content: impl Into<String>) -> Message {
        Message { role: Role::System, content: content.into() }
    }

    /// A `user` message.
    pub fn user(content: impl Into<String>) -> Message {
        Message { role: Role::User, content: content.into() }
    }

    /// An `assistant` message.
    pub fn assistant(content: impl Into<String>) -> Message {
        Message { role: Role::Assistant, content: content.into() }
    }
}

/// The model class a JSON-RPC backend is asked for (06 §4.1 `params.model`). HTTP providers
/// ignore it: their model id comes from the backend definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ModelClass {
    /// `llm_infer` and `agent_loop` calls.
    #[default]
    Fast,
    /// Instruction-mode planner calls.
    Reasoning,
}

impl ModelClass {
    /// Wire spelling: `fast` or `reasoning`.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelClass::Fast => "fast",
            ModelClass::Reasoning => "reasoning",
        }
    }
}

/// One model request, independent of the provider.
///
/// There is deliberately no structured-output knob: 06 §3 pins every request body down exactly,
/// and output contracts are enforced on our side by [`crate::infer`] (parse, validate, repair).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CompletionRequest {
    /// Model class for JSON-RPC transports.
    pub model_class: ModelClass,
    /// The conversation, in order. System messages may appear anywhere; each provider places
    /// them as its API demands.
    pub messages: Vec<Message>,
    /// Output-token cap; `None` falls back to the backend's `max_tokens`, then 1024 (HTTP
    /// providers) or omission (JSON-RPC).
    pub max_tokens: Option<u32>,
    /// Sampling temperature, sent only when set.
    pub temperature: Option<f64>,
}

impl CompletionRequest {
    /// A request with a single user message and nothing else set.
    pub fn prompt(text: impl Into<String>) -> CompletionRequest {
        CompletionRequest { messages: vec![Message::user(text)], ..CompletionRequest::default() }
    }

    /// Every message content joined with newlines, as scripted backends match against it.
    pub fn concatenated_content(&self) -> String {
        let parts: Vec<&str> = self.messages.iter().map(|m| m.content.as_str()).collect();
        parts.join("\n")
    }
}

/// Tokens reported for one call (06 §3: missing numbers count as 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens, cache reads and writes included.
    pub prompt_tokens: u64,
    /// Output tokens, reasoning ("thought") tokens included.
    pub completion_tokens: u64,
}

impl Usage {
    /// `prompt_tokens + completion_tokens`, the figure budgets and `cost.llm_tokens` use.
    pub fn total(&self) -> u64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }

    /// Adds another call's usage (saturating: a hostile backend cannot wrap a budget around).
    pub fn add(&mut self, other: Usage) {
        self.prompt_tokens = self.prompt_tokens.saturating_add(other.prompt_tokens);
        self.completion_tokens = self.completion_tokens.saturating_add(other.completion_tokens);
    }
}

/// A successful model answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The text the model produced, unmodified.
    pub text: String,
    /// Tokens billed for this call.
    pub usage: Usage,
    /// Model that answered: the provider's echo when it sends one, else the configured model or
    /// model class.
    pub model: String,
    /// Name of the backend that answered.
    pub backend: String,
}
