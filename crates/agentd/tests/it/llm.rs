//! `llm_infer` through the binary (04 §7.1, 06): the scripted backend for schema enforcement,
//! repairs and the token budget; an OpenAI-compatible server on loopback for the wire path and
//! key handling.

use serde_json::{Value, json};

use crate::http_server::TestServer;
use crate::support::{Run, Scratch};

fn workflow(backend: &str, schema: &str, extra: &str) -> String {
    format!(
        r#"name = "llm"
{extra}
{backend}

[logging.audit]
target = "file:audit.jsonl"

[[start_nodes]]
name = "main"
source = "manual"
entry_node = "ask"

[[nodes]]
id = "ask"
type = "llm_infer"
backend = "model"
prompt = "Answer about {{{{trigger.topic}}}} in JSON."
{schema}
"#
    )
}

const SCRIPTED: &str =
    "[[intelligence.backends]]\nname = \"model\"\nprovider = \"scripted\"\npath = \"answers.toml\"\n";
const SCHEMA: &str = "output_repairs = 1\noutput_schema = { type = \"object\", required = [\"answer\"] }";

fn run(scratch: &Scratch, text: &str, answers: &str, extra: &[&str]) -> Run {
    scratch.write("answers.toml", answers);
    scratch.write("llm.toml", text);
    let mut args = vec!["run", "llm.toml", "--quiet", "--input", r#"{"topic": "tea"}"#, "--record", "r.json"];
    args.extend_from_slice(extra);
    scratch.run(args)
}

fn record(scratch: &Scratch) -> Value {
    serde_json::from_str(&scratch.read("r.json")).expect("record")
}

#[test]
fn a_valid_answer_is_parsed_and_its_tokens_counted() {
    let scratch = Scratch::new();
    let answers = "[[turns]]\ncontent = '{\"answer\": \"green\"}'\nprompt_tokens = 10\ncompletion_tokens = 4\nexpect_prompt_contains = \"tea\"\n";
    let out = run(&scratch, &workflow(SCRIPTED, SCHEMA, ""), answers, &[]);
    out.code(0);
    let value = &out.json()["final_value"];
    assert_eq!(value["parsed"], json!({"answer": "green"}));
    assert_eq!(value["attempts"], 1);
    assert_eq!(value["usage"], json!({"completion_tokens": 4, "prompt_tokens": 10}));
    let cost = &record(&scratch)["cost"];
    assert_eq!((cost["llm_calls"].as_u64(), cost["llm_tokens"].as_u64()), (Some(1), Some(14)));
}

#[test]
fn an_invalid_answer_is_repaired_and_fenced_json_accepted() {
    let scratch = Scratch::new();
    let answers = "[[turns]]\ncontent = \"no json here\"\nprompt_tokens = 10\ncompletion_tokens = 3\n\n[[turns]]\ncontent = '''\n```json\n{\"answer\": 1}\n```'''\nprompt_tokens = 20\ncompletion_tokens = 5\n";
    let out = run(&scratch, &workflow(SCRIPTED, SCHEMA, ""), answers, &[]);
    out.code(0);
    assert_eq!(out.json()["final_value"]["parsed"], json!({"answer": 1}));
    assert_eq!(out.json()["final_value"]["attempts"], 2);
    assert_eq!(record(&scratch)["cost"]["llm_tokens"], 38, "both calls are billed");
    assert!(scratch.read("audit.jsonl").contains("llm_infer.repair"));
}

#[test]
fn invalid_until_exhausted_is_a_schema_error_with_tokens_still_counted() {
    let scratch = Scratch::new();
    let answers = "cycle = true\n[[turns]]\ncontent = '{\"other\": true}'\nprompt_tokens = 7\ncompletion_tokens = 2\n";
    let out = run(&scratch, &workflow(SCRIPTED, SCHEMA, ""), answers, &[]);
    out.code(5);
    let reason = out.json()["reason"].as_str().unwrap_or_default().to_string();
    assert!(
        reason.starts_with(
            "schema validation failed: llm_infer node `ask`: output failed validation after 2 attempt(s): "
        ),
        "{reason}"
    );
    assert_eq!(record(&scratch)["cost"]["llm_tokens"], 18);
}

#[test]
fn the_run_token_budget_stops_the_next_call() {
    let scratch = Scratch::new();
    let answers = "cycle = true\n[[turns]]\ncontent = \"not json\"\nprompt_tokens = 30\ncompletion_tokens = 10\n";
    let text = workflow(SCRIPTED, SCHEMA, "[budget]\nmax_llm_tokens = 25\n");
    let out = run(&scratch, &text, answers, &[]);
    out.code(5);
    assert_eq!(
        out.json()["reason"],
        "tool `llm_infer` failed: budget.max_llm_tokens exceeded: 40 / 25 tokens consumed"
    );
    assert_eq!(record(&scratch)["cost"]["llm_calls"], 1, "the refused call was never made");
    assert_eq!(record(&scratch)["cost"]["llm_tokens"], 40, "nothing is billed twice");
    let audit = scratch.read("audit.jsonl");
    assert!(audit.contains(r#""event":"budget.exhausted""#) && audit.contains(r#""kind":"llm_tokens""#), "{audit}");
}

#[test]
fn dry_run_makes_no_call() {
    let scratch = Scratch::new();
    let out = run(&scratch, &workflow(SCRIPTED, SCHEMA, ""), "[[turns]]\ncontent = \"x\"\n", &["--dry-run"]);
    out.code(0);
    assert_eq!(out.json()["final_value"], json!({"content": "<dry-run>", "dry_run": true, "parsed": null}));
    assert_eq!(record(&scratch)["cost"]["llm_calls"], 0);
}

#[test]
fn backend_errors() {
    let scratch = Scratch::new();
    // Unknown backend name in the node.
    let text = workflow(SCRIPTED, "", "").replace("backend = \"model\"", "backend = \"nope\"");
    let out = run(&scratch, &text, "[[turns]]\ncontent = \"x\"\n", &[]);
    out.code(5);
    let reason = out.json()["reason"].as_str().unwrap_or_default().to_string();
    assert!(reason.starts_with("intelligence call failed: backend `nope` is not configured"), "{reason}");
    // No backend at all.
    let text = workflow("", "", "");
    let out = run(&scratch, &text, "", &[]);
    out.code(5);
    assert!(out.json()["reason"].as_str().unwrap_or_default().starts_with("capability unavailable: "));
    // A bad backend definition is a startup error.
    let text = workflow("[[intelligence.backends]]\nname = \"model\"\nprovider = \"telepathy\"\n", "", "");
    let out = run(&scratch, &text, "", &[]);
    out.code(2);
    assert!(out.stderr.contains("unknown provider `telepathy`"), "{}", out.stderr);
    // A garbage scripted file is a startup error too.
    let out = run(&scratch, &workflow(SCRIPTED, "", ""), "[[turns]\ncontent = ", &[]);
    out.code(2);
    assert!(out.stderr.starts_with("agentd: intelligence.backends.model: "), "{}", out.stderr);
    // A missing schema file is a startup error before any run.
    let text = workflow(SCRIPTED, "output_schema = \"schemas/missing.json\"", "");
    let out = run(&scratch, &text, "[[turns]]\ncontent = \"x\"\n", &[]);
    out.code(5);
    assert!(out.stderr.contains("output_schema file `schemas/missing.json` not found"), "{}", out.stderr);
}

#[test]
fn openai_compatible_over_http_with_a_key_that_never_leaks() {
    let server = TestServer::start();
    let scratch = Scratch::new();
    let backend = format!(
        "[[intelligence.backends]]\nname = \"model\"\nprovider = \"openai-compatible\"\nmodel = \"m\"\nbase_url = \"http://127.0.0.1:{}/v1\"\napi_key_env = \"LOCAL_KEY\"\nmax_retries = 0\n",
        server.port
    );
    scratch.write("llm.toml", workflow(&backend, "output_schema = \"json\"", ""));
    let key = "sk-test-0123456789abcdef";
    let mut command = scratch.agentd();
    command
        .args(["run", "llm.toml", "--quiet", "--input", r#"{"topic": "tea"}"#, "--record", "r.json"])
        .env("LOCAL_KEY", key);
    let out = scratch.exec(&mut command);
    out.code(0);
    assert_eq!(out.json()["final_value"]["parsed"], json!({"answer": 42}));
    assert_eq!(record(&scratch)["cost"]["llm_tokens"], 17);
    let seen = &server.requests()[0];
    assert_eq!(seen.path, "/v1/chat/completions");
    let body: Value = serde_json::from_slice(&seen.body).expect("request body");
    assert_eq!(body["model"], "m");
    assert!(body["messages"][0]["content"].as_str().unwrap_or_default().contains("tea"));

    // A wrong key: the error names the backend and the status, never the key.
    let wrong = "sk-wrong-key-99999999";
    let mut command = scratch.agentd();
    command
        .args(["run", "llm.toml", "--quiet", "--input", r#"{"topic": "tea"}"#, "--record", "r2.json"])
        .env("LOCAL_KEY", wrong);
    let out = scratch.exec(&mut command);
    out.code(5);
    let reason = out.json()["reason"].as_str().unwrap_or_default().to_string();
    assert!(reason.contains("model") && reason.contains("401"), "{reason}");
    for text in
        [&out.stdout, &out.stderr, &scratch.read("r.json"), &scratch.read("r2.json"), &scratch.read("audit.jsonl")]
    {
        assert!(!text.contains(key) && !text.contains(wrong), "a key leaked: {text}");
    }
}
