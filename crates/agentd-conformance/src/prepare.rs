//! Placeholders (10 §2.2) and turning a scenario's workflow text into a validated [`Workflow`]:
//! substitute, splice the scenario's `[policy]` over the workflow's, parse and fully validate.

use std::path::{Path, PathBuf};

use agentd_workflow::{FileSource, LoadFailure, SourceFile, ValidateOptions, Workflow};
use serde_json::Value;

use crate::scenario::Scenario;

/// Values of `${SCENARIO_DIR}`, `${TRIAL_DIR}` and `${HTTP_STUB}` for one trial.
#[derive(Debug, Clone)]
pub struct Placeholders {
    /// Canonical scenario directory, forward slashes.
    pub scenario_dir: String,
    /// The trial's fresh directory, forward slashes.
    pub trial_dir: String,
    /// `http://127.0.0.1:<port>` of the trial's stub.
    pub http_stub: String,
}

impl Placeholders {
    /// Values used to validate a scenario before any trial exists: the validator does no I/O
    /// on them, so any well-formed stand-ins do.
    pub fn for_validation(scenario_dir: &str) -> Placeholders {
        Placeholders {
            scenario_dir: scenario_dir.to_string(),
            trial_dir: "/agentd-conformance-trial".to_string(),
            http_stub: "http://127.0.0.1:9".to_string(),
        }
    }

    /// Plain text replacement, no escaping.
    pub fn apply(&self, text: &str) -> String {
        if !text.contains("${") {
            return text.to_string();
        }
        text.replace("${SCENARIO_DIR}", &self.scenario_dir)
            .replace("${TRIAL_DIR}", &self.trial_dir)
            .replace("${HTTP_STUB}", &self.http_stub)
    }

    /// Replaces placeholders in every string of a JSON value (keys included).
    pub fn apply_json(&self, value: &mut Value) {
        match value {
            Value::String(s) => *s = self.apply(s),
            Value::Array(items) => items.iter_mut().for_each(|v| self.apply_json(v)),
            Value::Object(map) => {
                let entries = std::mem::take(map);
                for (key, mut v) in entries {
                    self.apply_json(&mut v);
                    map.insert(self.apply(&key), v);
                }
            }
            _ => {}
        }
    }

    /// Replaces placeholders in every string of a TOML value.
    pub fn apply_toml(&self, value: &mut toml::Value) {
        match value {
            toml::Value::String(s) => *s = self.apply(s),
            toml::Value::Array(items) => items.iter_mut().for_each(|v| self.apply_toml(v)),
            toml::Value::Table(table) => table.iter_mut().for_each(|(_, v)| self.apply_toml(v)),
            _ => {}
        }
    }
}

/// Reads schema files for the validator.
struct DiskFiles;

impl FileSource for DiskFiles {
    fn read_to_string(&self, path: &Path) -> Option<String> {
        std::fs::read_to_string(path).ok()
    }
}

/// The workflow text after placeholders and the `[policy]` splice.
pub fn workflow_text(scenario: &Scenario, placeholders: &Placeholders) -> Result<String, String> {
    let text = placeholders.apply(&scenario.workflow_text);
    let Some(policy) = &scenario.file.policy else {
        return Ok(text);
    };
    // Splicing needs a TOML document; a workflow that is not one is reported by the loader.
    let Ok(mut document) = toml::from_str::<toml::Table>(&text) else {
        return Ok(text);
    };
    let mut policy = toml::Value::Table(policy.clone());
    placeholders.apply_toml(&mut policy);
    document.insert("policy".to_string(), policy);
    toml::to_string(&document).map_err(|e| format!("scenario [policy]: {e}"))
}

/// Parses and fully validates the workflow of a scenario (warnings ignored).
pub fn load_workflow(scenario: &Scenario, placeholders: &Placeholders) -> Result<Workflow, String> {
    let text = workflow_text(scenario, placeholders)?;
    let shown = scenario.workflow_path.as_deref().unwrap_or(&scenario.path).display().to_string();
    let absolute: PathBuf = match &scenario.workflow_path {
        Some(path) => path.clone(),
        None => std::path::absolute(&scenario.path).unwrap_or_else(|_| scenario.path.clone()),
    };
    let source = SourceFile::new(shown, Some(absolute), text);
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let options =
        ValidateOptions { mcp_stdio: scenario.file.mcp.servers.contains_key("default"), cwd, files: &DiskFiles };
    match agentd_workflow::load(&source, &options) {
        Ok(workflow) => Ok(workflow),
        Err(LoadFailure::Load(diagnostics)) => Err(invalid(diagnostics.iter().map(|d| (d.code, d.message.as_str())))),
        Err(LoadFailure::Invalid(rejected)) => {
            Err(invalid(rejected.errors.iter().map(|d| (d.code, d.message.as_str()))))
        }
    }
}

fn invalid<'a>(issues: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let joined: Vec<String> = issues
        .map(|(code, message)| format!("[{code}] {}", message.split_whitespace().collect::<Vec<_>>().join(" ")))
        .collect();
    format!("workflow invalid: {}", joined.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn placeholders_reach_nested_json() {
        let p = Placeholders { scenario_dir: "/s".into(), trial_dir: "/t".into(), http_stub: "http://h".into() };
        let mut v = json!({"a": ["${TRIAL_DIR}/x", {"${SCENARIO_DIR}": "${HTTP_STUB}/y"}], "n": 1});
        p.apply_json(&mut v);
        assert_eq!(v, json!({"a": ["/t/x", {"/s": "http://h/y"}], "n": 1}));
    }
}
