//! Shared helpers: loading corpus files the way the CLI does (schema files read from disk, the
//! corpus directory as working directory) and turning diagnostics into snapshot text.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use agentd_workflow::{Diagnostic, FileSource, LoadFailure, NoFiles, SourceFile, ValidateOptions, Workflow, load};

/// `tests/corpus` of this crate.
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("corpus")
}

/// The `*.toml` files directly inside `tests/corpus/<kind>`, sorted by name.
pub fn corpus_files(kind: &str) -> Vec<PathBuf> {
    let dir = corpus_dir().join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    files
}

/// Reads schema files from the real filesystem, like the CLI.
pub struct DiskFiles;

impl FileSource for DiskFiles {
    fn read_to_string(&self, path: &Path) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }
}

/// Schema files held in memory, keyed by the exact path the validator asks for.
#[derive(Default)]
pub struct MemoryFiles(pub BTreeMap<PathBuf, String>);

impl MemoryFiles {
    /// Adds one file.
    pub fn with(mut self, path: &str, text: &str) -> MemoryFiles {
        self.0.insert(PathBuf::from(path), text.to_string());
        self
    }
}

impl FileSource for MemoryFiles {
    fn read_to_string(&self, path: &Path) -> Option<String> {
        self.0.get(path).cloned()
    }
}

/// Directives a corpus file carries in its leading comment lines.
#[derive(Debug, Default)]
pub struct Directives {
    /// `# expect: <code>`: the one code an invalid file exists to trigger.
    pub expect: Option<String>,
    /// `# also: <code>`: another error code the file legitimately raises with it.
    pub also: Vec<String>,
    /// `# mcp-stdio: true`: validate as if `--mcp-stdio` were configured.
    pub mcp_stdio: bool,
}

impl Directives {
    /// Reads the directives from the comment block at the top of `text`.
    pub fn parse(text: &str) -> Directives {
        let mut directives = Directives::default();
        for line in text.lines().take_while(|line| line.starts_with('#')) {
            let body = line.trim_start_matches('#').trim();
            if let Some(code) = body.strip_prefix("expect:") {
                directives.expect = Some(code.trim().to_string());
            } else if let Some(code) = body.strip_prefix("also:") {
                directives.also.push(code.trim().to_string());
            } else if let Some(flag) = body.strip_prefix("mcp-stdio:") {
                directives.mcp_stdio = flag.trim() == "true";
            }
        }
        directives
    }
}

/// A corpus file and the result of loading it.
pub struct Loaded {
    /// The source as the validator saw it (named `<kind>/<file>`).
    pub source: SourceFile,
    /// Its directives.
    pub directives: Directives,
    /// Parse + validate result.
    pub result: Result<Workflow, LoadFailure>,
}

/// Loads a corpus file with its own directory as working directory (so `schemas/…` resolves)
/// and schema files read from disk.
pub fn load_corpus_file(path: &Path) -> Loaded {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let directives = Directives::parse(&text);
    let directory = path.parent().expect("file in a directory");
    let kind = directory.file_name().expect("named directory").to_string_lossy();
    let name = format!("{kind}/{}", path.file_name().expect("file name").to_string_lossy());
    let source = SourceFile::new(name, Some(path.to_path_buf()), text);
    let options = ValidateOptions { mcp_stdio: directives.mcp_stdio, cwd: directory.to_path_buf(), files: &DiskFiles };
    let result = load(&source, &options);
    Loaded { source, directives, result }
}

/// Loads text with no files and no `--mcp-stdio` (the pure validator).
pub fn load_text(text: &str) -> (SourceFile, Result<Workflow, LoadFailure>) {
    load_text_with(text, false, &NoFiles)
}

/// Loads text with explicit options; the working directory is `/work`.
pub fn load_text_with(
    text: &str,
    mcp_stdio: bool,
    files: &dyn FileSource,
) -> (SourceFile, Result<Workflow, LoadFailure>) {
    let source = SourceFile::new("inline.toml", None, text.to_string());
    let options = ValidateOptions { mcp_stdio, cwd: "/work".into(), files };
    let result = load(&source, &options);
    (source, result)
}

/// Every diagnostic of a result: load errors; or validation errors then warnings; or the
/// warnings of a valid workflow.
pub fn diagnostics(result: &Result<Workflow, LoadFailure>) -> Vec<&Diagnostic> {
    match result {
        Ok(workflow) => workflow.warnings.iter().collect(),
        Err(LoadFailure::Load(diagnostics)) => diagnostics.iter().collect(),
        Err(LoadFailure::Invalid(rejected)) => rejected.errors.iter().chain(&rejected.warnings).collect(),
    }
}

/// Only the error codes of a result, in order.
pub fn error_codes(result: &Result<Workflow, LoadFailure>) -> Vec<&'static str> {
    diagnostics(result).into_iter().filter(|d| d.severity == agentd_workflow::Severity::Error).map(|d| d.code).collect()
}

/// Only the warning codes of a result, in order.
pub fn warning_codes(result: &Result<Workflow, LoadFailure>) -> Vec<&'static str> {
    diagnostics(result)
        .into_iter()
        .filter(|d| d.severity == agentd_workflow::Severity::Warning)
        .map(|d| d.code)
        .collect()
}

/// One line per diagnostic (`severity code line:column message`), then each one rendered the
/// way the CLI prints it. This is what the corpus snapshots record.
pub fn report(source: &SourceFile, result: &Result<Workflow, LoadFailure>) -> String {
    let outcome = match result {
        Ok(_) => "valid",
        Err(LoadFailure::Load(_)) => "load error (exit 2)",
        Err(LoadFailure::Invalid(_)) => "validation failed (exit 5)",
    };
    let diagnostics = diagnostics(result);
    let mut out = format!("outcome: {outcome}\n");
    if diagnostics.is_empty() {
        out.push_str("diagnostics: none\n");
        return out;
    }
    out.push_str("diagnostics:\n");
    for diagnostic in &diagnostics {
        let level = match diagnostic.severity {
            agentd_workflow::Severity::Error => "error",
            agentd_workflow::Severity::Warning => "warning",
        };
        let at = diagnostic
            .location(source)
            .map_or_else(|| "-".to_string(), |location| format!("{}:{}", location.line, location.column));
        out.push_str(&format!("- {level} {} at {at}: {}\n", diagnostic.code, diagnostic.message));
    }
    out.push_str("\nrendered:\n");
    for diagnostic in &diagnostics {
        out.push_str(&diagnostic.render(source));
        out.push('\n');
    }
    out
}
