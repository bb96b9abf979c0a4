//! Transport retries and timeouts (06 §6): which failures are retried, how long to wait, and the
//! loop that never waits past the run deadline.

use std::future::Future;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::Error;

/// Longest `Retry-After` honoured.
const RETRY_AFTER_CAP: Duration = Duration::from_secs(60);
/// Longest computed backoff.
const BACKOFF_CAP: Duration = Duration::from_secs(8);
/// First computed backoff.
const BACKOFF_BASE: Duration = Duration::from_millis(500);

/// Source of the jitter applied to computed backoffs. The conformance harness plugs in its
/// seeded PRNG so a trial replays exactly (10 §3.3).
pub trait RandomSource: Send + Sync {
    /// A uniformly distributed value.
    fn next_u64(&self) -> u64;
}

/// Thread-local entropy (the production default).
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadRandom;

impl RandomSource for ThreadRandom {
    fn next_u64(&self) -> u64 {
        rand::random()
    }
}

/// One retry about to happen, for audit `intel.retry` and `agentd_llm_retries_total`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryEvent {
    /// Backend name.
    pub backend: String,
    /// The 1-based attempt that failed.
    pub attempt: u32,
    /// HTTP status of the failed attempt, when it got one.
    pub status: Option<u16>,
    /// Wait before the next attempt.
    pub delay: Duration,
    /// Failure text of the attempt (secret-free).
    pub reason: String,
}

/// Receives call events; every method has a no-op default.
pub trait CallObserver: Send + Sync {
    /// Called before each transport retry sleeps.
    fn on_retry(&self, _event: &RetryEvent) {}
}

/// An observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl CallObserver for NoObserver {}

/// Whether and when a failed attempt may be repeated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Never retried (JSON-RPC errors, other 4xx, bad 2xx bodies, injected faults).
    Never,
    /// Retryable; the server may have said how long to wait.
    After(Option<Duration>),
}

/// One failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// 06 §3 error text, secret-free.
    pub detail: String,
    /// HTTP status, if an answer arrived.
    pub status: Option<u16>,
    /// Retry classification.
    pub retry: Retry,
}

impl Failure {
    /// A failure that is never retried.
    pub(crate) fn fatal(detail: impl Into<String>) -> Failure {
        Failure { detail: detail.into(), status: None, retry: Retry::Never }
    }

    /// A transport failure that is retried with the computed backoff.
    pub(crate) fn transient(detail: impl Into<String>) -> Failure {
        Failure { detail: detail.into(), status: None, retry: Retry::After(None) }
    }

    fn into_error(self, backend: &str) -> Error {
        Error::Failed { backend: backend.to_string(), detail: self.detail, status: self.status }
    }
}

/// HTTP statuses retried by 06 §6.
pub(crate) fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504 | 529)
}

/// The server's requested delay: `retry-after-ms`, else `Retry-After` as seconds or an HTTP
/// date, capped at 60 s. Dates in the past mean "now".
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap, now: SystemTime) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    let from_ms = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok()).filter(|ms| ms.is_finite() && *ms >= 0.0);
    let delay = match from_ms {
        Some(ms) => Duration::from_secs_f64((ms / 1000.0).min(RETRY_AFTER_CAP.as_secs_f64())),
        None => parse_retry_after(text("retry-after")?, now)?,
    };
    Some(delay.min(RETRY_AFTER_CAP))
}

/// `Retry-After` value: delta-seconds or an HTTP date.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs.min(RETRY_AFTER_CAP.as_secs())));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Backoff before retry `n` (1-based): min(8 s, 0.5 s × 2^(n−1)) × uniform [0.8, 1.2].
pub(crate) fn backoff(n: u32, random: &dyn RandomSource) -> Duration {
    let exponent = n.saturating_sub(1).min(16);
    let base = BACKOFF_BASE.saturating_mul(1u32 << exponent).min(BACKOFF_CAP);
    // 53 random bits give a uniform float in [0, 1).
    let unit = (random.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    base.mul_f64(0.8 + 0.4 * unit)
}

/// What the retry loop needs to know about the backend and the call.
pub(crate) struct RetryPlan<'a> {
    pub backend: &'a str,
    /// Prefix of the timeout text (`<provider>: request timed out after <s> s`).
    pub label: &'a str,
    pub timeout: Option<Duration>,
    pub max_retries: u32,
    pub deadline: Instant,
    pub cancel: &'a CancellationToken,
    pub observer: &'a dyn CallObserver,
    pub random: &'a dyn RandomSource,
}

