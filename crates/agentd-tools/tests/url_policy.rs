//! Every row of the URL table of 05 §3.5, with an injected resolver for the host names and a
//! real listener on 127.0.0.1 for the rows that connect: the decision, the pinned addresses, and
//! proof that the connection goes to the address that was checked (no second lookup).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, TcpListener};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agentd_policy::{Policy, PolicyConfig};
use agentd_tools::Error;
use agentd_tools::http::{self, Lookup, Resolver, Target};

const PUBLIC: &str = "93.184.216.34";

/// Fixed answers per host; `flip.*` hosts answer from a list, one entry per lookup.
#[derive(Default)]
struct TestResolver {
    answers: HashMap<String, Vec<Vec<IpAddr>>>,
    calls: Mutex<HashMap<String, usize>>,
}

impl TestResolver {
    fn new() -> TestResolver {
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let mut answers = HashMap::new();
        answers.insert("internal.corp".to_string(), vec![vec![ip("10.1.2.3")]]);
        answers.insert("rebind.example.com".to_string(), vec![vec![ip("127.0.0.1")]]);
        answers.insert("api.example.com".to_string(), vec![vec![ip(PUBLIC)]]);
        answers.insert("flip.example.com".to_string(), vec![vec![ip(PUBLIC)], vec![ip("127.0.0.1")]]);
        answers.insert("flip.local.test".to_string(), vec![vec![ip("127.0.0.1")], vec![ip("10.9.9.9")]]);
        answers.insert("localhost".to_string(), vec![vec![ip("127.0.0.1")]]);
        TestResolver { answers, calls: Mutex::new(HashMap::new()) }
    }

    fn calls(&self, host: &str) -> usize {
        self.calls.lock().expect("calls").get(host).copied().unwrap_or(0)
    }
}

impl Resolver for TestResolver {
    fn lookup<'a>(&'a self, host: &'a str, _port: u16) -> Lookup<'a> {
        Box::pin(async move {
            let n = {
                let mut calls = self.calls.lock().expect("calls");
                let n = calls.entry(host.to_string()).or_insert(0);
                *n += 1;
                *n
            };
            let answers = self
                .answers
                .get(host)
                .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "unknown host"))?;
            Ok(answers[(n - 1).min(answers.len() - 1)].clone())
        })
    }
}

fn policy(urls: &[&str]) -> Policy {
    let list = urls.iter().map(|u| format!("{u:?}")).collect::<Vec<_>>().join(", ");
    let config: PolicyConfig = toml::from_str(&format!("[http]\nurls = [{list}]\n")).expect("policy toml");
    Policy::compile(Some(&config), Path::new("/")).expect("policy compiles")
}

async fn decide(urls: &[&str], url: &str) -> Result<Target, Error> {
    let resolver = TestResolver::new();
    http::check("http_request", &policy(urls), &resolver, "GET", url).await
}

fn denied_reason(result: Result<Target, Error>) -> String {
    match result {
        Err(Error::Denied { decision, .. }) => decision.reason,
        Err(Error::Failed(m)) => panic!("expected a denial, got a failure: {m}"),
        Ok(t) => panic!("expected a denial, got allow of {}", t.describe()),
    }
}

const V1: &[&str] = &["https://api.example.com/v1/**"];

#[tokio::test]
async fn allowed_rows() {
    let t = decide(V1, "https://api.example.com/v1/items?q=1").await.expect("allow");
    assert_eq!(t.url.as_str(), "https://api.example.com/v1/items?q=1");
    assert_eq!(t.addrs, vec![format!("{PUBLIC}:443").parse().expect("addr")]);
    let t = decide(V1, "https://API.Example.COM./v1/x").await.expect("host normalised");
    assert_eq!(t.url.as_str(), "https://api.example.com/v1/x");
    let t = decide(&["http://internal.corp/**"], "http://internal.corp/status").await.expect("exact host");
    assert_eq!(t.addrs, vec!["10.1.2.3:80".parse().expect("addr")]);
}

#[tokio::test]
async fn denied_rows() {
    let cases: &[(&[&str], &str, &str)] = &[
        (V1, "https://api.example.com/v1/../admin", "URL not in [policy.http].urls"),
        (V1, "https://api.example.com/v1/%2e%2e/admin", "URL not in [policy.http].urls"),
        (V1, "https://api.example.com/v1/..%2Fadmin", "URL path has an encoded separator or dot segment"),
        (V1, "https://api.example.com.evil.net/v1/x", "URL not in [policy.http].urls"),
        (V1, "https://api.example.com@evil.net/v1/x", "URL has userinfo"),
        (V1, "http://api.example.com/v1/x", "URL not in [policy.http].urls"),
        (V1, "https://api.example.com:8443/v1/x", "URL not in [policy.http].urls"),
        (V1, "https://api.example.com/v1/x\r\nHost: evil", "URL contains control or whitespace characters"),
        (
            &["https://*.example.com/**"],
            "https://rebind.example.com/x",
            "host rebind.example.com resolves to restricted address 127.0.0.1; only an exact host entry may reach it",
        ),
        (
            &["*"],
            "http://169.254.169.254/latest/meta-data/",
            "host 169.254.169.254 resolves to restricted address 169.254.169.254; only an exact host entry may reach it",
        ),
        (
            &["*"],
            "http://2130706433/",
            "host 127.0.0.1 resolves to restricted address 127.0.0.1; only an exact host entry may reach it",
        ),
        (&["*"], "http://[::ffff:127.0.0.1]/", "resolves to restricted address"),
        (&["http://127.0.0.1:18282/**"], "http://localhost:18282/one", "URL not in [policy.http].urls"),
    ];
    for (urls, url, reason) in cases {
        let got = denied_reason(decide(urls, url).await);
        assert!(got.contains(reason), "{url}: {got}");
    }
}

