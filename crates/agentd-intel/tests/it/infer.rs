//! The `llm_infer` loop: contracts, repair rounds, budget gate, token accounting, output shape.

use std::sync::{Arc, Mutex};

use agentd_intel::infer::{self, InferHooks, InferRequest, NoHooks};
use agentd_intel::{
    Backends, BudgetExceeded, CompiledSchema, Completion, LlmCost, OutputContract, Script, ScriptedModel,
    StaticSecrets, check_token_budget,
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::support::fake::{FakeProvider, Kind, Reply};
use crate::support::{GOOD_KEY, deadline, provider_backends};

fn scripted(script: &str) -> (Backends, Arc<ScriptedModel>) {
    let model = Arc::new(ScriptedModel::from_script(&Script::from_toml(script).expect("script")).expect("model"));
    let mut backends = Backends::empty(Arc::new(StaticSecrets::default()));
    backends.insert_scripted("default", model.clone());
    (backends, model)
}

fn label_schema() -> OutputContract {
    let schema =
        json!({"type": "object", "required": ["label"], "properties": {"label": {"enum": ["bug", "question"]}}});
    OutputContract::Schema(Arc::new(CompiledSchema::compile(&schema).expect("schema")))
}

fn request<'a>(contract: Option<&'a OutputContract>, repairs: u32) -> InferRequest<'a> {
    InferRequest {
        node_id: "classify",
        backend: "default",
        prompt: "Classify: my widget broke".into(),
        max_tokens: None,
        temperature: None,
        contract,
        output_repairs: repairs,
    }
}

/// Hooks that keep a run tally, refuse at a cap, and record repairs.
#[derive(Default)]
struct Tally {
    cost: Mutex<LlmCost>,
    cap: Option<u64>,
    repairs: Mutex<Vec<(u32, String)>>,
}

impl InferHooks for Tally {
    type Refusal = BudgetExceeded;

    fn before_call(&self, _attempt: u32) -> Result<(), BudgetExceeded> {
        check_token_budget(self.cost.lock().unwrap().llm_tokens, self.cap)
    }

    fn after_call(&self, completion: &Completion) {
        self.cost.lock().unwrap().record(&completion.usage);
    }

    fn on_repair(&self, attempt: u32, reason: &str) {
        self.repairs.lock().unwrap().push((attempt, reason.to_string()));
    }
}

#[tokio::test]
async fn without_contract_the_raw_text_is_returned() {
    let (backends, _) = scripted("[[turns]]\ncontent = \"  free text  \"\nprompt_tokens = 13\ncompletion_tokens = 5\n");
    let out = infer::infer(&backends, &request(None, 3), &NoHooks, deadline(10), &CancellationToken::new())
        .await
        .expect("ok");
    assert_eq!(
        out.to_value(),
        json!({"attempts": 1, "content": "  free text  ", "parsed": null, "usage": {"completion_tokens": 5, "prompt_tokens": 13}})
    );
    assert_eq!(
        serde_json::to_string(&out.to_value()).unwrap(),
        r#"{"attempts":1,"content":"  free text  ","parsed":null,"usage":{"completion_tokens":5,"prompt_tokens":13}}"#,
        "keys serialise sorted"
    );
}

#[tokio::test]
async fn valid_and_fenced_answers_are_parsed() {
    let (backends, _) = scripted(
        "[[turns]]\ncontent = '{\"label\": \"bug\"}'\n[[turns]]\ncontent = \"```json\\n{\\\"label\\\": \\\"question\\\"}\\n```\"\n",
    );
    let contract = label_schema();
    let cancel = CancellationToken::new();
    let first =
        infer::infer(&backends, &request(Some(&contract), 0), &NoHooks, deadline(10), &cancel).await.expect("valid");
    assert_eq!(first.parsed, Some(json!({"label": "bug"})));
    let fenced =
        infer::infer(&backends, &request(Some(&contract), 0), &NoHooks, deadline(10), &cancel).await.expect("fenced");
    assert_eq!(fenced.parsed, Some(json!({"label": "question"})));
    assert!(fenced.content.starts_with("```json"), "content stays unmodified");
}

