//! Serve mode (07): HTTP routes, auth, idempotency, rate limits, schedules and metrics.
//!
//! The CLI builds a [`ServeConfig`] (validated workflow, engine, store, bind address, secrets),
//! calls [`Server::start`] (every startup failure is an [`Error`]: exit 5), then drives
//! [`Server::run`] with a cancellation token it fires on SIGTERM/SIGINT, and calls
//! [`Server::reload`] on SIGHUP or a `--reload-file` change.
//!
//! Architecture invariants:
//! - the request path never parses workflow text: routes, auth bindings, schemas and buckets are
//!   compiled once per configuration ([`routes::RouteTable`]) and swapped atomically on reload;
//! - the state store is touched only for routes with `idempotency_key`, always off the async
//!   runtime (`spawn_blocking`);
//! - a run started by a request is never cancelled because the client went away.

pub mod auth;
pub mod body;
mod error;
mod handler;
pub mod metrics;
pub mod ratelimit;
pub mod reply;
pub mod routes;
pub mod secrets;
mod server;
mod state;
pub mod tls;
mod triggers;

pub use error::{Error, Result};
pub use secrets::{EnvSecrets, MapSecrets, SecretLookup};
pub use server::{ReloadReport, ServeConfig, ServeExit, Server, serve};
pub use tokio_util::sync::CancellationToken;
