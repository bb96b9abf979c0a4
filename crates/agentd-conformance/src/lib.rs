//! agentd-conformance: runs a corpus of declarative scenario files against the real engine
//! (10-conformance.md) and reports reliability (pass^k, pass rate), capability coverage,
//! cost per success, spend forecasts and drift against a baseline.
//!
//! Architecture invariants:
//! - no stubs: every trial builds the runtime the daemon builds (engine, policy, store, MCP
//!   hub on real transports, intelligence registry); only the model is scripted, below the
//!   retry layer, and MCP servers are scripted processes speaking the real protocol;
//! - every non-deterministic input of a trial (variant choice, retry jitter) is drawn from the
//!   trial's SplitMix64, seeded from the suite seed, the scenario name and the trial index, so
//!   `--seed S --filter NAME --trial I` replays a trial;
//! - trials never mutate the process: no environment changes, each has its own directory,
//!   store and stub.
//!
//! Code map: [`scenario`] (file format) → [`suite`] (discovery, load checks, scheduling) →
//! [`trial`] (one run: [`runtime`], [`stub`], [`mcp`], [`crash`], [`deliver`]) →
//! [`expect`] (checks) → [`report`] (metrics, gates, drift, JSON) → [`text`] (text, JUnit).

pub mod capabilities;
pub mod cli;
pub mod crash;
pub mod deliver;
pub mod expect;
pub mod mcp;
pub mod prepare;
pub mod report;
pub mod runtime;
pub mod scenario;
pub mod stub;
pub mod suite;
pub mod text;
pub mod trial;
