//! Bearer, Basic and HMAC authentication through real requests.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::support::{ECHO, client, seen_trigger, start};

const AUTH: &str = r#"
[auth.bearer.ops]
tokens = ["literal-token"]
tokens_env = "OPS_TOKENS"

[auth.basic.twilio]
credentials = ["ada:s3cret"]

[auth.hmac.shop]
secret = "shhh"
header = "X-Shop-Signature"

[[http_routes]]
method = "POST"
path = "/bearer"
start_node = "main"
auth = "bearer:ops"

[[http_routes]]
method = "POST"
path = "/basic"
start_node = "main"
auth = "basic:twilio"

[[http_routes]]
method = "POST"
path = "/hmac"
start_node = "main"
auth = " hmac:shop "

[server]
metrics_auth = "bearer:ops"
"#;

async fn denied(response: reqwest::Response) -> (u16, Option<String>, String) {
    let status = response.status().as_u16();
    let challenge = response.headers().get("www-authenticate").map(|v| v.to_str().expect("ascii").to_string());
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "unauthorized");
    (status, challenge, body["detail"].as_str().expect("detail").to_string())
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn bearer_accepts_literal_and_rotated_secret_tokens() {
    let server = start(&format!("name = \"auth_bearer\"\n{ECHO}\n{AUTH}")).await;
    let http = client();
    let url = server.url("/bearer");
    let response = http.post(&url).bearer_auth("literal-token").json(&json!({})).send().await.expect("send");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(seen_trigger(&body)["principal"], json!({"kind": "bearer", "name": "ops"}));

    let (status, challenge, detail) = denied(http.post(&url).send().await.expect("send")).await;
    assert_eq!((status, challenge.as_deref(), detail.as_str()), (401, Some("Bearer"), "missing Authorization header"));
    let response = http.post(&url).bearer_auth("wrong").send().await.expect("send");
    assert_eq!(denied(response).await.2, "bearer token does not match");
    let response = http.post(&url).header("authorization", "Basic abc").send().await.expect("send");
    assert_eq!(denied(response).await.2, "Authorization header does not use Bearer scheme");

    // Secret-backed tokens are resolved per request: rotation needs no reload.
    let response = http.post(&url).bearer_auth("rotated").send().await.expect("send");
    assert_eq!(response.status(), 401);
    server.secrets.set("OPS_TOKENS", "first\nrotated\n");
    let response = http.post(&url).bearer_auth("rotated").json(&json!({})).send().await.expect("send");
    assert_eq!(response.status(), 200);
    assert!(server.events().contains(&"http.auth_denied".to_string()));
    server.stop().await;
}

#[tokio::test]
async fn basic_checks_scheme_base64_and_credentials() {
    let server = start(&format!("name = \"auth_basic\"\n{ECHO}\n{AUTH}")).await;
    let http = client();
    let url = server.url("/basic");
    let response = http.post(&url).basic_auth("ada", Some("s3cret")).json(&json!({})).send().await.expect("send");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(seen_trigger(&body)["principal"], json!({"kind": "basic", "name": "ada"}));
    let response = http.post(&url).basic_auth("ada", Some("wrong")).send().await.expect("send");
    let (status, challenge, detail) = denied(response).await;
    assert_eq!(
        (status, challenge.as_deref(), detail.as_str()),
        (401, Some("Basic realm=\"agentd\""), "basic credentials do not match")
    );
    let response = http.post(&url).header("authorization", "Basic !!!").send().await.expect("send");
    assert_eq!(denied(response).await.2, "Basic credentials are not valid base64");
    let invalid_utf8 = base64::engine::general_purpose::STANDARD.encode([0xffu8, 0xfe, b':', b'x']);
    let response = http.post(&url).header("authorization", format!("basic {invalid_utf8}")).send().await.expect("send");
    assert_eq!(denied(response).await.2, "Basic credentials decode to invalid UTF-8");
    server.stop().await;
}

#[tokio::test]
async fn hmac_verifies_the_raw_body() {
    let server = start(&format!("name = \"auth_hmac\"\n{ECHO}\n{AUTH}")).await;
    let http = client();
    let url = server.url("/hmac");
    let body = br#"{"order": 1}"#.to_vec();
    let signature = format!("sha256={}", sign("shhh", &body).to_uppercase());
    let response =
        http.post(&url).header("x-shop-signature", &signature).body(body.clone()).send().await.expect("send");
    assert_eq!(response.status(), 200);
    let seen: Value = response.json().await.expect("json");
    assert_eq!(seen_trigger(&seen)["principal"], json!({"kind": "hmac", "name": "shop"}));
    assert_eq!(seen_trigger(&seen)["order"], 1);

    let wrong = format!("sha256={}", sign("other", &body));
    let response = http.post(&url).header("x-shop-signature", wrong).body(body.clone()).send().await.expect("send");
    assert_eq!(denied(response).await.2, "signature does not match");
    let tampered = format!("sha256={}", sign("shhh", b"{}"));
    let response = http.post(&url).header("x-shop-signature", tampered).body(body.clone()).send().await.expect("send");
    assert_eq!(denied(response).await.2, "signature does not match");
    let response = http.post(&url).body(body.clone()).send().await.expect("send");
    assert_eq!(denied(response).await.2, "missing signature header `X-Shop-Signature`");
    let response =
        http.post(&url).header("x-shop-signature", sign("shhh", &body)).body(body.clone()).send().await.expect("send");
    assert_eq!(denied(response).await.2, "signature header `X-Shop-Signature` missing expected prefix `sha256=`");
    let response = http.post(&url).header("x-shop-signature", "sha256=zz").body(body).send().await.expect("send");
    assert_eq!(denied(response).await.2, "signature header `X-Shop-Signature` is not valid hex");
    server.stop().await;
}

#[tokio::test]
async fn metrics_auth_protects_metrics_but_not_health() {
    let server = start(&format!("name = \"auth_metrics\"\n{ECHO}\n{AUTH}")).await;
    let http = client();
    assert_eq!(http.get(server.url("/metrics")).send().await.expect("send").status(), 401);
    let response = http.get(server.url("/metrics")).bearer_auth("literal-token").send().await.expect("send");
    assert_eq!(response.status(), 200);
    assert_eq!(http.get(server.url("/healthz")).send().await.expect("send").status(), 200);
    server.stop().await;
}
