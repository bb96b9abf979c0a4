//! Wildcard matching shared by the path segment and host label matchers.
//!
//! Callers only ever hand this a single path segment or a single host label, so `*` never has to
//! know about separators: the separator has already been split away.

/// Whether `text` matches `pattern`, where each `*` in `pattern` stands for zero or more bytes
/// and every other byte stands for itself.
///
/// Greedy matching with a single backtrack point is exact for `*`-only patterns and runs in
/// `O(len(pattern) * len(text))` at worst, so hostile inputs cannot make it blow up.
pub(crate) fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    let mut pattern_index = 0;
    let mut text_index = 0;
    // (position of the last `*` seen, text position it is currently assumed to end at)
    let mut backtrack: Option<(usize, usize)> = None;
    while let Some(&byte) = text.get(text_index) {
        match pattern.get(pattern_index) {
            Some(b'*') => {
                backtrack = Some((pattern_index, text_index));
                pattern_index += 1;
            }
            Some(&expected) if expected == byte => {
                pattern_index += 1;
                text_index += 1;
            }
            _ => match backtrack {
                Some((star_index, star_text)) => {
                    // Let the last `*` swallow one more byte and retry from there.
                    pattern_index = star_index + 1;
                    text_index = star_text + 1;
                    backtrack = Some((star_index, star_text + 1));
                }
                None => return false,
            },
        }
    }
    pattern.get(pattern_index..).is_some_and(|rest| rest.iter().all(|&byte| byte == b'*'))
}

#[cfg(test)]
mod tests {
    use super::wildcard_match;

    #[test]
    fn literal_and_star_forms() {
        assert!(wildcard_match(b"abc", b"abc"));
        assert!(!wildcard_match(b"abc", b"abcd"));
        assert!(wildcard_match(b"*", b""));
        assert!(wildcard_match(b"a*", b"a"));
        assert!(wildcard_match(b"app-*.log", b"app-2024.log"));
        assert!(!wildcard_match(b"app-*.log", b"app-2024.txt"));
        assert!(wildcard_match(b"*a*b*", b"xxaybzz"));
        assert!(!wildcard_match(b"*a*b", b"xxaybzz"));
        assert!(wildcard_match(b"a*a*a*a*b", b"aaaaaaaaaaaab"));
        assert!(!wildcard_match(b"a*a*a*a*b", b"aaaaaaaaaaaaa"));
    }
}
