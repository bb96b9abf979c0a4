//! OIDC/JWT against the real oauth2-mock-server (npm), started per test on an ephemeral port.
//! Install it with `scripts/deps/30-oidc-mock.sh`; without it these tests fail.

use std::path::PathBuf;
use std::process::Stdio;

use base64::Engine as _;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

use crate::support::{ECHO, Setup, client, seen_trigger, start_in};

/// The running mock issuer.
struct Issuer {
    issuer: String,
    port: u16,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    _child: Child,
}

fn module_path() -> PathBuf {
    let root =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-deps/oidc/node_modules/oauth2-mock-server");
    let module = root.join("dist/index.mjs");
    assert!(
        module.exists(),
        "oauth2-mock-server is not installed at {}: run scripts/deps/30-oidc-mock.sh",
        root.display()
    );
    module
}

impl Issuer {
    async fn start() -> Issuer {
        let module = module_path();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/oidc_issuer.mjs");
        let mut child = tokio::process::Command::new("node")
            .arg(script)
            .arg(module)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node must be installed to run the OIDC tests");
        let stdin = child.stdin.take().expect("stdin");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = lines.next_line().await.expect("read").expect("issuer line");
        let started: Value = serde_json::from_str(&first).expect("json");
        Issuer {
            issuer: started["issuer"].as_str().expect("issuer").to_string(),
            port: started["port"].as_u64().expect("port") as u16,
            stdin,
            lines,
            _child: child,
        }
    }

    async fn command(&mut self, line: &str) -> String {
        self.stdin.write_all(format!("{line}\n").as_bytes()).await.expect("write");
        let answer = self.lines.next_line().await.expect("read").expect("answer");
        assert!(!answer.starts_with("error"), "{answer}");
        answer
    }

    async fn token(&mut self, options: Value) -> String {
        self.command(&format!("token {options}")).await
    }

    fn jwks_url(&self) -> String {
        format!("http://localhost:{}/jwks", self.port)
    }
}

fn workflow(issuer: &Issuer, key_source: &str) -> String {
    format!(
        r#"name = "oidc_wf"
{ECHO}
[auth.oidc.corp]
issuer = "{issuer}"
audience = ["agentd"]
{key_source}
jwks_min_refresh_secs = 0
expose_claims = ["email"]

[[http_routes]]
method = "POST"
path = "/oidc"
start_node = "main"
auth = "oidc:corp"
"#,
        issuer = issuer.issuer
    )
}

