//! TLS termination and mTLS with rcgen-generated certificates; the client trusts only the test
//! CA (never accept-invalid-certs).

use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use serde_json::{Value, json};

use crate::support::{ECHO, Setup, seen_trigger, start_in};

struct Pki {
    server_ca_pem: String,
    client: reqwest::Identity,
    stranger: reqwest::Identity,
}

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("ca")
}

fn leaf(issuer: &CertifiedIssuer<'static, KeyPair>, cn: &str, sans: &[&str]) -> (String, String) {
    let mut params = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("params");
    params.distinguished_name.push(DnType::CommonName, cn);
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &**issuer).expect("signed");
    (cert.pem(), key.serialize_pem())
}

/// Writes server cert/key and the client CA into `dir`; returns what clients need.
fn pki(dir: &Path) -> Pki {
    let server_ca = ca("test server ca");
    let (cert, key) = leaf(&server_ca, "localhost", &["localhost"]);
    std::fs::write(dir.join("server.pem"), cert).expect("write");
    std::fs::write(dir.join("server.key"), key).expect("write");
    let client_ca = ca("test client ca");
    std::fs::write(dir.join("clients.pem"), client_ca.pem()).expect("write");
    let (client_cert, client_key) = leaf(&client_ca, "robot", &["Robot.Example.com"]);
    let client = reqwest::Identity::from_pem(format!("{client_cert}{client_key}").as_bytes()).expect("identity");
    let other_ca = ca("untrusted ca");
    let (stranger_cert, stranger_key) = leaf(&other_ca, "stranger", &["stranger.example.com"]);
    let stranger = reqwest::Identity::from_pem(format!("{stranger_cert}{stranger_key}").as_bytes()).expect("identity");
    Pki { server_ca_pem: server_ca.pem(), client, stranger }
}

fn tls_client(ca_pem: &str, identity: Option<reqwest::Identity>) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).expect("ca");
    let mut builder = reqwest::Client::builder().no_proxy().tls_certs_only([ca]);
    if let Some(identity) = identity {
        builder = builder.identity(identity);
    }
    builder.build().expect("client")
}

fn workflow(name: &str, mode: Option<&str>, route_auth: &str) -> String {
    let client_auth = mode
        .map(|m| format!("[server.tls.client_auth]\nmode = \"{m}\"\nca_file = \"clients.pem\"\n"))
        .unwrap_or_default();
    format!(
        "name = \"{name}\"\n{ECHO}\n[[http_routes]]\nmethod = \"POST\"\npath = \"/in\"\nstart_node = \"main\"\nauth = \"{route_auth}\"\n\n[server.tls]\ncert_file = \"server.pem\"\nkey_file = \"server.key\"\n{client_auth}"
    )
}

#[tokio::test]
async fn https_with_alpn_h2() {
    let mut pki_out = None;
    let server = start_in(
        |dir| {
            pki_out = Some(pki(dir));
            workflow("tls_plain", None, "none")
        },
        Setup::default(),
    )
    .await
    .expect("start");
    let pki = pki_out.expect("pki");
    let url = format!("https://localhost:{}/in", server.addr.port());
    let client = tls_client(&pki.server_ca_pem, None);
    let response = client.post(&url).json(&json!({"x": 1})).send().await.expect("send");
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    // A client that does not trust the CA fails the handshake.
    let untrusting = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([reqwest::Certificate::from_pem(ca("other").pem().as_bytes()).expect("ca")])
        .build()
        .expect("client");
    assert!(untrusting.post(&url).send().await.is_err());
    server.stop().await;
}

#[tokio::test]
async fn mtls_required_accepts_trusted_clients_only() {
    let mut pki_out = None;
    let server = start_in(
        |dir| {
            pki_out = Some(pki(dir));
            workflow("mtls_required", Some("required"), "mtls")
        },
        Setup::default(),
    )
    .await
    .expect("start");
    let pki = pki_out.expect("pki");
    let url = format!("https://localhost:{}/in", server.addr.port());
    let response =
        tls_client(&pki.server_ca_pem, Some(pki.client)).post(&url).json(&json!({})).send().await.expect("send");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    let principal = &seen_trigger(&body)["principal"];
    assert_eq!(principal["kind"], "mtls");
    assert!(principal["name"].as_str().expect("name").starts_with("sha256:"));
    assert_eq!(principal["name"].as_str().expect("name").len(), 71);
    assert_eq!(principal["cn"], "robot");
    assert_eq!(principal["sans"], json!(["robot.example.com"]));
    assert!(tls_client(&pki.server_ca_pem, None).post(&url).send().await.is_err(), "no client cert");
    assert!(tls_client(&pki.server_ca_pem, Some(pki.stranger)).post(&url).send().await.is_err(), "untrusted cert");
    server.stop().await;
}

#[tokio::test]
async fn mtls_optional_denies_mtls_routes_without_a_cert() {
    let mut pki_out = None;
    let server = start_in(
        |dir| {
            pki_out = Some(pki(dir));
            workflow("mtls_optional", Some("optional"), "mtls")
        },
        Setup::default(),
    )
    .await
    .expect("start");
    let pki = pki_out.expect("pki");
    let url = format!("https://localhost:{}/in", server.addr.port());
    let response = tls_client(&pki.server_ca_pem, None).post(&url).send().await.expect("send");
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["detail"], "mtls required but no client cert was presented at the TLS layer");
    let response =
        tls_client(&pki.server_ca_pem, Some(pki.client)).post(&url).json(&json!({})).send().await.expect("send");
    assert_eq!(response.status(), 200);
    server.stop().await;
}

#[tokio::test]
async fn certificate_reload_serves_the_new_chain() {
    let mut pki_out = None;
    let server = start_in(
        |dir| {
            pki_out = Some(pki(dir));
            workflow("tls_reload", None, "none")
        },
        Setup::default(),
    )
    .await
    .expect("start");
    let old = pki_out.expect("pki");
    let dir = server.dir.path().to_path_buf();
    let fresh = pki(&dir);
    let next = crate::support::workflow(&workflow("tls_reload", None, "none"), &dir);
    let engine = crate::support::engine(&next, server.audit.clone(), &dir);
    let report = server.server.reload(next, engine).await.expect("reload");
    assert!(report.tls_reloaded);
    let url = format!("https://localhost:{}/in", server.addr.port());
    let response = tls_client(&fresh.server_ca_pem, None).post(&url).json(&json!({})).send().await.expect("send");
    assert_eq!(response.status(), 200);
    assert!(tls_client(&old.server_ca_pem, None).post(&url).send().await.is_err(), "old chain is gone");
    server.stop().await;
}

#[tokio::test]
async fn mtls_route_without_client_auth_fails_startup() {
    let result = start_in(
        |dir| {
            pki(dir);
            workflow("mtls_missing", None, "mtls")
        },
        Setup::default(),
    )
    .await;
    assert!(result.err().expect("refused").to_string().contains("client_auth"));
}

#[tokio::test]
async fn unreadable_tls_material_fails_startup() {
    let result = start_in(|_| workflow("tls_missing", None, "none"), Setup::default()).await;
    assert!(result.err().expect("refused").to_string().contains("cert_file"));
}
