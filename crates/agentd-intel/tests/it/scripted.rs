//! The scripted backend: turn order, statuses through the real retry layer, delays against real
//! timeouts, injected faults, prompt expectations, seeded variants, and bad script files.

use std::sync::Arc;
use std::time::Duration;

use agentd_intel::scripted::{SharedSplitMix64, SplitMix64, trial_seed};
use agentd_intel::{Backends, CompletionRequest, Script, ScriptedModel, StaticSecrets};
use tokio_util::sync::CancellationToken;

use crate::support::{Retries, build, configs, deadline};

/// Writes `script` to a temp file named `file_name` and builds backend `s` from it.
fn scripted(file_name: &str, script: &str, extra: &str) -> (tempfile::TempDir, Backends) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(file_name);
    std::fs::write(&path, script).expect("write");
    let toml = format!("[[backends]]\nname = \"s\"\nprovider = \"scripted\"\npath = \"{}\"\n{extra}\n", path.display());
    (dir, build(&toml, &[]).expect("backends"))
}

async fn ask(
    backends: &Backends,
    name: &str,
    prompt: &str,
    retries: &Retries,
) -> Result<agentd_intel::Completion, agentd_intel::Error> {
    backends
        .complete_observed(name, &CompletionRequest::prompt(prompt), deadline(30), &CancellationToken::new(), retries)
        .await
}

#[tokio::test]
async fn turns_are_consumed_in_order_then_run_out() {
    let script =
        "[[turns]]\ncontent = \"one\"\nprompt_tokens = 3\ncompletion_tokens = 1\n\n[[turns]]\ncontent = \"two\"\n";
    let (_dir, backends) = scripted("turns.toml", script, "");
    let retries = Retries::default();
    let first = ask(&backends, "s", "a", &retries).await.expect("one");
    assert_eq!((first.text.as_str(), first.usage.prompt_tokens, first.usage.completion_tokens), ("one", 3, 1));
    assert_eq!(first.model, "scripted");
    assert_eq!(ask(&backends, "s", "b", &retries).await.expect("two").text, "two");
    let error = ask(&backends, "s", "c", &retries).await.expect_err("none left");
    assert!(error.detail().contains("no canned response enqueued"), "{error}");
    assert!(retries.events().is_empty(), "running out is not retryable");
}

#[tokio::test]
async fn statuses_go_through_the_retry_layer() {
    let script = "[[turns]]\nstatus = 429\nretry_after_secs = 0\n\n[[turns]]\nstatus = 503\nretry_after_secs = 0\n\n\
                  [[turns]]\ncontent = \"finally\"\ncompletion_tokens = 2\n\n[[turns]]\nstatus = 400\n";
    let (_dir, backends) = scripted("statuses.toml", script, "");
    let retries = Retries::default();
    let answer = ask(&backends, "s", "x", &retries).await.expect("retried twice");
    assert_eq!(answer.text, "finally");
    assert_eq!(answer.usage.total(), 2, "failed attempts bill nothing");
    let statuses: Vec<Option<u16>> = retries.events().iter().map(|e| e.status).collect();
    assert_eq!(statuses, [Some(429), Some(503)]);
    let rejected = ask(&backends, "s", "y", &Retries::default()).await.expect_err("400");
    assert_eq!((rejected.status(), rejected.detail().starts_with("scripted returned 400")), (Some(400), true));
}

#[tokio::test]
async fn delays_meet_the_request_timeout() {
    let script = "[[turns]]\ncontent = \"late\"\ndelay_ms = 5000\n";
    let (_dir, backends) = scripted("slow.toml", script, "timeout_secs = 1\nmax_retries = 0");
    let started = tokio::time::Instant::now();
    let error = ask(&backends, "s", "x", &Retries::default()).await.expect_err("timeout");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(error.detail(), "scripted: request timed out after 1 s");
}

#[tokio::test]
async fn injected_faults_consume_no_turn_and_are_not_retried() {
    let script = "fault_on_calls = [2]\n[[turns]]\ncontent = \"a\"\n[[turns]]\ncontent = \"b\"\n";
    let (_dir, backends) = scripted("faults.toml", script, "");
    let retries = Retries::default();
    assert_eq!(ask(&backends, "s", "1", &retries).await.expect("a").text, "a");
    let fault = ask(&backends, "s", "2", &retries).await.expect_err("fault");
    assert!(fault.detail().contains("injected transport fault on call 2"), "{fault}");
    assert!(retries.events().is_empty());
    assert_eq!(ask(&backends, "s", "3", &retries).await.expect("b").text, "b");
}

#[tokio::test]
async fn prompt_expectations_are_recorded_and_the_answer_still_served() {
    let script = "[[turns]]\ncontent = \"x\"\nexpect_prompt_contains = [\"widget\", \"gadget\"]\n[[turns]]\ncontent = \"y\"\nexpect_prompt_contains = \"two\"\n";
    let model = Arc::new(ScriptedModel::from_script(&Script::from_toml(script).expect("script")).expect("model"));
    let mut backends = Backends::empty(Arc::new(StaticSecrets::default()));
    backends.insert_scripted("default", model.clone());
    let retries = Retries::default();
    assert_eq!(ask(&backends, "default", "two widgets", &retries).await.expect("served").text, "x");
    assert_eq!(ask(&backends, "default", "two", &retries).await.expect("served").text, "y");
    assert_eq!(model.prompt_mismatches(), ["turn 1: prompt does not contain `gadget`"]);
    assert_eq!((model.calls(), model.turns_consumed()), (2, 2));
}

