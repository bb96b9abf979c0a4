//! Integration tests of `agentd-workflow`, one binary: the data-driven corpus with one snapshot
//! per file, the corpus's coverage of the specification, validator behaviour that spans several
//! checks, and robustness against malformed input.

mod behaviour;
mod corpus;
mod coverage;
mod robustness;
mod support;
