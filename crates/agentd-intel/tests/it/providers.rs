//! The same behaviour suite against every HTTP provider, each served by a local fake that
//! speaks that provider's wire format.

use std::time::Duration;

use agentd_intel::{CompletionRequest, Error, Message, Usage};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::support::fake::{FakeProvider, Kind, Reply};
use crate::support::{GOOD_KEY, Retries, closed_port, deadline, provider_backends, raw_server};

fn request() -> CompletionRequest {
    CompletionRequest {
        messages: vec![Message::system("be brief"), Message::user("hello there")],
        max_tokens: Some(64),
        temperature: Some(0.2),
        ..CompletionRequest::default()
    }
}

async fn fake_and_backends(kind: Kind, extra: &str) -> (FakeProvider, agentd_intel::Backends) {
    let fake = FakeProvider::start(kind, Some(GOOD_KEY)).await;
    let backends = provider_backends(kind, &fake, GOOD_KEY, extra);
    (fake, backends)
}

async fn call(backends: &agentd_intel::Backends, observer: &Retries) -> Result<agentd_intel::Completion, Error> {
    backends.complete_observed("b", &request(), deadline(30), &CancellationToken::new(), observer).await
}

async fn happy_path_and_usage(kind: Kind) {
    let (fake, backends) = fake_and_backends(kind, "").await;
    fake.push([Reply::text("general kenobi", 11, 7)]);
    let completion = call(&backends, &Retries::default()).await.expect("completion");
    assert_eq!(completion.text, "general kenobi");
    assert_eq!(completion.usage, Usage { prompt_tokens: 11, completion_tokens: 7 });
    assert_eq!(completion.backend, "b");
    assert!(completion.model.contains("test"), "{}", completion.model);
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    let header = |name: &str| sent.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(header("user-agent").starts_with("agentd/"), "{}", header("user-agent"));
    assert_eq!(header("accept"), "application/json");
    let expected_path = match kind {
        Kind::Anthropic => "/v1/messages",
        Kind::OpenAi | Kind::Compatible => "/v1/chat/completions",
        Kind::Gemini => "/v1beta/models/gemini-test:generateContent",
    };
    assert_eq!(sent.path, expected_path);
    let body = &sent.body;
    match kind {
        Kind::Anthropic => {
            assert_eq!(body["system"], "be brief");
            assert_eq!(body["max_tokens"], 64);
            assert_eq!(body["messages"], serde_json::json!([{"role": "user", "content": "hello there"}]));
        }
        Kind::OpenAi | Kind::Compatible => {
            let cap = if kind == Kind::OpenAi { "max_completion_tokens" } else { "max_tokens" };
            assert_eq!(body[cap], 64);
            assert_eq!(body["messages"][0], serde_json::json!({"role": "system", "content": "be brief"}));
        }
        Kind::Gemini => {
            assert_eq!(body["system_instruction"]["parts"][0]["text"], "be brief");
            assert_eq!(body["generationConfig"]["maxOutputTokens"], 64);
            assert!(body.get("model").is_none());
        }
    }
    let temperature =
        if kind == Kind::Gemini { &body["generationConfig"]["temperature"] } else { &body["temperature"] };
    assert_eq!(temperature, 0.2);
}

async fn retry_after_then_success(kind: Kind) {
    let (fake, backends) = fake_and_backends(kind, "").await;
    fake.push([Reply::Status { status: 429, retry_after: Some("1".into()) }, Reply::text("after wait", 2, 3)]);
    let retries = Retries::default();
    let started = Instant::now();
    let completion = call(&backends, &retries).await.expect("retried");
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After honoured");
    assert_eq!(completion.text, "after wait");
    assert_eq!(completion.usage.total(), 5, "the failed attempt bills nothing");
    let events = retries.events();
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].attempt, events[0].status, events[0].delay), (1, Some(429), Duration::from_secs(1)));
    assert!(events[0].reason.contains(&format!("{} returned 429", kind.provider())), "{}", events[0].reason);
    assert_eq!(fake.requests().len(), 2);
}

