//! Writing to stdout and stderr without ever panicking (a closed pipe is not a crash).

use std::io::Write;

use agentd_workflow::{Diagnostic, SourceFile};

/// Writes text to stdout; a broken pipe is ignored.
pub fn stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
}

/// Writes text to stderr; failures are ignored.
pub fn stderr(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = err.write_all(text.as_bytes());
}

/// One `agentd: ` diagnostic line on stderr.
pub fn note(message: impl std::fmt::Display) {
    stderr(&format!("agentd: {message}\n"));
}

/// Flushes stdout before exit.
pub fn flush() {
    let _ = std::io::stdout().flush();
}

/// Pretty JSON (2-space indent) with a trailing newline on stdout.
pub fn json(value: &impl serde::Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => stdout(&format!("{text}\n")),
        Err(e) => note(format_args!("json error: {e}")),
    }
}

/// Renders diagnostics to stderr, the first line of each prefixed with `agentd: `.
pub fn diagnostics(source: &SourceFile, diagnostics: &[Diagnostic]) {
    let mut text = String::new();
    for diagnostic in diagnostics {
        text.push_str("agentd: ");
        text.push_str(&diagnostic.render(source));
    }
    stderr(&text);
}

/// A usage error: exactly two lines, exit 2 (01 §1).
pub fn usage(message: impl std::fmt::Display) -> i32 {
    stderr(&format!("agentd: {message}\nhint: run `agentd --help` for usage\n"));
    2
}
