//! Integration tests: the real `agentd-conformance` binary over the project corpus and over
//! scenario files written by the tests.

mod cli;
mod corpus;
mod support;