async fn call(url: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = client().post(url).json(&json!({"x": 1}));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    if status == 401 {
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
    }
    (status, response.json().await.expect("json"))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[tokio::test]
async fn live_jwks_accepts_valid_tokens_and_rejects_bad_ones() {
    let mut issuer = Issuer::start().await;
    let source = format!("jwks_url = \"{}\"", issuer.jwks_url());
    let text = workflow(&issuer, &source);
    let server = start_in(move |_| text, Setup::default()).await.expect("start");
    let url = server.url("/oidc");
    let claims = json!({"claims": {"aud": "agentd", "sub": "user-7", "email": "u7@example.com"}});
    let good = issuer.token(claims.clone()).await;
    let (status, body) = call(&url, Some(&good)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        seen_trigger(&body)["principal"],
        json!({"kind": "oidc", "name": "user-7", "claims": {"email": "u7@example.com"}})
    );

    let detail = |body: &Value| body["detail"].as_str().expect("detail").to_string();
    let (status, body) = call(&url, None).await;
    assert_eq!((status, detail(&body).as_str()), (401, "oidc.missing-bearer"));
    let expired = issuer.token(json!({"expiresIn": -3600, "claims": {"aud": "agentd"}})).await;
    assert_eq!(detail(&call(&url, Some(&expired)).await.1), "oidc.expired");
    let no_exp = issuer.token(json!({"claims": {"aud": "agentd", "exp": null}})).await;
    assert_eq!(detail(&call(&url, Some(&no_exp)).await.1), "oidc.invalid");
    let future = issuer.token(json!({"claims": {"aud": "agentd", "nbf": 4_000_000_000u64}})).await;
    assert_eq!(detail(&call(&url, Some(&future)).await.1), "oidc.not-yet-valid");
    let wrong_audience = issuer.token(json!({"claims": {"aud": ["other"]}})).await;
    assert_eq!(detail(&call(&url, Some(&wrong_audience)).await.1), "oidc.bad-audience");
    let wrong_issuer = issuer.token(json!({"claims": {"aud": "agentd", "iss": "http://evil"}})).await;
    assert_eq!(detail(&call(&url, Some(&wrong_issuer)).await.1), "oidc.bad-issuer");

    // Flip one byte of the signature.
    let (head, signature) = good.rsplit_once('.').expect("jwt");
    let mut raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(signature).expect("b64");
    raw[0] ^= 0x01;
    let forged = format!("{head}.{}", b64(&raw));
    assert_eq!(detail(&call(&url, Some(&forged)).await.1), "oidc.bad-signature");
    assert_eq!(detail(&call(&url, Some("not-a-jwt")).await.1), "oidc.malformed");

    // Algorithm confusion: HS256 keyed with the public key bytes, and `none`.
    let jwks: Value = client().get(issuer.jwks_url()).send().await.expect("jwks").json().await.expect("json");
    let public_n = jwks["keys"][0]["n"].as_str().expect("n").to_string();
    let payload = json!({"iss": issuer.issuer, "aud": "agentd", "exp": 4_000_000_000u64, "sub": "mallory"});
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("k1".to_string());
    let hs = jsonwebtoken::encode(&header, &payload, &jsonwebtoken::EncodingKey::from_secret(public_n.as_bytes()))
        .expect("hs256");
    assert_eq!(detail(&call(&url, Some(&hs)).await.1), "oidc.algorithm-not-allowed");
    let none = format!("{}.{}.", b64(br#"{"alg":"none","kid":"k1","typ":"JWT"}"#), b64(payload.to_string().as_bytes()));
    assert_eq!(detail(&call(&url, Some(&none)).await.1), "oidc.algorithm-not-allowed");

    let unknown = issuer.token(json!({"kid": "k1", "claims": {"aud": "agentd"}})).await;
    let (head, rest) = unknown.split_once('.').expect("jwt");
    let mut header: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(head).expect("b64"))
            .expect("json");
    header["kid"] = json!("nobody");
    let relabelled = format!("{}.{rest}", b64(header.to_string().as_bytes()));
    assert_eq!(detail(&call(&url, Some(&relabelled)).await.1), "oidc.unknown-kid");

    // Key rotation: a token signed with a new key is accepted after one refetch of jwks_url.
    issuer.command("rotate k2").await;
    let rotated = issuer.token(json!({"kid": "k2", "claims": {"aud": "agentd", "sub": "user-8"}})).await;
    let (status, body) = call(&url, Some(&rotated)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(seen_trigger(&body)["principal"]["name"], "user-8");
    let events = server.events();
    assert!(events.contains(&"oidc.jwks_refreshed".to_string()), "{events:?}");
    assert!(events.contains(&"oidc.denied".to_string()));
    server.stop().await;
}

#[tokio::test]
async fn static_jwks_file_and_token_endpoint() {
    let mut issuer = Issuer::start().await;
    let jwks = client().get(issuer.jwks_url()).send().await.expect("jwks").text().await.expect("text");
    let text = workflow(&issuer, "jwks_file = \"jwks.json\"").replace("audience = [\"agentd\"]", "audience = []");
    let server = start_in(
        move |dir| {
            std::fs::write(dir.join("jwks.json"), jwks).expect("write");
            text
        },
        Setup::default(),
    )
    .await
    .expect("start");
    // A token from the issuer's real token endpoint.
    let answer: Value = client()
        .post(format!("http://127.0.0.1:{}/token", issuer.port))
        .form(&[("grant_type", "client_credentials"), ("scope", "read")])
        .basic_auth("client", Some("secret"))
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("json");
    let token = answer["access_token"].as_str().expect("token");
    let (status, body) = call(&server.url("/oidc"), Some(token)).await;
    assert_eq!(status, 200, "{body}");
    // A static key set does not learn new keys.
    issuer.command("rotate k9").await;
    let rotated = issuer.token(json!({"kid": "k9"})).await;
    assert_eq!(call(&server.url("/oidc"), Some(&rotated)).await.1["detail"], "oidc.unknown-kid");
    server.stop().await;
}

#[tokio::test]
async fn bad_oidc_bindings_fail_startup() {
    let issuer = Issuer::start().await;
    let hs = workflow(&issuer, &format!("jwks_url = \"{}\"\nalgorithms = [\"HS256\"]", issuer.jwks_url()));
    let error = start_in(move |_| hs, Setup::default()).await.err().expect("refused");
    assert!(error.to_string().contains("HS256"), "{error}");
    let unreachable = workflow(&issuer, "jwks_url = \"http://127.0.0.1:9/jwks\"");
    let error = start_in(move |_| unreachable, Setup::default()).await.err().expect("refused");
    assert!(error.to_string().contains("JWKS fetch from http://127.0.0.1:9/jwks failed"), "{error}");
}