async fn server_errors_exhaust_retries(kind: Kind) {
    let (fake, backends) = fake_and_backends(kind, "max_retries = 2").await;
    fake.push([Reply::status(500), Reply::status(503), Reply::status(500), Reply::text("too late", 1, 1)]);
    let retries = Retries::default();
    let error = call(&backends, &retries).await.expect_err("exhausted");
    assert_eq!(fake.requests().len(), 3, "1 + max_retries attempts");
    assert_eq!(error.status(), Some(500));
    let text = error.to_string();
    assert!(text.starts_with(&format!("backend `b`: {} returned 500: ", kind.provider())), "{text}");
    assert!(text.contains("scripted failure"), "body excerpt: {text}");
    let delays: Vec<Duration> = retries.events().iter().map(|e| e.delay).collect();
    assert_eq!(delays.len(), 2);
    assert!(delays[0] >= Duration::from_millis(400) && delays[0] <= Duration::from_millis(600), "{delays:?}");
    assert!(delays[1] >= Duration::from_millis(800) && delays[1] <= Duration::from_millis(1200), "{delays:?}");
}

async fn client_errors_are_not_retried(kind: Kind) {
    let (fake, backends) = fake_and_backends(kind, "").await;
    fake.push([Reply::status(400)]);
    let error = call(&backends, &Retries::default()).await.expect_err("400");
    assert_eq!(error.status(), Some(400));
    assert_eq!(fake.requests().len(), 1);
}

async fn request_timeout(kind: Kind) {
    let (fake, backends) = fake_and_backends(kind, "timeout_secs = 1\nmax_retries = 0").await;
    fake.push([Reply::Delay(Duration::from_secs(10), Box::new(Reply::text("late", 1, 1)))]);
    let started = Instant::now();
    let error = call(&backends, &Retries::default()).await.expect_err("timed out");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(error.detail(), format!("{}: request timed out after 1 s", kind.provider()));
    assert!(!error.is_deadline());
}

async fn run_deadline(kind: Kind) {
    let (fake, backends) = fake_and_backends(kind, "").await;
    fake.push([Reply::Delay(Duration::from_secs(10), Box::new(Reply::text("late", 1, 1)))]);
    let started = Instant::now();
    let deadline = Instant::now() + Duration::from_millis(300);
    let error = backends.complete("b", &request(), deadline, &CancellationToken::new()).await.expect_err("deadline");
    assert!(error.is_deadline(), "{error}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

async fn non_json_body(kind: Kind) {
    let (fake, backends) = fake_and_backends(kind, "").await;
    fake.push([Reply::Raw { status: 200, content_type: "text/html", body: "<html>gateway page</html>".into() }]);
    let error = call(&backends, &Retries::default()).await.expect_err("not JSON");
    assert!(error.detail().starts_with(&format!("{} response is not JSON: ", kind.provider())), "{error}");
    assert_eq!(fake.requests().len(), 1, "bad 2xx bodies are not retried");
}

async fn empty_answer(kind: Kind) {
    let (fake, backends) = fake_and_backends(kind, "").await;
    fake.push([Reply::Empty]);
    let error = call(&backends, &Retries::default()).await.expect_err("no text");
    assert_eq!(error.detail(), format!("{} response missing {}", kind.provider(), kind.missing_path()));
}

async fn huge_response(kind: Kind, chunked: bool) {
    let (fake, backends) = fake_and_backends(kind, "").await;
    fake.push([Reply::Huge { bytes: 17 * 1024 * 1024, chunked }]);
    let error = call(&backends, &Retries::default()).await.expect_err("too large");
    assert_eq!(error.detail(), format!("{}: response body exceeds 16777216 bytes", kind.provider()));
}

async fn wrong_key(kind: Kind) {
    let fake = FakeProvider::start(kind, Some(GOOD_KEY)).await;
    let wrong = "sk-wrong-SECRET-value-98765";
    let backends = provider_backends(kind, &fake, wrong, "");
    let error = call(&backends, &Retries::default()).await.expect_err("rejected");
    let text = error.to_string();
    assert!(text.contains("backend `b`"), "{text}");
    let expected_status = if kind == Kind::Gemini { 400 } else { 401 };
    assert!(text.contains(&format!("{} returned {expected_status}", kind.provider())), "{text}");
    assert!(!text.contains(wrong), "the key leaked: {text}");
    assert!(!format!("{error:?}").contains(wrong), "the key leaked into Debug");
    assert!(text.contains("<redacted>"), "the echoed key is scrubbed: {text}");
    assert_eq!(fake.requests().len(), 1);
}

async fn connection_refused_is_retried(kind: Kind) {
    let port = closed_port().await;
    let toml = crate::support::backend_toml(kind, &format!("http://{port}"), "max_retries = 1");
    let backends = crate::support::build(&toml, &[("TEST_KEY", GOOD_KEY)]).expect("backends");
    let retries = Retries::default();
    let error = call(&backends, &retries).await.expect_err("refused");
    assert_eq!(retries.events().len(), 1, "connection failures are retried");
    assert!(error.detail().starts_with(&format!("{}: connection failed", kind.provider())), "{error}");
    assert!(!error.to_string().contains(GOOD_KEY));
}

async fn cancellation(kind: Kind) {
    let (fake, backends) = fake_and_backends(kind, "").await;
    fake.push([Reply::Delay(Duration::from_secs(10), Box::new(Reply::text("late", 1, 1)))]);
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        trigger.cancel();
    });
    let error = backends.complete("b", &request(), deadline(30), &cancel).await.expect_err("cancelled");
    assert!(matches!(error, Error::Cancelled { .. }), "{error}");
}

