//! Body decoding per content type, schemas, exposed headers and principal placement.

use serde_json::{Value, json};

use crate::support::{ECHO, client, seen_trigger, start};

fn workflow(name: &str, extra: &str) -> String {
    format!(
        "name = \"{name}\"\n{ECHO}\n[[http_routes]]\nmethod = \"POST\"\npath = \"/in\"\nstart_node = \"main\"\n{extra}"
    )
}

async fn post(url: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
    let response = client().post(url).header("content-type", content_type).body(body).send().await.expect("send");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

#[tokio::test]
async fn json_form_and_empty_bodies() {
    let server = start(&workflow("bodies_ok", "")).await;
    let url = server.url("/in");
    let (status, body) = post(&url, "application/json; charset=utf-8", br#"{"a":[1,2]}"#.to_vec()).await;
    assert_eq!(status, 200);
    assert_eq!(seen_trigger(&body)["a"], json!([1, 2]));
    let (_, body) = post(&url, "Application/X-WWW-Form-URLencoded", b"name=Ada+L&x=%41&flag".to_vec()).await;
    assert_eq!(seen_trigger(&body)["name"], "Ada L");
    assert_eq!(seen_trigger(&body)["x"], "A");
    assert_eq!(seen_trigger(&body)["flag"], "");
    let (_, body) = post(&url, "text/plain", Vec::new()).await;
    assert_eq!(seen_trigger(&body), &json!({"kind": "http", "principal": {"kind": "anonymous", "name": ""}}));
    // A JSON array keeps its shape; the principal sits next to it in `trigger`.
    let (_, body) = post(&url, "application/json", b"[1,2]".to_vec()).await;
    assert_eq!(seen_trigger(&body)["input"], json!([1, 2]));
    assert_eq!(seen_trigger(&body)["principal"]["kind"], "anonymous");
    server.stop().await;
}

#[tokio::test]
async fn garbage_bodies_get_precise_400s() {
    let server = start(&workflow("bodies_bad", "")).await;
    let url = server.url("/in");
    let (status, body) = post(&url, "application/json", b"{nope".to_vec()).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().expect("text").starts_with("invalid JSON body: "), "{body}");
    let (status, body) = post(&url, "application/x-www-form-urlencoded", b"a=%G1".to_vec()).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid form body: malformed percent escape");
    let (status, body) = post(&url, "application/x-www-form-urlencoded", b"a=%FF".to_vec()).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid form body: not UTF-8");
    let (status, body) = post(&url, "multipart/form-data", b"--x\r\n".to_vec()).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid multipart body: missing boundary parameter");
    let (status, _) = post(&url, "multipart/form-data; boundary=xyz", b"garbage".to_vec()).await;
    assert_eq!(status, 400);
    server.stop().await;
}

#[tokio::test]
async fn multipart_text_parts_become_strings_and_files_are_dropped() {
    let server = start(&workflow("multipart_wf", "")).await;
    let mut binary = vec![0u8, 159, 146, 150, 255];
    binary.extend_from_slice(b"tail");
    let form = reqwest::multipart::Form::new()
        .text("title", "hello")
        .text("title", "last wins")
        .text("note", "ünïcode")
        .part("upload", reqwest::multipart::Part::bytes(binary).file_name("blob.bin"));
    let response = client().post(server.url("/in")).multipart(form).send().await.expect("send");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    let seen = seen_trigger(&body);
    assert_eq!(seen["title"], "last wins");
    assert_eq!(seen["note"], "ünïcode");
    assert!(seen.get("upload").is_none());
    let dropped = server.audit.events().into_iter().find(|(_, name, _)| name == "http.multipart_file_dropped");
    let (_, _, fields) = dropped.expect("file drop audited");
    assert_eq!(fields["field"], "upload");
    assert_eq!(fields["bytes"], 9);
    // A text part that is not UTF-8 is refused.
    let form = reqwest::multipart::Form::new().part("bad", reqwest::multipart::Part::bytes(vec![0xff, 0xfe]));
    let response = client().post(server.url("/in")).multipart(form).send().await.expect("send");
    assert_eq!(response.status(), 400);
    server.stop().await;
}

#[tokio::test]
async fn input_schema_is_enforced() {
    let extra = r#"input_schema = { type = "object", required = ["id"], properties = { id = { type = "integer" } } }"#;
    let server = start(&workflow("schema_wf", extra)).await;
    let url = server.url("/in");
    let (status, _) = post(&url, "application/json", br#"{"id": 3}"#.to_vec()).await;
    assert_eq!(status, 200);
    let (status, body) = post(&url, "application/json", br#"{"id": "x"}"#.to_vec()).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "request body does not match input_schema");
    assert!(body["details"][0].as_str().expect("detail").starts_with("/id: "), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn exposed_headers_reach_the_workflow() {
    let server = start(&workflow("expose_wf", r#"expose_headers = ["X-Shop-Topic"]"#)).await;
    let response = client()
        .post(server.url("/in"))
        .header("x-shop-topic", "orders/create")
        .header("x-other", "hidden")
        .json(&json!({"headers": "overwritten"}))
        .send()
        .await
        .expect("send");
    let body: Value = response.json().await.expect("json");
    assert_eq!(seen_trigger(&body)["headers"], json!({"x-shop-topic": "orders/create"}));
    server.stop().await;
}

#[tokio::test]
async fn credential_headers_cannot_be_exposed() {
    let text = workflow("expose_bad", r#"expose_headers = ["Cookie"]"#);
    let result = crate::support::start_in(move |_| text, Default::default()).await;
    let error = result.err().expect("startup refused");
    assert!(error.to_string().contains("cannot be exposed"), "{error}");
}
