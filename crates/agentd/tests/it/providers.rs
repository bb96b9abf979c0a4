//! The provider behaviour suite through the real binary (issue acceptance): for each provider a
//! local fake that speaks its documented API (the same fake the agentd-intel tests use, which
//! checks path, headers and body and answers malformed requests like the real service), and an
//! `llm_infer` workflow run by `agentd`: happy path with usage counted in the record, 429 then
//! success, 500 until retries run out, timeout, non-JSON body, empty choices, a huge response,
//! and a wrong key (the error names the backend and the status, never the key).

#[path = "../../../agentd-intel/tests/it/support/fake.rs"]
#[allow(dead_code)]
mod fake;

use std::time::{Duration, Instant};

use fake::{FakeProvider, Kind, Reply};
use serde_json::Value;

use crate::support::{Run, Scratch};

const KEY: &str = "sk-good-key-0123456789";

struct Provider {
    kind: Kind,
    fake: FakeProvider,
    _runtime: tokio::runtime::Runtime,
}

impl Provider {
    fn start(kind: Kind) -> Provider {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("rt");
        let fake = runtime.block_on(FakeProvider::start(kind, Some(KEY)));
        Provider { kind, fake, _runtime: runtime }
    }

    /// Runs `llm_infer` against the fake with backend `b` (plus `extra` backend lines).
    fn run(&self, scratch: &Scratch, replies: Vec<Reply>, extra: &str, key: &str) -> Run {
        self.fake.push(replies);
        let model = if self.kind == Kind::Gemini { "gemini-test" } else { "test-model" };
        scratch.write(
            "llm.toml",
            format!(
                r#"name = "providers"

[[intelligence.backends]]
name = "b"
provider = "{provider}"
model = "{model}"
api_key_env = "TEST_KEY"
base_url = "{base}"
{extra}

[[start_nodes]]
name = "main"
source = "manual"
entry_node = "ask"

[[nodes]]
id = "ask"
type = "llm_infer"
backend = "b"
prompt = "hello there"
max_tokens = 64
"#,
                provider = self.kind.provider(),
                base = self.fake.base_url()
            ),
        );
        let mut command = scratch.agentd();
        command.args(["run", "llm.toml", "--quiet", "--record", "r.json"]).env("TEST_KEY", key);
        scratch.exec(&mut command)
    }
}

fn record(scratch: &Scratch) -> Value {
    serde_json::from_str(&scratch.read("r.json")).expect("record")
}

fn reason(run: &Run) -> String {
    run.json()["reason"].as_str().unwrap_or_default().to_string()
}

fn suite(kind: Kind) {
    let provider = Provider::start(kind);
    let name = kind.provider();
    let scratch = Scratch::new();

    // Happy path; usage counted in the outcome and the record.
    let run = provider.run(&scratch, vec![Reply::text("general kenobi", 11, 7)], "", KEY);
    run.code(0);
    let value = &run.json()["final_value"];
    assert_eq!(value["content"], "general kenobi", "{name}");
    assert_eq!(value["usage"], serde_json::json!({"completion_tokens": 7, "prompt_tokens": 11}), "{name}");
    let cost = &record(&scratch)["cost"];
    assert_eq!((cost["llm_calls"].as_u64(), cost["llm_tokens"].as_u64()), (Some(1), Some(18)), "{name}");

    // 429 with Retry-After, then success: the failed attempt bills nothing.
    let started = Instant::now();
    let replies = vec![Reply::Status { status: 429, retry_after: Some("1".into()) }, Reply::text("after wait", 2, 3)];
    let run = provider.run(&scratch, replies, "", KEY);
    run.code(0);
    assert!(started.elapsed() >= Duration::from_secs(1), "{name}: Retry-After honoured");
    assert_eq!(record(&scratch)["cost"]["llm_tokens"], 5, "{name}");

    // 500 until the retries run out.
    let replies = vec![Reply::status(500), Reply::status(503), Reply::status(500)];
    let run = provider.run(&scratch, replies, "max_retries = 2", KEY);
    run.code(5);
    let text = reason(&run);
    assert!(text.starts_with(&format!("intelligence call failed: backend `b`: {name} returned 500: ")), "{text}");
    assert_eq!(record(&scratch)["cost"]["llm_tokens"], 0, "{name}: failed calls bill nothing");

    // Timeout.
    let started = Instant::now();
    let run = provider.run(
        &scratch,
        vec![Reply::Delay(Duration::from_secs(10), Box::new(Reply::text("late", 1, 1)))],
        "timeout_secs = 1\nmax_retries = 0",
        KEY,
    );
    run.code(5);
    assert!(started.elapsed() < Duration::from_secs(8), "{name}: bounded");
    assert_eq!(reason(&run), format!("intelligence call failed: backend `b`: {name}: request timed out after 1 s"));

    // Non-JSON body.
    let raw = Reply::Raw { status: 200, content_type: "text/html", body: "<html>gateway page</html>".into() };
    let run = provider.run(&scratch, vec![raw], "", KEY);
    run.code(5);
    assert!(reason(&run).contains(&format!("{name} response is not JSON: ")), "{}", reason(&run));

    // Empty choices / candidates / content.
    let run = provider.run(&scratch, vec![Reply::Empty], "", KEY);
    run.code(5);
    assert!(reason(&run).ends_with(&format!("{name} response missing {}", kind.missing_path())), "{}", reason(&run));

    // A huge response is refused, bounded.
    let run = provider.run(&scratch, vec![Reply::Huge { bytes: 17 * 1024 * 1024, chunked: true }], "", KEY);
    run.code(5);
    assert!(reason(&run).ends_with(&format!("{name}: response body exceeds 16777216 bytes")), "{}", reason(&run));

    // A wrong key: the backend and the status are named, the key never appears anywhere.
    let wrong = "sk-wrong-SECRET-value-98765";
    let run = provider.run(&scratch, vec![], "", wrong);
    run.code(5);
    let status = if kind == Kind::Gemini { 400 } else { 401 };
    let text = reason(&run);
    assert!(text.contains("backend `b`") && text.contains(&format!("{name} returned {status}")), "{text}");
    for output in [&run.stdout, &run.stderr, &scratch.read("r.json")] {
        assert!(!output.contains(wrong), "{name}: the key leaked: {output}");
    }
}

#[test]
fn anthropic() {
    suite(Kind::Anthropic);
}

#[test]
fn openai() {
    suite(Kind::OpenAi);
}

#[test]
fn openai_compatible() {
    suite(Kind::Compatible);
}

#[test]
fn gemini() {
    suite(Kind::Gemini);
}