impl RetryPlan<'_> {
    /// Runs `attempt` until it succeeds, fails for good, runs out of attempts, or the deadline
    /// makes another try pointless.
    pub(crate) async fn run<T, F, Fut>(&self, mut attempt: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let attempts = self.max_retries.saturating_add(1);
        let mut n = 1;
        loop {
            let failure = match self.one(&mut attempt).await? {
                Ok(value) => return Ok(value),
                Err(failure) => failure,
            };
            let Retry::After(hint) = failure.retry else { return Err(failure.into_error(self.backend)) };
            if n >= attempts {
                return Err(failure.into_error(self.backend));
            }
            let delay = hint.map_or_else(|| backoff(n, self.random), |d| d.min(RETRY_AFTER_CAP));
            if Instant::now() + delay >= self.deadline {
                return Err(failure.into_error(self.backend));
            }
            self.observer.on_retry(&RetryEvent {
                backend: self.backend.to_string(),
                attempt: n,
                status: failure.status,
                delay,
                reason: failure.detail.clone(),
            });
            tracing::debug!(backend = self.backend, attempt = n, delay_ms = delay.as_millis() as u64, "intel retry");
            tokio::select! {
                biased;
                () = self.cancel.cancelled() => return Err(Error::Cancelled { backend: self.backend.to_string() }),
                () = tokio::time::sleep(delay) => {}
            }
            n += 1;
        }
    }

    /// One attempt bounded by min(request timeout, remaining run time). The outer `Result` is a
    /// final outcome (deadline, cancellation); the inner one the attempt's own result.
    async fn one<T, F, Fut>(&self, attempt: &mut F) -> Result<Result<T, Failure>, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        let now = Instant::now();
        if now >= self.deadline {
            return Err(Error::DeadlineExceeded { backend: self.backend.to_string() });
        }
        let remaining = self.deadline - now;
        let (limit, is_deadline) = match self.timeout {
            Some(timeout) if timeout < remaining => (timeout, false),
            _ => (remaining, true),
        };
        let outcome = tokio::select! {
            biased;
            () = self.cancel.cancelled() => return Err(Error::Cancelled { backend: self.backend.to_string() }),
            outcome = tokio::time::timeout(limit, attempt()) => outcome,
        };
        match outcome {
            Ok(result) => Ok(result),
            Err(_) if is_deadline => Err(Error::DeadlineExceeded { backend: self.backend.to_string() }),
            Err(_) => {
                Ok(Err(Failure::transient(format!("{}: request timed out after {} s", self.label, limit.as_secs()))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    struct Fixed(u64);
    impl RandomSource for Fixed {
        fn next_u64(&self) -> u64 {
            self.0
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let mid = Fixed(1 << 63);
        assert_eq!(backoff(1, &mid), Duration::from_millis(500));
        assert_eq!(backoff(2, &mid), Duration::from_secs(1));
        assert_eq!(backoff(5, &mid), Duration::from_secs(8));
        assert_eq!(backoff(40, &mid), Duration::from_secs(8));
        assert_eq!(backoff(1, &Fixed(0)), Duration::from_millis(400));
        assert!(backoff(1, &Fixed(u64::MAX)) <= Duration::from_millis(600));
    }

    #[test]
    fn retry_after_seconds_dates_and_ms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("3600", now), Some(Duration::from_secs(60)));
        // 784111777 = Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:42 GMT", now), Some(Duration::from_secs(5)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(2)));
        headers.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&headers, now), Some(Duration::from_millis(250)));
        headers.insert("retry-after-ms", HeaderValue::from_static("999999999"));
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(60)));
    }
}
