//! Shared harness: a scratch directory per test, the real `agentd` binary run inside it with a
//! clean environment, and snapshot rendering with temp paths, execution ids, timestamps and
//! durations filtered out.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;
use serde_json::Value;

/// Failsafe for a hung binary; never used for synchronisation.
const HANG_LIMIT: Duration = Duration::from_secs(60);

/// A scratch directory; the binary runs with it as its working directory.
pub struct Scratch {
    _dir: tempfile::TempDir,
    root: PathBuf,
    raw_root: PathBuf,
}

impl Scratch {
    pub fn new() -> Scratch {
        let dir = tempfile::Builder::new().prefix("agentd-it-").tempdir().expect("temp dir");
        let raw_root = dir.path().to_path_buf();
        let root = raw_root.canonicalize().expect("canonical temp dir");
        Scratch { _dir: dir, root, raw_root }
    }

    /// The canonical scratch root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The canonical root as text (for workflow files and expectations).
    pub fn root_str(&self) -> String {
        self.root.to_str().expect("UTF-8 temp path").to_string()
    }

    /// An absolute path inside the scratch directory.
    pub fn path(&self, relative: impl AsRef<Path>) -> PathBuf {
        self.root.join(relative)
    }

    /// Writes a file (creating parents) and returns its absolute path.
    pub fn write(&self, relative: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&path, contents).expect("write scratch file");
        path
    }

    /// Creates a directory (and parents).
    pub fn mkdir(&self, relative: impl AsRef<Path>) -> PathBuf {
        let path = self.path(relative);
        std::fs::create_dir_all(&path).expect("mkdir");
        path
    }

    /// Copies `tests/fixtures/<name>` into the scratch directory under the same name, replacing
    /// `@TMP@` with the scratch root. Returns the file name (relative to the working directory).
    pub fn fixture(&self, name: &str) -> String {
        self.fixture_as(name, name)
    }

    /// Like [`Scratch::fixture`], under another name.
    pub fn fixture_as(&self, name: &str, target: &str) -> String {
        let text = fixture_text(name).replace("@TMP@", &self.root_str());
        self.write(target, text);
        target.to_string()
    }

    /// `agentd` with a clean environment, working in the scratch directory.
    pub fn agentd(&self) -> Command {
        let mut command = Command::new(agentd_path());
        command.env_clear().current_dir(&self.root).timeout(HANG_LIMIT);
        command
    }

    /// Runs `agentd ARGS`.
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = self.agentd();
        command.args(args);
        self.exec(&mut command)
    }

    /// Runs a prepared command and captures what a user would see.
    pub fn exec(&self, command: &mut Command) -> Run {
        let output = command.output().expect("spawn agentd");
        let run = Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            roots: vec![self.root_str(), self.raw_root.to_string_lossy().into_owned()],
        };
        run.assert_no_panic();
        run
    }

    /// Reads a scratch file as text.
    pub fn read(&self, relative: impl AsRef<Path>) -> String {
        std::fs::read_to_string(self.path(relative)).expect("read scratch file")
    }

    /// Text with the scratch root replaced by `[TMP]` (for snapshots of files).
    pub fn scrub(&self, text: &str) -> String {
        text.replace(&self.root_str(), "[TMP]").replace(self.raw_root.to_string_lossy().as_ref(), "[TMP]")
    }

    /// Every entry under the scratch root, relative, sorted (symlinks not followed).
    pub fn listing(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.root, &self.root, &mut out);
        out.sort();
        out
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let entry = entry.expect("dir entry");
        let path = entry.path();
        out.push(path.strip_prefix(root).expect("under root").to_string_lossy().into_owned());
        let file_type = entry.file_type().expect("file type");
        if file_type.is_dir() {
            walk(root, &path, out);
        }
    }
}

/// The path of the binary under test.
pub fn agentd_path() -> &'static Path {
    assert_cmd::cargo::cargo_bin!("agentd")
}

/// The text of `tests/fixtures/<name>`.
pub fn fixture_text(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// What one invocation produced.
#[derive(Debug)]
pub struct Run {
    /// Exit code (`None` = killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    roots: Vec<String>,
}

impl Run {
    fn assert_no_panic(&self) {
        assert!(
            !self.stderr.contains("panicked") && !self.stdout.contains("panicked"),
            "agentd panicked:\n{}",
            self.stderr
        );
    }

    /// Asserts the exit code, showing both streams on failure.
    #[track_caller]
    pub fn code(&self, expected: i32) -> &Run {
        assert_eq!(
            self.code,
            Some(expected),
            "unexpected exit code\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\n--- stderr ---\n{}", self.stdout, self.stderr))
    }

    /// stderr lines.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }

    /// Asserts stderr contains this exact line.
    #[track_caller]
    pub fn stderr_has_line(&self, line: &str) -> &Run {
        assert!(
            self.stderr.lines().any(|l| l == line),
            "stderr lacks the line\n  {line}\n--- stderr ---\n{}",
            self.stderr
        );
        self
    }

    /// Asserts stderr is empty.
    #[track_caller]
    pub fn stderr_empty(&self) -> &Run {
        assert!(self.stderr.is_empty(), "stderr should be empty:\n{}", self.stderr);
        self
    }

    fn scrub(&self, text: &str) -> String {
        let mut text = text.to_string();
        for root in &self.roots {
            text = text.replace(root.as_str(), "[TMP]");
        }
        text
    }

    /// The snapshot form: exit code, stdout, stderr, temp paths replaced by `[TMP]`.
    pub fn render(&self) -> String {
        let code = self.code.map_or_else(|| "signal".to_string(), |c| c.to_string());
        format!(
            "exit: {code}\n----- stdout -----\n{}----- stderr -----\n{}",
            self.scrub(&self.stdout),
            self.scrub(&self.stderr)
        )
    }
}

/// Regex filters for snapshots: execution ids, timestamps, durations.
pub fn filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"exec-[0-9a-f]+-[0-9a-f]+-[0-9a-f]+", "[EXEC_ID]"),
        (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z", "[TIMESTAMP]"),
        (r#""(elapsed_ms|wall_ms|duration_ms|latency_ms)": ?\d+"#, r#""$1": "[MS]""#),
        (r"\b\d+ ms\b", "[MS] ms"),
    ]
}

/// Snapshot of a [`Run`] (or any text) with the harness filters.
#[macro_export]
macro_rules! snap {
    ($value:expr) => {
        insta::with_settings!({ filters => $crate::support::filters(), prepend_module_to_snapshot => true }, {
            insta::assert_snapshot!($value);
        })
    };
    ($name:expr, $value:expr) => {
        insta::with_settings!({ filters => $crate::support::filters(), prepend_module_to_snapshot => true }, {
            insta::assert_snapshot!($name, $value);
        })
    };
}

/// A JSON object's keys in the order they appear in the raw text (top level of `text`, which
/// must be a pretty-printed object).
pub fn top_level_keys(text: &str) -> Vec<String> {
    keys_at_indent(text, 2)
}

/// Keys of pretty-printed JSON lines at exactly `indent` spaces, in text order.
pub fn keys_at_indent(text: &str, indent: usize) -> Vec<String> {
    let prefix = format!("{}\"", " ".repeat(indent));
    text.lines()
        .filter(|l| l.starts_with(&prefix) && !l[indent + 1..].starts_with(' '))
        .filter_map(|l| {
            let rest = &l[indent + 1..];
            let end = rest.find("\":")?;
            Some(rest[..end].to_string())
        })
        .collect()
}
