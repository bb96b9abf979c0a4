//! Running the binary and reading its reports.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The repository root (the corpus lives in `conformance/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What one invocation produced.
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// stdout as the suite JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr))
    }
}

/// Runs the binary with `args` from the repository root.
pub fn run(args: &[&str]) -> Ran {
    let output = Command::new(env!("CARGO_BIN_EXE_agentd-conformance"))
        .args(args)
        .current_dir(repo_root())
        .env_remove("AGENTD_CONFORMANCE_SEED")
        .output()
        .expect("the binary runs");
    Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Validates a suite report against the shipped JSON Schema.
pub fn assert_schema_valid(report: &Value) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/suite.schema.json");
    let text = std::fs::read_to_string(&path).expect("schema file");
    let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> =
        validator.iter_errors(report).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "report does not match the schema:\n{}", errors.join("\n"));
}

/// The scenario entry named `name`.
pub fn scenario<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["scenarios"]
        .as_array()
        .and_then(|list| list.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no scenario `{name}` in the report"))
}

/// A minimal scenario whose model answers `answer` and that expects `expected`.
pub fn routing_scenario(name: &str, answer: &str, expected: &str) -> String {
    format!(
        r#"name = "{name}"
capabilities = ["llm_infer", "switch"]
trials = 2
[workflow]
inline = '''
name = "w"
[[start_nodes]]
name = "main"
source = "manual"
entry_node = "ask"
[[nodes]]
id = "ask"
type = "llm_infer"
backend = "default"
prompt = "hi"
[[nodes]]
id = "route"
type = "switch"
expr = "ask.content"
[[nodes]]
id = "yes"
type = "terminate"
[[edges]]
from = "ask"
to = "route"
[[edges]]
from = "route"
when = "{expected}"
to = "yes"
'''
[[intel.turns]]
content = "{answer}"
prompt_tokens = 5
completion_tokens = 1
[expected]
status = "completed"
last_node = "yes"
"#
    )
}
