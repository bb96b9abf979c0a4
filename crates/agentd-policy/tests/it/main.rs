//! Integration tests of `agentd-policy`: one binary, one module per area of
//! `05-policy-budgets.md`.

mod config;
#[cfg(unix)]
mod escapes;
mod grammar;
mod properties;
mod semantics;
mod urls;
