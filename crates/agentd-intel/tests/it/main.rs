//! Integration tests of agentd-intel: real HTTP on 127.0.0.1, real Unix sockets, a real Python
//! JSON-RPC server.

mod infer;
mod jsonrpc;
mod providers;
mod scripted;
mod startup;
mod support;
