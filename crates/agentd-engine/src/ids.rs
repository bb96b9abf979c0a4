//! Execution ids (02 §6.1): `exec-<S>-<P>-<N>`, lowercase hex without padding of the Unix
//! seconds at allocation, the process id and a per-process counter starting at 1.

use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);
/// The Unix second of this process's first allocation.
static FIRST_SECOND: std::sync::OnceLock<i64> = std::sync::OnceLock::new();

/// Allocates the next execution id of this process.
pub fn next_execution_id() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
    let seconds = jiff::Timestamp::now().as_second().max(0);
    FIRST_SECOND.get_or_init(|| seconds);
    format!("exec-{seconds:x}-{:x}-{n:x}", std::process::id())
}

/// Whether an id allocated now could equal one an earlier process wrote: only an earlier process
/// with the same pid, which ended before this one started, so only during the second of this
/// process's first allocation. Later ids need no lookup in the store.
pub fn may_collide() -> bool {
    let now = jiff::Timestamp::now().as_second().max(0);
    FIRST_SECOND.get().is_none_or(|first| now <= *first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_spec_shape_and_differ() {
        let a = next_execution_id();
        let b = next_execution_id();
        assert_ne!(a, b);
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(parts.len(), 4);
        assert_eq!(parts[0], "exec");
        for part in &parts[1..] {
            assert!(!part.is_empty() && part.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()), "{a}");
        }
    }
}
