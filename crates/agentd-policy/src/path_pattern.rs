//! Path patterns (`05-policy-budgets.md` §3.1): fs allowlists, shell commands and URL paths.
//!
//! After normalisation a pattern has one of these forms (`C` is the normalised candidate):
//!
//! | Form | Matches when |
//! |---|---|
//! | `*` | always |
//! | `P/**`, `P/*` | `C == P` or `C` starts with `P/` (any depth; the 1.3 meaning of `P/*`) |
//! | `P*` (trailing `*` not preceded by `/`) | `C` starts with `P`, possibly continuing across `/` |
//! | literal | `C == P` |
//!
//! Every other `*` (extension) matches zero or more characters other than `/` within one segment.
//!
//! A pattern is stored as a list of segments so that `*` can never cross a separator; a segment
//! that came from resolving a directory prefix on disk is stored as a literal, so a directory
//! that happens to be named `*` does not turn into a wildcard.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::checked_path::{Strictness, lexical_normalize, resolve};
use crate::glob::wildcard_match;
use crate::os_bytes::{os_str_bytes, os_string_from_bytes};

/// One compiled path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathPattern {
    /// The pattern as written in the configuration (what a decision names as its rule).
    source: String,
    /// What it matches.
    shape: Shape,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    /// The whole pattern is `*`.
    Any,
    /// Everything else.
    Segments(Body),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Body {
    /// Whether the pattern starts at the root. Relative fs patterns are anchored at startup.
    rooted: bool,
    /// The segments before the trailing form (for [`Tail::Exact`]: all of them).
    segments: Vec<Segment>,
    /// How the pattern ends.
    tail: Tail,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tail {
    /// Literal (possibly with in-segment `*`): the candidate has exactly these segments.
    Exact,
    /// `P/**` or `P/*`: the candidate has at least these segments.
    Subtree,
    /// `P*`: after the segments, the next candidate segment starts with this partial segment.
    Prefix(Segment),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    /// The segment's bytes.
    bytes: Vec<u8>,
    /// Whether `*` in `bytes` is a wildcard (false for literal and resolved segments).
    glob: bool,
}

impl Segment {
    /// A segment as written in a pattern: any `*` in it is a wildcard.
    fn written(bytes: &[u8]) -> Self {
        Self { bytes: bytes.to_vec(), glob: bytes.contains(&b'*') }
    }

    /// A segment taken from the filesystem: always literal.
    fn literal(bytes: &[u8]) -> Self {
        Self { bytes: bytes.to_vec(), glob: false }
    }

    /// Whether the whole candidate segment matches.
    fn matches(&self, candidate: &[u8]) -> bool {
        if self.glob { wildcard_match(&self.bytes, candidate) } else { self.bytes == candidate }
    }

    /// Whether the candidate segment starts with something this segment matches.
    fn matches_start_of(&self, candidate: &[u8]) -> bool {
        if self.glob {
            let mut with_rest = self.bytes.clone();
            with_rest.push(b'*');
            wildcard_match(&with_rest, candidate)
        } else {
            candidate.starts_with(&self.bytes)
        }
    }
}

/// The load-time grammar of §3.1, shared by fs/shell patterns and URL pattern paths.
pub(crate) fn check_path_syntax(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        return Err("pattern is empty".to_owned());
    }
    if pattern.chars().any(char::is_control) {
        return Err("pattern contains a NUL or control character".to_owned());
    }
    if pattern.contains('\\') && !cfg!(windows) {
        return Err("`\\` is not allowed (use `/` as the separator)".to_owned());
    }
    if pattern.starts_with('~') {
        return Err("`~` is not expanded; write the absolute path".to_owned());
    }
    if let Some(bad) = pattern.chars().find(|c| matches!(c, '?' | '[' | ']' | '{' | '}')) {
        return Err(format!("`{bad}` is not allowed (only `*` and a final `**` are wildcards)"));
    }
    let segments: Vec<&str> = pattern.split('/').collect();
    let last = segments.len().saturating_sub(1);
    for (index, segment) in segments.iter().enumerate() {
        if segment.contains("**") && (index != last || *segment != "**") {
            return Err("`**` is only allowed as the final segment".to_owned());
        }
    }
    Ok(())
}

