//! Integration tests of `agentd-workflow`, one binary: the data-driven corpus with one snapshot
//! per file, validator behaviour that spans several checks, and robustness against bad input.

mod corpus;
mod support;
