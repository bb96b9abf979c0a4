//! The text of a workflow file and the mapping from byte offsets to line and column.
//!
//! Every diagnostic carries a byte span into the source it came from; rendering turns that span
//! into `file:line:column` and a caret under the offending text.

use std::ops::Range;
use std::path::{Path, PathBuf};

/// One workflow document as read from disk (or stdin, or an embedded build).
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Name shown in diagnostics (the path as the user gave it).
    pub name: String,
    /// Absolute path of the file, when it came from the filesystem.
    pub path: Option<PathBuf>,
    /// The document text (valid UTF-8; the loader rejects anything else before building this).
    pub text: String,
    /// Byte offsets of line starts, built on first use: only diagnostics need them.
    line_starts: std::sync::OnceLock<Vec<usize>>,
}

/// A 1-based line and column (column counted in Unicode scalar values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Location {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column number.
    pub column: usize,
}

impl SourceFile {
    /// Builds a source from text already in memory.
    pub fn new(name: impl Into<String>, path: Option<PathBuf>, text: String) -> SourceFile {
        SourceFile { name: name.into(), path, text, line_starts: std::sync::OnceLock::new() }
    }

    fn line_starts(&self) -> &[usize] {
        self.line_starts.get_or_init(|| {
            let mut starts = vec![0];
            starts.extend(self.text.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| i + 1));
            starts
        })
    }

    /// The directory of the file, used to resolve relative schema and child workflow paths.
    pub fn directory(&self) -> Option<&Path> {
        self.path.as_deref().and_then(Path::parent)
    }

    /// Line and column of a byte offset (clamped to the text).
    pub fn location(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let line_starts = self.line_starts();
        let line_index = match line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        let line_start = line_starts[line_index];
        let column = self.text.get(line_start..offset).map_or(offset - line_start, |s| s.chars().count()) + 1;
        Location { line: line_index + 1, column }
    }

    /// The full text of the 1-based line `line` without its line terminator.
    pub fn line_text(&self, line: usize) -> &str {
        let line_starts = self.line_starts();
        let start = line_starts.get(line.wrapping_sub(1)).copied().unwrap_or(self.text.len());
        let end = line_starts.get(line).map_or(self.text.len(), |e| e.saturating_sub(1));
        self.text.get(start..end.max(start)).unwrap_or("").trim_end_matches('\r')
    }

    /// Clamps a span to the text and to character boundaries.
    pub fn clamp(&self, span: &Range<usize>) -> Range<usize> {
        let mut start = span.start.min(self.text.len());
        let mut end = span.end.min(self.text.len()).max(start);
        while !self.text.is_char_boundary(start) {
            start -= 1;
        }
        while !self.text.is_char_boundary(end) {
            end += 1;
        }
        start..end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_one_based_and_count_characters() {
        let src = SourceFile::new("t.toml", None, "a = 1\nbé = \"x\"\n".to_string());
        assert_eq!(src.location(0), Location { line: 1, column: 1 });
        assert_eq!(src.location(6), Location { line: 2, column: 1 });
        // `=` after `bé ` is byte 10 (é is two bytes) but column 4.
        assert_eq!(src.location(10), Location { line: 2, column: 4 });
        assert_eq!(src.line_text(2), "bé = \"x\"");
        assert_eq!(src.location(10_000).line, 3);
    }
}
