//! Errors of a model call.
//!
//! Every text here is a single line and free of secret values: API keys and bearer tokens are
//! scrubbed from anything a backend echoes back before it becomes part of an error.

/// Why a model call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The node named a backend this runtime does not have (06 §1).
    #[error("backend `{name}` is not configured on this runtime; known backends: {known}")]
    UnknownBackend {
        /// The requested name.
        name: String,
        /// Sorted known names, `", "`-joined, or `<none>`.
        known: String,
    },
    /// The backend failed (after transport retries, where retryable). `detail` is the 06 §3
    /// error text, e.g. `anthropic returned 429: {...}`.
    #[error("backend `{backend}`: {detail}")]
    Failed {
        /// Backend name.
        backend: String,
        /// Spec text of the failure (without the backend name).
        detail: String,
        /// HTTP status, when the failure was an HTTP answer.
        status: Option<u16>,
    },
    /// The run deadline arrived before an answer: the run ends `timed_out`, not errored.
    #[error("backend `{backend}`: no answer before the run deadline")]
    DeadlineExceeded {
        /// Backend name.
        backend: String,
    },
    /// The caller's cancellation token fired.
    #[error("backend `{backend}`: call cancelled")]
    Cancelled {
        /// Backend name.
        backend: String,
    },
}

impl Error {
    /// The failure text without the ``backend `<name>`: `` prefix (the bare 06 §3 text).
    pub fn detail(&self) -> String {
        match self {
            Error::Failed { detail, .. } => detail.clone(),
            other => other.to_string(),
        }
    }

    /// Whether the run deadline cut the call short (the run should end `timed_out`).
    pub fn is_deadline(&self) -> bool {
        matches!(self, Error::DeadlineExceeded { .. })
    }

    /// The HTTP status of the last answer, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Failed { status, .. } => *status,
            _ => None,
        }
    }
}