impl PathPattern {
    /// Parses and lexically normalises an fs or shell pattern (§3.1). The error string is the
    /// reason of a `policy_bad_pattern` finding.
    ///
    /// A relative pattern stays relative (and only matches relative candidates) until
    /// [`PathPattern::anchored`] makes it absolute.
    pub fn parse(pattern: &str) -> Result<Self, String> {
        check_path_syntax(pattern)?;
        if pattern == "*" {
            return Ok(Self { source: pattern.to_owned(), shape: Shape::Any });
        }
        let rooted = pattern.starts_with('/') || (cfg!(windows) && Path::new(pattern).has_root());
        let separators: &[char] = if cfg!(windows) { &['/', '\\'] } else { &['/'] };
        let mut segments: Vec<&str> = Vec::new();
        for segment in pattern.split(separators) {
            match segment {
                "" | "." => {}
                ".." => {
                    if segments.last().is_some_and(|last| *last != "..") {
                        segments.pop();
                    } else if !rooted {
                        // Kept so that anchoring can apply it to the working directory.
                        segments.push("..");
                    }
                }
                other => segments.push(other),
            }
        }
        let segments = segments.into_iter().map(|segment| Segment::written(segment.as_bytes())).collect();
        Ok(Self { source: pattern.to_owned(), shape: Shape::Segments(Body::with_tail(rooted, segments)) })
    }

    /// Parses the path part of a URL pattern (§3.5): must start with `/`; percent-encoding and
    /// dot-segment removal follow the WHATWG rules used for candidates, and empty segments are
    /// significant (`/v1/` is not `/v1`).
    pub(crate) fn parse_url_path(path: &str) -> Result<Self, String> {
        check_path_syntax(path)?;
        if !path.starts_with('/') {
            return Err("a URL path must start with `/`".to_owned());
        }
        // Normalise exactly as candidate paths are normalised, so that both sides agree on
        // percent-encoding and dot segments.
        let parsed = url::Url::parse(&format!("http://pattern.invalid{path}"))
            .map_err(|error| format!("unparseable URL path: {error}"))?;
        let normalized = crate::url_pattern::uppercase_percent_hex(parsed.path());
        let segments = split_rooted(normalized.as_bytes()).into_iter().map(Segment::written).collect();
        Ok(Self { source: path.to_owned(), shape: Shape::Segments(Body::with_tail(true, segments)) })
    }

    /// The pattern exactly `/` (the path of a URL pattern that has none).
    pub(crate) fn url_root() -> Self {
        Self {
            source: "/".to_owned(),
            shape: Shape::Segments(Body { rooted: true, segments: Vec::new(), tail: Tail::Exact }),
        }
    }

    /// Startup normalisation (§3.1, §3.2 step 5): a relative pattern is made absolute against
    /// `cwd`, then the pattern's directory prefix — its leading complete segments without `*`,
    /// excluding the final segment — is resolved on disk once (symlinks included). The final
    /// segment is never resolved. This performs filesystem I/O; components that cannot be
    /// inspected are kept as written, which can only make the pattern match less.
    pub fn anchored(&self, cwd: &Path) -> Self {
        let Shape::Segments(body) = &self.shape else {
            return self.clone();
        };
        let mut segments: Vec<Segment> = Vec::new();
        if !body.rooted {
            let base = lexical_normalize(cwd, Path::new("/")).unwrap_or_else(|| PathBuf::from("/"));
            segments.extend(split_rooted(&os_str_bytes(base.as_os_str())).into_iter().map(Segment::literal));
        }
        for segment in &body.segments {
            if !segment.glob && segment.bytes == b".." {
                segments.pop();
            } else {
                segments.push(segment.clone());
            }
        }

        let fixed = match body.tail {
            Tail::Exact => segments.len().saturating_sub(1),
            Tail::Subtree | Tail::Prefix(_) => segments.len(),
        };
        let prefix_len = segments.iter().take(fixed).take_while(|segment| !segment.glob).count();
        let mut prefix = PathBuf::from("/");
        for segment in segments.iter().take(prefix_len) {
            prefix.push(os_string_from_bytes(&segment.bytes));
        }
        let resolved = resolve(&prefix, Strictness::KeepLiteral).unwrap_or(prefix);
        let mut anchored: Vec<Segment> =
            split_rooted(&os_str_bytes(resolved.as_os_str())).into_iter().map(Segment::literal).collect();
        anchored.extend(segments.into_iter().skip(prefix_len));

        Self {
            source: self.source.clone(),
            shape: Shape::Segments(Body { rooted: true, segments: anchored, tail: body.tail.clone() }),
        }
    }

    /// Whether the (checked) candidate path matches. Comparison is byte-exact.
    pub fn matches(&self, candidate: &Path) -> bool {
        self.matches_bytes(&os_str_bytes(candidate.as_os_str()))
    }

