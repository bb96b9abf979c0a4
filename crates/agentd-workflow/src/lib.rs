//! The agentd workflow model.
pub mod schedule;
