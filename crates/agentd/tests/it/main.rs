//! Integration tests of the real `agentd` binary: every test runs the built executable in a
//! scratch directory with a clean environment and checks what a user sees — exit code, stdout,
//! stderr and the files it leaves behind — against the specification (`/work/shared/spec`).

mod support;

mod cli;
mod compose;
mod durable;
mod env;
mod escapes;
mod http_server;
mod input;
mod inspect;
mod llm;
mod logging;
mod mcp;
mod net;
mod nodes;
mod outcomes;
mod policy;
mod providers;
mod record;
mod robustness;
mod serve;
mod signals;
mod start;
mod validate;
