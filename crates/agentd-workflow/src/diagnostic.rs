//! Diagnostics: load errors (the document is not a well-formed workflow) and validation findings
//! (errors and warnings about a well-formed one). All are collected; none is thrown early.

use std::ops::Range;

use crate::source::{Location, SourceFile};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Stops the load or fails validation.
    Error,
    /// Reported, never fails validation.
    Warning,
}

/// One finding about a workflow document.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// Stable snake_case code (`dangling_edge`, `unknown_key`, …); scripts match on it.
    pub code: &'static str,
    /// One-line human message.
    pub message: String,
    /// Byte span in the source the finding points at, when known.
    pub span: Option<Range<usize>>,
    /// Optional advice shown as `hint:` under the snippet.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// An error finding.
    pub fn error(code: &'static str, message: impl Into<String>, span: Option<Range<usize>>) -> Diagnostic {
        Diagnostic { severity: Severity::Error, code, message: message.into(), span, hint: None }
    }

    /// A warning finding.
    pub fn warning(code: &'static str, message: impl Into<String>, span: Option<Range<usize>>) -> Diagnostic {
        Diagnostic { severity: Severity::Warning, code, message: message.into(), span, hint: None }
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Diagnostic {
        self.hint = Some(hint.into());
        self
    }

    /// Line and column of the start of the span.
    pub fn location(&self, source: &SourceFile) -> Option<Location> {
        self.span.as_ref().map(|s| source.location(s.start))
    }

    /// Renders the finding the way a compiler does: a header, `--> file:line:col`, the source
    /// line and a caret under the span. No colours (the output is read by people and by tests).
    pub fn render(&self, source: &SourceFile) -> String {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut out = format!("{level}[{}]: {}\n", self.code, self.message);
        if let Some(span) = &self.span {
            let span = source.clamp(span);
            let start = source.location(span.start);
            let line_text = source.line_text(start.line);
            let gutter = start.line.to_string().len();
            let pad = " ".repeat(gutter);
            out.push_str(&format!("{pad}--> {}:{}:{}\n", source.name, start.line, start.column));
            out.push_str(&format!("{pad} |\n"));
            out.push_str(&format!("{} | {}\n", start.line, sanitize_line(line_text)));
            // Carets cover the span on its first line only (at least one caret).
            let end = source.location(span.end);
            let caret_len = if end.line == start.line {
                end.column.saturating_sub(start.column).max(1)
            } else {
                line_text.chars().count().saturating_sub(start.column - 1).max(1)
            };
            out.push_str(&format!("{pad} | {}{}\n", " ".repeat(start.column - 1), "^".repeat(caret_len.min(120))));
        } else {
            out.push_str(&format!(" --> {}\n", source.name));
        }
        if let Some(hint) = &self.hint {
            out.push_str(&format!("hint: {hint}\n"));
        }
        out
    }
}

/// Replaces control characters so a rendered line never moves the cursor or rings the bell.
fn sanitize_line(line: &str) -> String {
    let shown: String =
        line.chars().take(400).map(|c| if c.is_control() && c != '\t' { '\u{FFFD}' } else { c }).collect();
    shown.replace('\t', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_points_at_the_span() {
        let src = SourceFile::new("wf.toml", None, "name = \"x\"\nbogus = 1\n".to_string());
        let d = Diagnostic::error("unknown_key", "unknown top-level key `bogus`", Some(11..16)).with_hint("remove it");
        assert_eq!(
            d.render(&src),
            "error[unknown_key]: unknown top-level key `bogus`\n --> wf.toml:2:1\n  |\n2 | bogus = 1\n  | ^^^^^\nhint: remove it\n"
        );
    }
}