#[tokio::test]
async fn invalid_then_repaired() {
    let script = "[[turns]]\ncontent = '{\"label\": \"feature\"}'\nprompt_tokens = 10\ncompletion_tokens = 4\n\
                  [[turns]]\ncontent = '{\"label\": \"bug\"}'\nprompt_tokens = 20\ncompletion_tokens = 3\n\
                  expect_prompt_contains = [\"Classify: my widget broke\", '{\"label\": \"feature\"}', \"Your previous output was rejected: schema violation: /label: \", \"Reply with corrected output only.\"]\n";
    let (backends, model) = scripted(script);
    let contract = label_schema();
    let hooks = Tally::default();
    let out = infer::infer(&backends, &request(Some(&contract), 2), &hooks, deadline(10), &CancellationToken::new())
        .await
        .expect("repaired");
    assert_eq!(out.attempts, 2);
    assert_eq!(out.parsed, Some(json!({"label": "bug"})));
    assert_eq!((out.usage.prompt_tokens, out.usage.completion_tokens), (20, 3), "usage of the accepted attempt");
    assert_eq!(out.total_usage.total(), 37);
    assert_eq!(*hooks.cost.lock().unwrap(), LlmCost { llm_calls: 2, llm_tokens: 37 }, "each repair round is a call");
    let repairs = hooks.repairs.lock().unwrap().clone();
    assert_eq!(repairs.len(), 1);
    assert_eq!(repairs[0].0, 1);
    assert!(repairs[0].1.starts_with("schema violation: /label: "), "{}", repairs[0].1);
    assert!(model.prompt_mismatches().is_empty(), "{:?}", model.prompt_mismatches());
}

#[tokio::test]
async fn invalid_exhausted_still_counts_tokens() {
    let script = "[[turns]]\ncontent = \"not json\"\nprompt_tokens = 7\ncompletion_tokens = 2\n\
                  [[turns]]\ncontent = '{\"label\": 3}'\nprompt_tokens = 9\ncompletion_tokens = 1\n";
    let (backends, _) = scripted(script);
    let contract = label_schema();
    let hooks = Tally::default();
    let error = infer::infer(&backends, &request(Some(&contract), 1), &hooks, deadline(10), &CancellationToken::new())
        .await
        .expect_err("exhausted");
    let text = error.to_string();
    assert!(
        text.starts_with(
            "llm_infer node `classify`: output failed validation after 2 attempt(s): schema violation: /label: "
        ),
        "{text}"
    );
    assert_eq!(error.usage().total(), 19);
    assert_eq!(hooks.cost.lock().unwrap().llm_tokens, 19);
    assert!(!error.is_deadline());
}

#[tokio::test]
async fn invalid_json_rejection_text() {
    let (backends, _) = scripted("[[turns]]\ncontent = \"Sure! here it is\"\n");
    let contract = OutputContract::Json;
    let error =
        infer::infer(&backends, &request(Some(&contract), 0), &NoHooks, deadline(10), &CancellationToken::new())
            .await
            .expect_err("invalid");
    assert!(error.to_string().contains("after 1 attempt(s): model returned invalid JSON: expected value"), "{error}");
}

#[tokio::test]
async fn budget_gate_refuses_before_sending() {
    let script = "[[turns]]\ncontent = \"nope\"\nprompt_tokens = 60\ncompletion_tokens = 50\n[[turns]]\ncontent = '{\"label\": \"bug\"}'\n";
    let (backends, model) = scripted(script);
    let contract = OutputContract::Json;
    let hooks = Tally { cap: Some(100), ..Tally::default() };
    let error = infer::infer(&backends, &request(Some(&contract), 3), &hooks, deadline(10), &CancellationToken::new())
        .await
        .expect_err("refused");
    match &error {
        infer::Error::Refused { refusal, usage, attempts } => {
            assert_eq!(refusal.to_string(), "budget.max_llm_tokens exceeded: 110 / 100 tokens consumed");
            assert_eq!((usage.total(), *attempts), (110, 1));
        }
        other => panic!("expected a refusal, got {other}"),
    }
    assert_eq!(model.calls(), 1, "the refused call was never sent");
}

