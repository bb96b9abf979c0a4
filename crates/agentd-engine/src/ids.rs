//! Execution ids (02 §6.1): `exec-<S>-<P>-<N>`, lowercase hex without padding of the Unix
//! seconds at allocation, the process id and a per-process counter starting at 1.

use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Allocates the next execution id of this process.
pub fn next_execution_id() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
    let seconds = jiff::Timestamp::now().as_second().max(0);
    format!("exec-{seconds:x}-{:x}-{n:x}", std::process::id())
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