macro_rules! provider_suite {
    ($module:ident, $kind:expr) => {
        mod $module {
            use super::*;

            #[tokio::test]
            async fn happy_path_and_usage() {
                super::happy_path_and_usage($kind).await;
            }
            #[tokio::test]
            async fn retry_after_then_success() {
                super::retry_after_then_success($kind).await;
            }
            #[tokio::test]
            async fn server_errors_exhaust_retries() {
                super::server_errors_exhaust_retries($kind).await;
            }
            #[tokio::test]
            async fn client_errors_are_not_retried() {
                super::client_errors_are_not_retried($kind).await;
            }
            #[tokio::test]
            async fn request_timeout() {
                super::request_timeout($kind).await;
            }
            #[tokio::test]
            async fn run_deadline() {
                super::run_deadline($kind).await;
            }
            #[tokio::test]
            async fn non_json_body() {
                super::non_json_body($kind).await;
            }
            #[tokio::test]
            async fn empty_answer() {
                super::empty_answer($kind).await;
            }
            #[tokio::test]
            async fn huge_response_with_length() {
                super::huge_response($kind, false).await;
            }
            #[tokio::test]
            async fn huge_response_chunked() {
                super::huge_response($kind, true).await;
            }
            #[tokio::test]
            async fn wrong_key() {
                super::wrong_key($kind).await;
            }
            #[tokio::test]
            async fn connection_refused_is_retried() {
                super::connection_refused_is_retried($kind).await;
            }
            #[tokio::test]
            async fn cancellation() {
                super::cancellation($kind).await;
            }
        }
    };
}

provider_suite!(anthropic, Kind::Anthropic);
provider_suite!(openai, Kind::OpenAi);
provider_suite!(openai_compatible, Kind::Compatible);
provider_suite!(gemini, Kind::Gemini);

#[tokio::test]
async fn truncated_body_is_a_clear_error() {
    let addr =
        raw_server(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"content\": [")
            .await;
    let toml = crate::support::backend_toml(Kind::Anthropic, &format!("http://{addr}"), "");
    let backends = crate::support::build(&toml, &[("TEST_KEY", GOOD_KEY)]).expect("backends");
    let error = call(&backends, &Retries::default()).await.expect_err("truncated");
    assert!(error.detail().starts_with("anthropic: reading the response body failed"), "{error}");
}

#[tokio::test]
async fn garbage_http_answer_is_a_clear_error() {
    let addr = raw_server(b"SSH-2.0-OpenSSH_9.6\r\n").await;
    let toml = crate::support::backend_toml(Kind::OpenAi, &format!("http://{addr}"), "max_retries = 0");
    let backends = crate::support::build(&toml, &[("TEST_KEY", GOOD_KEY)]).expect("backends");
    let error = call(&backends, &Retries::default()).await.expect_err("garbage");
    assert!(error.detail().starts_with("openai: "), "{error}");
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let addr =
        raw_server(b"HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.1:1/\r\ncontent-length: 0\r\n\r\n")
            .await;
    let toml = crate::support::backend_toml(Kind::Anthropic, &format!("http://{addr}"), "");
    let backends = crate::support::build(&toml, &[("TEST_KEY", GOOD_KEY)]).expect("backends");
    let error = call(&backends, &Retries::default()).await.expect_err("redirect");
    assert_eq!(error.status(), Some(307));
}

