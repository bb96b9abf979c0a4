//! Load-time pattern checks (validation code `policy_bad_pattern`). No I/O.
//!
//! Every list is checked in declaration order and every bad entry is reported, so that one
//! validation run shows the author all of them.

use std::fmt;

use crate::config::PolicyConfig;
use crate::name_pattern::NamePattern;
use crate::path_pattern::PathPattern;
use crate::url_pattern::UrlPattern;

/// The stable validation code of every [`PatternError`].
pub const BAD_PATTERN_CODE: &str = "policy_bad_pattern";

/// One allowlist entry outside the matcher grammar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    /// The list, e.g. `[policy.fs].write` or `mcp_servers[docs].allow_tools`.
    pub list: String,
    /// The entry's position in the list (0-based).
    pub index: usize,
    /// The entry as written.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for PatternError {
    /// One line: ``[policy.fs].write[2] `/a/**/b`: `**` is only allowed as the final segment``.
    /// Control characters in the pattern are shown escaped so the message stays on one line.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}[{}] `{}`: {}", self.list, self.index, escape_controls(&self.pattern), self.reason)
    }
}

impl std::error::Error for PatternError {}

/// Checks every pattern list of a `[policy]` table: `fs.*` and `shell.commands` against the path
/// grammar (§3.1), `env.read_keys`, `mcp.tools` and `mcp.resources` against the name grammar
/// (§3.4), `http.urls` against the URL grammar (§3.5) and `http.methods` as HTTP method tokens.
/// `mcp.servers` is informational and not checked.
pub fn check_policy_syntax(config: &PolicyConfig) -> Vec<PatternError> {
    let mut errors = Vec::new();
    if let Some(fs) = &config.fs {
        collect(&mut errors, "[policy.fs].read", &fs.read, PathPattern::parse);
        collect(&mut errors, "[policy.fs].write", &fs.write, PathPattern::parse);
        collect(&mut errors, "[policy.fs].delete", &fs.delete, PathPattern::parse);
        collect(&mut errors, "[policy.fs].list", &fs.list, PathPattern::parse);
    }
    if let Some(env) = &config.env {
        collect(&mut errors, "[policy.env].read_keys", &env.read_keys, NamePattern::parse);
    }
    if let Some(http) = &config.http {
        collect(&mut errors, "[policy.http].urls", &http.urls, UrlPattern::parse);
        collect(&mut errors, "[policy.http].methods", &http.methods, parse_method);
    }
    if let Some(shell) = &config.shell {
        collect(&mut errors, "[policy.shell].commands", &shell.commands, PathPattern::parse);
    }
    if let Some(mcp) = &config.mcp {
        collect(&mut errors, "[policy.mcp].tools", &mcp.tools, NamePattern::parse);
        collect(&mut errors, "[policy.mcp].resources", &mcp.resources, NamePattern::parse);
    }
    errors
}

/// Checks a list of name patterns (§3.4) named `list` in the findings, e.g. the `allow_tools` of
/// `[[mcp_servers]]` entry `docs` as `mcp_servers[docs].allow_tools`.
pub fn check_name_patterns(list: &str, patterns: &[String]) -> Vec<PatternError> {
    let mut errors = Vec::new();
    collect(&mut errors, list, patterns, NamePattern::parse);
    errors
}

/// Parses every entry of `patterns`, keeping the successes and recording the failures.
pub(crate) fn collect<T>(
    errors: &mut Vec<PatternError>,
    list: &str,
    patterns: &[String],
    parse: impl Fn(&str) -> Result<T, String>,
) -> Vec<T> {
    let mut parsed = Vec::with_capacity(patterns.len());
    for (index, pattern) in patterns.iter().enumerate() {
        match parse(pattern) {
            Ok(value) => parsed.push(value),
            Err(reason) => errors.push(PatternError { list: list.to_owned(), index, pattern: pattern.clone(), reason }),
        }
    }
    parsed
}

/// An HTTP method token (RFC 9110 `1*tchar`), upper-cased.
pub(crate) fn parse_method(method: &str) -> Result<String, String> {
    if method.is_empty() {
        return Err("method is empty".to_owned());
    }
    let is_tchar = |byte: u8| byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte);
    if !method.bytes().all(is_tchar) {
        return Err("not an HTTP method token".to_owned());
    }
    Ok(method.to_ascii_uppercase())
}

/// `text` with control characters replaced by their Rust escapes (keeps messages on one line).
pub(crate) fn escape_controls(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            escaped.extend(c.escape_debug());
        } else {
            escaped.push(c);
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_line() {
        let error = PatternError {
            list: "[policy.fs].write".to_owned(),
            index: 2,
            pattern: "/a/**/b".to_owned(),
            reason: "`**` is only allowed as the final segment".to_owned(),
        };
        assert_eq!(error.to_string(), "[policy.fs].write[2] `/a/**/b`: `**` is only allowed as the final segment");
        let error = PatternError { pattern: "a\nb".to_owned(), ..error };
        assert!(!error.to_string().contains('\n'));
    }

    #[test]
    fn methods() {
        assert_eq!(parse_method("get"), Ok("GET".to_owned()));
        assert_eq!(parse_method("M-SEARCH"), Ok("M-SEARCH".to_owned()));
        assert!(parse_method("").is_err());
        assert!(parse_method("GE T").is_err());
        assert!(parse_method("GET\r\n").is_err());
        assert!(parse_method("(GET)").is_err());
    }
}