#[tokio::test]
async fn wildcard_host_pins_the_checked_public_address() {
    // The resolver answers a public address, then 127.0.0.1 to any later lookup: the request is
    // allowed and pinned to the public address; nothing looks the name up a second time.
    let resolver = TestResolver::new();
    let t = http::check(
        "http_request",
        &policy(&["https://*.example.com/**"]),
        &resolver,
        "GET",
        "https://flip.example.com/x",
    )
    .await
    .expect("allow");
    assert_eq!(t.addrs, vec![format!("{PUBLIC}:443").parse().expect("addr")]);
    assert_eq!(resolver.calls("flip.example.com"), 1);
}

/// A loopback server answering `/redirect` with a 302 to 10.0.0.1 and anything else with 200,
/// counting requests.
fn server() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
                    break;
                }
            }
            seen.fetch_add(1, Ordering::SeqCst);
            let response = if line.contains("/redirect") {
                "HTTP/1.1 302 Found\r\nlocation: http://10.0.0.1/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            } else {
                "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok"
            };
            let _ = stream.write_all(response.as_bytes());
        }
    });
    (port, count)
}

fn request(target: Target) -> http::Request {
    http::Request {
        target,
        headers: Vec::new(),
        body: None,
        timeout: Duration::from_secs(5),
        trace_headers: Vec::new(),
    }
}

#[tokio::test]
async fn exact_ip_literal_reaches_the_listener_and_other_spellings_do_not() {
    let (port, count) = server();
    let urls = [format!("http://127.0.0.1:{port}/**")];
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    let target = decide(&urls, &format!("http://127.0.0.1:{port}/one")).await.expect("exact IP literal");
    let response = http::Client::new().send(request(target)).await.expect("sent");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"ok");
    assert_eq!(count.load(Ordering::SeqCst), 1);
    let reason = denied_reason(decide(&urls, &format!("http://localhost:{port}/one")).await);
    assert_eq!(reason, "URL not in [policy.http].urls");
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_connection_goes_to_the_checked_address_not_a_new_lookup() {
    // flip.local.test resolves to 127.0.0.1 first and to an unroutable address afterwards: the
    // request still reaches the loopback listener, so the client did not resolve again.
    let (port, count) = server();
    let resolver = TestResolver::new();
    let pattern = format!("http://flip.local.test:{port}/**");
    let target = http::check(
        "http_request",
        &policy(&[&pattern]),
        &resolver,
        "GET",
        &format!("http://flip.local.test:{port}/x"),
    )
    .await
    .expect("exact host may reach loopback");
    let response = http::Client::new().send(request(target)).await.expect("sent to the pinned address");
    assert_eq!(response.status, 200);
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert_eq!(resolver.calls("flip.local.test"), 1);
}

#[tokio::test]
async fn a_redirect_is_the_response() {
    let (port, count) = server();
    let urls = [format!("http://127.0.0.1:{port}/**")];
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    let target = decide(&urls, &format!("http://127.0.0.1:{port}/redirect")).await.expect("allow");
    let response = http::Client::new().send(request(target)).await.expect("sent");
    assert_eq!(response.status, 302);
    assert_eq!(response.headers.get("location").map(String::as_str), Some("http://10.0.0.1/"));
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn resolution_failure_is_a_tool_error_not_a_denial() {
    match decide(&["https://*.unknown.test/**"], "https://nowhere.unknown.test/").await {
        Err(Error::Failed(message)) => assert!(message.starts_with("resolve nowhere.unknown.test:"), "{message}"),
        other => panic!("expected a tool error, got {other:?}"),
    }
}

#[tokio::test]
async fn invalid_urls_are_denials_with_policy_and_failures_without() {
    let reason = denied_reason(decide(&["*"], "ftp://example.com/").await);
    assert_eq!(reason, "URL is not a valid http(s) URL");
    let allow_all = Policy::allow_all();
    let resolver = TestResolver::new();
    match http::check("http_request", &allow_all, &resolver, "GET", "ftp://example.com/").await {
        Err(Error::Failed(m)) => assert_eq!(m, "invalid URL `ftp://example.com/`: URL is not a valid http(s) URL"),
        other => panic!("expected a tool error, got {other:?}"),
    }
}
