//! Name patterns (`05-policy-budgets.md` §3.4): env keys, MCP tool names and resource URIs.
//!
//! | Form | Matches |
//! |---|---|
//! | `*` | anything |
//! | `P*` (one or more trailing `*`) | any string starting with `P` |
//! | anything else | exact, case-sensitive equality |

use std::fmt;

/// One compiled name pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePattern {
    /// The pattern as written.
    source: String,
    /// What it matches.
    kind: NameKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum NameKind {
    /// `*` (or any run of `*` alone).
    Any,
    /// Trailing `*`: the string must start with the prefix.
    Prefix(String),
    /// No `*`: exact equality.
    Exact(String),
}

impl NamePattern {
    /// Parses one pattern. Errors (the reason of a `policy_bad_pattern` finding): an empty
    /// string, a `*` anywhere but at the end, or a control character.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        if pattern.is_empty() {
            return Err("pattern is empty".to_owned());
        }
        if pattern.chars().any(char::is_control) {
            return Err("pattern contains a control character".to_owned());
        }
        let stem = pattern.trim_end_matches('*');
        if stem.contains('*') {
            return Err("`*` is only allowed at the end of a name pattern".to_owned());
        }
        let kind = if stem.is_empty() {
            NameKind::Any
        } else if stem.len() < pattern.len() {
            NameKind::Prefix(stem.to_owned())
        } else {
            NameKind::Exact(stem.to_owned())
        };
        Ok(Self { source: pattern.to_owned(), kind })
    }

    /// Whether `name` matches (case-sensitive).
    pub fn matches(&self, name: &str) -> bool {
        match &self.kind {
            NameKind::Any => true,
            NameKind::Prefix(prefix) => name.starts_with(prefix.as_str()),
            NameKind::Exact(exact) => name == exact,
        }
    }

    /// The pattern as written in the configuration.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the pattern contains no wildcard (an exact name).
    pub fn is_literal(&self) -> bool {
        matches!(self.kind, NameKind::Exact(_))
    }
}

impl fmt::Display for NamePattern {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::NamePattern;

    #[test]
    fn forms() {
        let any = NamePattern::parse("*").unwrap();
        assert!(any.matches("") && any.matches("anything"));
        let prefix = NamePattern::parse("docs://**").unwrap();
        assert!(prefix.matches("docs://a/b"));
        assert!(prefix.matches("docs://"));
        assert!(!prefix.matches("doc://a"));
        let exact = NamePattern::parse("REGION").unwrap();
        assert!(exact.matches("REGION"));
        assert!(!exact.matches("region"));
        assert!(!exact.matches("REGION2"));
        assert!(exact.is_literal());
    }
}