#[tokio::test]
async fn json_scripts_and_cycling() {
    let script = r#"{"cycle": true, "turns": [{"content": "ping"}, {"content": "pong", "prompt_tokens": 1}]}"#;
    let (_dir, backends) = scripted("cycle.json", script, "");
    let retries = Retries::default();
    let mut texts = Vec::new();
    for _ in 0..5 {
        texts.push(ask(&backends, "s", "x", &retries).await.expect("cycles").text);
    }
    assert_eq!(texts, ["ping", "pong", "ping", "pong", "ping"]);
}

#[tokio::test]
async fn variants_are_seeded_and_reproducible() {
    let script = "[[turns]]\nvariants = [{ content = \"a\" }, { content = \"b\" }, { content = \"c\" }]\n\
                  [[turns]]\ncontent = \"fixed\"\n\
                  [[turns]]\nvariants = [{ content = \"x\" }, { content = \"y\" }]\n";
    let script = Script::from_toml(script).expect("script");
    let mut picks = Vec::new();
    for index in [0, 0, 1, 2, 3, 4, 5, 6, 7] {
        let mut generator = SplitMix64::new(trial_seed(42, "scenario", index));
        let model = ScriptedModel::new(&script.turns, &[], false, &mut generator).expect("model");
        let mut backends = Backends::empty(Arc::new(StaticSecrets::default()));
        backends.insert_scripted("default", Arc::new(model));
        let mut texts = String::new();
        for _ in 0..3 {
            texts.push_str(&ask(&backends, "default", "p", &Retries::default()).await.expect("answer").text);
        }
        picks.push((texts, generator));
    }
    assert_eq!(picks[0], picks[1], "same trial seed: same variants, same generator position");
    assert!(picks.iter().all(|(t, _)| t.contains("fixed")));
    let distinct: std::collections::BTreeSet<&String> = picks.iter().map(|(t, _)| t).collect();
    assert!(distinct.len() > 1, "different trials see different variants: {distinct:?}");
}

#[tokio::test]
async fn seeded_jitter_replays_exactly() {
    let script = Script::from_toml("[[turns]]\nstatus = 500\n[[turns]]\ncontent = \"ok\"\n").expect("script");
    let mut delays = Vec::new();
    for _ in 0..2 {
        let mut generator = SplitMix64::new(7);
        let model = ScriptedModel::new(&script.turns, &[], false, &mut generator).expect("model");
        let mut backends = Backends::empty(Arc::new(StaticSecrets::default()));
        backends.insert_scripted("default", Arc::new(model));
        backends.set_random(Arc::new(SharedSplitMix64::new(generator)));
        let retries = Retries::default();
        ask(&backends, "default", "x", &retries).await.expect("retried");
        delays.push(retries.events()[0].delay);
    }
    assert_eq!(delays[0], delays[1]);
    assert!(delays[0] >= Duration::from_millis(400) && delays[0] <= Duration::from_millis(600));
}

#[tokio::test]
async fn stand_in_answers_for_every_declared_name_and_default() {
    let toml = "[[backends]]\nname = \"claude\"\nprovider = \"anthropic\"\nmodel = \"m\"\ntimeout_secs = 1\nmax_retries = 0\n\
                [[backends]]\nname = \"local\"\nprovider = \"openai-compatible\"\nmodel = \"q\"\nbase_url = \"http://127.0.0.1:1\"\n";
    let script =
        "[[turns]]\ncontent = \"1\"\n[[turns]]\ncontent = \"2\"\n[[turns]]\ncontent = \"3\"\ndelay_ms = 3000\n";
    let model = Arc::new(ScriptedModel::from_script(&Script::from_toml(script).expect("script")).expect("model"));
    let backends = Backends::scripted_stand_in(&configs(toml).backends, model).expect("no API key needed");
    assert_eq!(backends.names(), ["claude", "default", "local"]);
    let retries = Retries::default();
    assert_eq!(ask(&backends, "local", "x", &retries).await.expect("1").text, "1");
    assert_eq!(ask(&backends, "default", "x", &retries).await.expect("2").text, "2");
    let timeout = ask(&backends, "claude", "x", &retries).await.expect_err("claude keeps timeout_secs = 1");
    assert!(timeout.detail().contains("timed out after 1 s"), "{timeout}");
}

#[test]
fn bad_script_files_are_startup_errors() {
    let cases = [
        ("not toml", "= = ="),
        ("unknown key", "[[turns]]\ncontnet = \"typo\"\n"),
        ("bad status", "[[turns]]\nstatus = 42\n"),
        ("zero fault", "fault_on_calls = [0]\n"),
        ("wrong type", "[[turns]]\nprompt_tokens = -1\n"),
    ];
    for (what, text) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).expect("write");
        let toml = format!("[[backends]]\nname = \"s\"\nprovider = \"scripted\"\npath = \"{}\"\n", path.display());
        let error = build(&toml, &[]).expect_err(what).to_string();
        assert!(error.starts_with("intelligence.backends.s: scripted responses `"), "{what}: {error}");
        assert!(!error.contains('\n'), "{what}: one line: {error}");
    }
    let missing = "[[backends]]\nname = \"s\"\nprovider = \"scripted\"\npath = \"/nonexistent/script.toml\"\n";
    let error = build(missing, &[]).expect_err("missing").to_string();
    assert!(error.contains("/nonexistent/script.toml"), "{error}");
    let garbage_json = tempfile::Builder::new().suffix(".json").tempfile().expect("temp");
    std::fs::write(garbage_json.path(), b"\xff\xfe{").expect("write");
    let toml =
        format!("[[backends]]\nname = \"s\"\nprovider = \"scripted\"\npath = \"{}\"\n", garbage_json.path().display());
    assert!(build(&toml, &[]).is_err());
}