#[tokio::test]
async fn transport_failure_keeps_earlier_usage() {
    let script = "fault_on_calls = [2]\n[[turns]]\ncontent = \"bad\"\nprompt_tokens = 4\n";
    let (backends, _) = scripted(script);
    let contract = OutputContract::Json;
    let error =
        infer::infer(&backends, &request(Some(&contract), 1), &NoHooks, deadline(10), &CancellationToken::new())
            .await
            .expect_err("fault");
    match error {
        infer::Error::Call { error, usage, attempts } => {
            assert!(error.to_string().contains("injected transport fault on call 2"));
            assert_eq!((usage.total(), attempts), (4, 2));
        }
        other => panic!("expected a call error, got {other}"),
    }
}

#[tokio::test]
async fn unknown_backend_lists_the_known_ones() {
    let (mut backends, model) = scripted("");
    backends.insert_scripted("a", model);
    let mut req = request(None, 0);
    req.backend = "nope";
    let error =
        infer::infer(&backends, &req, &NoHooks, deadline(10), &CancellationToken::new()).await.expect_err("unknown");
    assert_eq!(error.to_string(), "backend `nope` is not configured on this runtime; known backends: a, default");
    let empty = Backends::empty(Arc::new(StaticSecrets::default()));
    let error = infer::infer(&empty, &req, &NoHooks, deadline(10), &CancellationToken::new()).await.expect_err("none");
    assert!(error.to_string().ends_with("known backends: <none>"));
}

#[tokio::test]
async fn repair_rounds_over_a_real_provider_wire() {
    let fake = FakeProvider::start(Kind::Anthropic, Some(GOOD_KEY)).await;
    let backends = provider_backends(Kind::Anthropic, &fake, GOOD_KEY, "max_tokens = 77");
    fake.push([Reply::text("{\"label\": \"other\"}", 5, 5), Reply::text("{\"label\": \"bug\"}", 6, 6)]);
    let contract = label_schema();
    let mut req = request(Some(&contract), 1);
    req.backend = "b";
    req.temperature = Some(0.0);
    let out = infer::infer(&backends, &req, &NoHooks, deadline(10), &CancellationToken::new()).await.expect("repaired");
    assert_eq!(out.attempts, 2);
    let requests = fake.requests();
    assert_eq!(requests[0].body["max_tokens"], 77, "backend max_tokens when the node sets none");
    assert_eq!(requests[1].body["temperature"], 0.0, "temperature on every attempt");
    let messages = requests[1].body["messages"].as_array().expect("messages").clone();
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[1], json!({"role": "assistant", "content": "{\"label\": \"other\"}"}));
    let repair = messages[2]["content"].as_str().expect("repair text");
    assert!(repair.starts_with("Your previous output was rejected: schema violation: /label: "), "{repair}");
    assert!(repair.ends_with(". Reply with corrected output only."), "{repair}");

    req.max_tokens = Some(5);
    fake.push([Reply::text("{\"label\": \"bug\"}", 1, 1)]);
    infer::infer(&backends, &req, &NoHooks, deadline(10), &CancellationToken::new()).await.expect("ok");
    assert_eq!(fake.requests()[2].body["max_tokens"], 5, "the node's max_tokens wins");
}

#[tokio::test]
async fn run_deadline_is_reported_as_such() {
    let (backends, _) = scripted("[[turns]]\ncontent = \"late\"\ndelay_ms = 5000\n");
    let soon = tokio::time::Instant::now() + std::time::Duration::from_millis(200);
    let error = infer::infer(&backends, &request(None, 0), &NoHooks, soon, &CancellationToken::new())
        .await
        .expect_err("deadline");
    assert!(error.is_deadline(), "{error}");
}

#[test]
fn dry_run_output_shape() {
    assert_eq!(
        serde_json::to_string(&infer::dry_run_output()).unwrap(),
        r#"{"content":"<dry-run>","dry_run":true,"parsed":null}"#
    );
}
