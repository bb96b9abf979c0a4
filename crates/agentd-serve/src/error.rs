//! Errors of serve mode. Every variant is a startup (or reload) failure the CLI reports as
//! `agentd: <error>` and exit 5 (07 §1).

use std::path::PathBuf;

/// Why serve mode could not start, or why a reload stage was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listener could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file named by the configuration could not be read.
    #[error("{what} {}: {source}", path.display())]
    Read {
        /// What the file is (`[server.tls] cert_file`, …).
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// TLS material is unusable.
    #[error("[server.tls]: {0}")]
    Tls(String),
    /// An auth binding is unusable (bad algorithms, JWKS, missing client auth for mTLS, …).
    #[error("{0}")]
    Auth(String),
    /// A route is unusable (expose_headers, input_schema, idempotency without a store, …).
    #[error("{0}")]
    Route(String),
    /// A trigger could not start (fs_watch path missing, unknown event kind, …).
    #[error("{0}")]
    Trigger(String),
    /// A reload was refused as a whole (stage 0 rules: changed name, TLS on/off switch).
    #[error("reload refused: {0}")]
    Reload(String),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