    /// Whether a candidate given as `/`-separated bytes (a path or a URL path) matches.
    pub(crate) fn matches_bytes(&self, candidate: &[u8]) -> bool {
        let body = match &self.shape {
            Shape::Any => return true,
            Shape::Segments(body) => body,
        };
        let rooted = candidate.first() == Some(&b'/');
        if rooted != body.rooted {
            return false;
        }
        let candidate = split_rooted(candidate);
        let leading_match = |count: usize| {
            body.segments.iter().zip(&candidate).take(count).all(|(segment, part)| segment.matches(part))
        };
        let wanted = body.segments.len();
        match &body.tail {
            Tail::Exact => candidate.len() == wanted && leading_match(wanted),
            Tail::Subtree => candidate.len() >= wanted && leading_match(wanted),
            Tail::Prefix(partial) => {
                candidate.len() > wanted
                    && leading_match(wanted)
                    && candidate.get(wanted).is_some_and(|part| partial.matches_start_of(part))
            }
        }
    }

    /// The pattern as written in the configuration.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the pattern is `*` (matches everything).
    pub fn is_any(&self) -> bool {
        matches!(self.shape, Shape::Any)
    }

    /// Whether the pattern is absolute (`*` counts as absolute: it needs no anchoring).
    pub fn is_absolute(&self) -> bool {
        match &self.shape {
            Shape::Any => true,
            Shape::Segments(body) => body.rooted,
        }
    }
}

impl Body {
    /// Splits the trailing form off normalised segments.
    fn with_tail(rooted: bool, mut segments: Vec<Segment>) -> Self {
        let tail = match segments.last() {
            Some(last) if last.bytes == b"**" || last.bytes == b"*" => {
                segments.pop();
                Tail::Subtree
            }
            Some(last) if last.bytes.ends_with(b"*") => {
                let mut partial = last.bytes.clone();
                partial.pop();
                segments.pop();
                Tail::Prefix(Segment::written(&partial))
            }
            _ => Tail::Exact,
        };
        Self { rooted, segments, tail }
    }
}

impl fmt::Display for PathPattern {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.source)
    }
}

/// Splits a `/`-separated path into its segments, ignoring one leading `/`. `/` and the empty
/// string have no segments; otherwise empty segments are kept (`/a/` is `["a", ""]`).
fn split_rooted(path: &[u8]) -> Vec<&[u8]> {
    let rest = path.strip_prefix(b"/").unwrap_or(path);
    if rest.is_empty() { Vec::new() } else { rest.split(|&byte| byte == b'/').collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, candidate: &str) -> bool {
        PathPattern::parse(pattern).unwrap().matches(Path::new(candidate))
    }

    #[test]
    fn forms_of_the_spec_table() {
        assert!(matches("*", "/anything/at/all"));
        assert!(matches("/srv/out/**", "/srv/out"));
        assert!(matches("/srv/out/**", "/srv/out/a/b/c"));
        assert!(!matches("/srv/out/**", "/srv/outside"));
        assert!(matches("/srv/out/*", "/srv/out/a/b"));
        assert!(matches("/var/log/app*", "/var/log/app/x"));
        assert!(matches("/var/log/app*", "/var/log/app.log"));
        assert!(matches("/var/log/app*", "/var/log/apple"));
        assert!(!matches("/var/log/app*", "/var/log/ap"));
        assert!(matches("/usr/local/bin/report", "/usr/local/bin/report"));
        assert!(!matches("/usr/local/bin/report", "/usr/local/bin/report2"));
        assert!(matches("/data/*/reports/**", "/data/eu/reports/q1/a.csv"));
        assert!(!matches("/data/*/reports/**", "/data/eu/x/reports/a"));
        assert!(matches("/logs/app-*.log", "/logs/app-1.log"));
        assert!(!matches("/logs/app-*.log", "/logs/app-1/x.log"));
        assert!(matches("/**", "/"));
        assert!(matches("/", "/"));
        assert!(!matches("/", "/a"));
    }

    #[test]
    fn patterns_are_normalised_lexically() {
        assert!(matches("/srv/./x/../out/", "/srv/out"));
        assert!(matches("//srv//out//**", "/srv/out/f"));
    }

    #[test]
    fn relative_patterns_are_anchored_on_cwd() {
        let pattern = PathPattern::parse("../out/**").unwrap();
        assert!(!pattern.is_absolute());
        let anchored = pattern.anchored(Path::new("/nonexistent-agentd-test/w"));
        assert!(anchored.matches(Path::new("/nonexistent-agentd-test/out/x")));
        assert!(!anchored.matches(Path::new("/nonexistent-agentd-test/w/out/x")));
    }

    #[test]
    fn url_paths_keep_empty_segments() {
        let pattern = PathPattern::parse_url_path("/v1/").unwrap();
        assert!(pattern.matches_bytes(b"/v1/"));
        assert!(!pattern.matches_bytes(b"/v1"));
        assert!(PathPattern::url_root().matches_bytes(b"/"));
        assert!(!PathPattern::url_root().matches_bytes(b"/x"));
    }
}