#[tokio::test]
async fn retry_after_http_date_and_deadline_cap() {
    let (fake, backends) = fake_and_backends(Kind::Anthropic, "").await;
    // A date in the past means "retry now".
    fake.push([
        Reply::Status { status: 529, retry_after: Some("Sun, 06 Nov 1994 08:49:37 GMT".into()) },
        Reply::text("ok", 1, 1),
    ]);
    let retries = Retries::default();
    call(&backends, &retries).await.expect("retried at once");
    assert_eq!(retries.events()[0].delay, Duration::ZERO);
    // A wait that would end after the run deadline is not taken: the last error returns at once.
    fake.push([Reply::Status { status: 429, retry_after: Some("30".into()) }]);
    let started = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(5);
    let error = backends.complete("b", &request(), deadline, &CancellationToken::new()).await.expect_err("no retry");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(error.status(), Some(429));
}

#[tokio::test]
async fn keyless_compatible_server_and_extra_headers() {
    let fake = FakeProvider::start(Kind::Compatible, None).await;
    let toml = format!(
        "[[backends]]\nname = \"local\"\nprovider = \"openai-compatible\"\nmodel = \"qwen3\"\nbase_url = \"{}/v1/\"\nmax_tokens = 33\n\
         headers = {{ \"X-Tenant\" = \"acme\", \"X-Gateway-Key\" = \"gk {{{{secret:GATEWAY_KEY}}}}\" }}\n",
        fake.base_url()
    );
    let backends = crate::support::build(&toml, &[("GATEWAY_KEY", "gateway-secret")]).expect("backends");
    let completion = backends
        .complete("local", &CompletionRequest::prompt("hi"), deadline(30), &CancellationToken::new())
        .await
        .expect("keyless call");
    assert_eq!(completion.text, "ok");
    let sent = &fake.requests()[0];
    assert!(sent.headers.get("authorization").is_none(), "no key, no authorization header");
    assert_eq!(sent.headers["x-tenant"], "acme");
    assert_eq!(sent.headers["x-gateway-key"], "gk gateway-secret");
    assert_eq!(sent.body["max_tokens"], 33, "backend max_tokens is the default cap");
    assert!(sent.body.get("temperature").is_none(), "temperature only when set");
}

#[tokio::test]
async fn default_output_cap_is_1024() {
    let (fake, backends) = fake_and_backends(Kind::Anthropic, "").await;
    backends
        .complete("b", &CompletionRequest::prompt("x"), deadline(30), &CancellationToken::new())
        .await
        .expect("call");
    assert_eq!(fake.requests()[0].body["max_tokens"], 1024);
}

#[tokio::test]
async fn api_key_is_resolved_per_request() {
    use std::sync::{Arc, Mutex};

    struct Rotating(Mutex<Option<String>>);
    impl agentd_intel::SecretSource for Rotating {
        fn get(&self, _name: &str) -> Option<String> {
            self.0.lock().unwrap().clone()
        }
    }
    let fake = FakeProvider::start(Kind::Gemini, Some(GOOD_KEY)).await;
    let secrets = Arc::new(Rotating(Mutex::new(Some("old-key-1111".into()))));
    let toml = crate::support::backend_toml(Kind::Gemini, &fake.base_url(), "");
    let configs = crate::support::configs(&toml);
    let backends =
        agentd_intel::Backends::build(&configs.backends, &agentd_intel::CliIntel::default(), secrets.clone())
            .expect("startup probe passes");
    let cancel = CancellationToken::new();
    let first = backends.complete("b", &request(), deadline(30), &cancel).await.expect_err("old key rejected");
    assert!(!first.to_string().contains("old-key-1111"));
    *secrets.0.lock().unwrap() = Some(GOOD_KEY.into());
    backends.complete("b", &request(), deadline(30), &cancel).await.expect("rotated key works without a restart");
    *secrets.0.lock().unwrap() = None;
    let gone = backends.complete("b", &request(), deadline(30), &cancel).await.expect_err("secret gone");
    assert_eq!(gone.detail(), "gemini: secret `TEST_KEY` could not be resolved");
}
