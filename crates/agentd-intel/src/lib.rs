//! Intelligence backends (06): provider wire formats, JSON-RPC transports and the scripted
//! backend, behind one registry, plus the `llm_infer` attempt loop.
//!
//! - [`Backends`] is built once from `[[intelligence.backends]]` and the CLI flags
//!   ([`CliIntel`]); [`Backends::complete`] makes one logical call with retries, timeouts and the
//!   run deadline.
//! - [`infer::infer`] runs an `llm_infer` execution on top of it: budget gate, output contract
//!   ([`OutputContract`], [`CompiledSchema`]), repair rounds.
//! - [`scripted`] answers from canned turns (examples, tests, conformance).
//!
//! Invariant: API keys and bearer tokens are looked up by name per request through
//! [`SecretSource`] and never stored, logged, or placed in an error text.

pub mod accounting;
mod backends;
mod config;
mod error;
mod http;
pub mod infer;
mod jsonrpc;
mod providers;
mod retry;
pub mod schema;
pub mod scripted;
mod secrets;
mod types;
#[cfg(test)]
mod untrusted_tests;

pub use accounting::{BudgetExceeded, LlmCost, check_token_budget};
pub use backends::Backends;
pub use config::{CliIntel, Provider, StartupError};
pub use error::Error;
pub use retry::{CallObserver, NoObserver, RandomSource, RetryEvent, ThreadRandom};
pub use schema::{CompiledSchema, OutputContract, SchemaError};
pub use scripted::{Script, ScriptedModel};
pub use secrets::{EnvSecrets, SecretSource, StaticSecrets};
pub use types::{Completion, CompletionRequest, Message, ModelClass, Role, Usage};
