//! Integration tests of serve mode: a real server on 127.0.0.1:0, real HTTP clients.

mod auth;
mod bodies;
mod http;
mod idempotency;
mod oidc;
mod support;
mod tls;
mod triggers;
