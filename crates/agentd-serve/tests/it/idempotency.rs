//! Idempotent routes against a real SQLite state store.

use std::sync::Arc;

use agentd_store::{OpenOptions, SqliteStore, Store};
use serde_json::{Value, json};

use crate::support::{self, Setup, client, start_in};

fn store(dir: &std::path::Path) -> Arc<dyn Store> {
    Arc::new(SqliteStore::open(&dir.join("state"), OpenOptions::default()).expect("store"))
}

const GRAPH: &str = r#"
[[start_nodes]]
name = "main"
source = "http"
entry_node = "route"

[[nodes]]
id = "route"
type = "switch"
expr = "trigger.mode"

[[nodes]]
id = "answer"
type = "respond"
status = 201
content_type = "application/json"
body_template = "{\"order\": \"{{order.id}}\"}"
input_from = "trigger"

[[nodes]]
id = "boom"
type = "fail"
reason = "try again"

[[edges]]
from = "route"
to = "answer"
when = "ok"

[[edges]]
from = "route"
to = "boom"
when = "fail"

[[http_routes]]
method = "POST"
path = "/orders"
start_node = "main"
idempotency_key = "trigger.order.id"
"#;

#[tokio::test]
async fn redelivery_replays_and_failures_stay_retryable() {
    let keep = tempfile::tempdir().expect("dir");
    let setup = Setup { store: Some(store(keep.path())), ..Setup::default() };
    let server = start_in(|_| format!("name = \"idem_wf\"\n{GRAPH}"), setup).await.expect("start");
    let http = client();
    let url = server.url("/orders");
    let first = http.post(&url).json(&json!({"mode": "ok", "order": {"id": "A1"}})).send().await.expect("send");
    assert_eq!(first.status(), 201);
    let first_id = first.headers()["x-agentd-execution-id"].clone();
    assert!(!first.headers().contains_key("x-agentd-idempotent-replay"));
    let first_body = first.bytes().await.expect("body");
    assert_eq!(&first_body[..], br#"{"order": "A1"}"#);

    let again =
        http.post(&url).json(&json!({"mode": "ok", "order": {"id": "A1"}, "extra": 1})).send().await.expect("send");
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["x-agentd-idempotent-replay"], "true");
    assert_eq!(again.headers()["x-agentd-execution-id"], first_id);
    assert_eq!(again.headers()["content-type"], "application/json");
    assert_eq!(again.bytes().await.expect("body"), first_body);

    // A failed delivery is not stored: the same key runs again.
    for _ in 0..2 {
        let failed = http.post(&url).json(&json!({"mode": "fail", "order": {"id": "B2"}})).send().await.expect("send");
        assert_eq!(failed.status(), 422);
        assert!(!failed.headers().contains_key("x-agentd-idempotent-replay"));
    }
    let fixed = http.post(&url).json(&json!({"mode": "ok", "order": {"id": "B2"}})).send().await.expect("send");
    assert_eq!(fixed.status(), 201);

    let missing = http.post(&url).json(&json!({"mode": "ok"})).send().await.expect("send");
    assert_eq!(missing.status(), 400);
    let body: Value = missing.json().await.expect("json");
    assert_eq!(body["error"], "idempotency key `trigger.order.id` did not resolve to a scalar in the request payload");
    server.stop().await;
}

#[tokio::test]
async fn concurrent_duplicate_gets_409() {
    let keep = tempfile::tempdir().expect("dir");
    let setup = Setup { store: Some(store(keep.path())), ..Setup::default() };
    let server = start_in(
        |_| {
            format!(
                "name = \"idem_conflict\"\n{}\n[[http_routes]]\nmethod = \"POST\"\npath = \"/slow\"\nstart_node = \"main\"\nidempotency_key = \"body_sha256\"\n",
                support::waiting_graph()
            )
        },
        setup,
    )
    .await
    .expect("start");
    let gate = support::gate_path(server.dir.path());
    let body = support::waiting_body(&gate, json!({"id": 1}));
    let http = client();
    let first = {
        let request = http.post(server.url("/slow")).json(&body);
        tokio::spawn(async move { request.send().await })
    };
    let watched = server.server.clone();
    support::eventually(|| watched.in_flight() == 1).await;
    let duplicate = http.post(server.url("/slow")).json(&body).send().await.expect("send");
    assert_eq!(duplicate.status(), 409);
    let text: Value = duplicate.json().await.expect("json");
    assert_eq!(text, json!({"error": "a delivery with this idempotency key is in flight"}));
    std::fs::write(&gate, b"").expect("gate");
    let first = first.await.expect("task").expect("answer");
    assert_eq!(first.status(), 200);
    let replay = http.post(server.url("/slow")).json(&body).send().await.expect("send");
    assert_eq!(replay.headers()["x-agentd-idempotent-replay"], "true");
    server.stop().await;
}

#[tokio::test]
async fn idempotent_routes_need_a_store() {
    let result = start_in(|_| format!("name = \"idem_nostore\"\n{GRAPH}"), Setup::default()).await;
    assert!(result.err().expect("refused").to_string().contains("no state store"));
}
