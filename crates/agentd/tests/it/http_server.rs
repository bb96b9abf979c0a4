//! A small real HTTP/1.1 server on 127.0.0.1 for the `http_request` tests: it records every
//! request it receives (so tests can prove a request was or was not made) and answers by path.
//! With a certificate it serves HTTPS (rustls), for the TLS tests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Header lines as received (`name: value`), names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

pub struct TestServer {
    pub port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// A TLS identity for the server: the CA certificate (PEM, for `SSL_CERT_FILE`) and the
/// server's rustls configuration.
pub struct Tls {
    pub ca_pem: String,
    pub config: Arc<rustls::ServerConfig>,
}

impl Tls {
    /// A fresh CA and a certificate for `localhost` / 127.0.0.1 signed by it.
    pub fn generate() -> Tls {
        use rcgen::{CertificateParams, CertifiedIssuer, KeyPair};
        let ca_key = KeyPair::generate().expect("ca key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "agentd test CA");
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).expect("ca");
        let key = KeyPair::generate().expect("server key");
        let params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).expect("server params");
        let cert = params.signed_by(&key, &ca).expect("server cert");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).expect("key der"),
            )
            .expect("server config");
        Tls { ca_pem: ca.pem(), config: Arc::new(config) }
    }
}

impl TestServer {
    pub fn start() -> TestServer {
        TestServer::start_with(None)
    }

    pub fn start_tls(tls: &Tls) -> TestServer {
        TestServer::start_with(Some(tls.config.clone()))
    }

    fn start_with(tls: Option<Arc<rustls::ServerConfig>>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind test server");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let log = log.clone();
                let tls = tls.clone();
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    match tls {
                        None => serve(stream, &log),
                        Some(config) => {
                            let Ok(connection) = rustls::ServerConnection::new(config) else { return };
                            serve(rustls::StreamOwned::new(connection, stream), &log);
                        }
                    }
                });
            }
        });
        TestServer { port, seen }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("log").clone()
    }

    #[allow(dead_code)]
    pub fn count(&self, path: &str) -> usize {
        self.requests().iter().filter(|r| r.path == path).count()
    }
}

fn serve<S: Read + Write>(stream: S, log: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 {
            return;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let length = headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let seen = Seen { method, path: path.clone(), headers, body };
    let nth = {
        let mut log = log.lock().expect("log");
        log.push(seen.clone());
        log.iter().filter(|r| r.path == seen.path).count()
    };
    let mut stream = reader.into_inner();
    let _ = stream.write_all(&respond(&seen, nth));
    let _ = stream.flush();
}

/// The answer to the `nth` (1-based) request for this exact path.
fn respond(seen: &Seen, nth: usize) -> Vec<u8> {
    let plain = |status: &str, extra: &str, body: &[u8]| {
        let mut out =
            format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n", body.len())
                .into_bytes();
        out.extend_from_slice(body);
        out
    };
    match seen.path.split('?').next().unwrap_or_default() {
        "/ok" => plain(
            "200 OK",
            "content-type: application/json\r\nx-multi: a\r\nx-multi: b\r\n",
            br#"{"ok": true}"#,
        ),
        "/created" => plain("201 Created", "", b"made"),
        "/echo" => {
            let mut text = format!("{} {}\n", seen.method, seen.path);
            for (name, value) in &seen.headers {
                text.push_str(&format!("{name}: {value}\n"));
            }
            text.push_str(&String::from_utf8_lossy(&seen.body));
            plain("200 OK", "content-type: text/plain\r\n", text.as_bytes())
        }
        "/missing" => plain("404 Not Found", "", b"no such thing"),
        "/redirect" => plain("302 Found", "location: http://10.0.0.1/\r\n", b""),
        "/big" => plain("200 OK", "", &vec![b'a'; 2 * 1024 * 1024]),
        "/chunked" => {
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
                .to_vec()
        }
        "/slow" => {
            let ms = seen.path.split_once("?ms=").and_then(|(_, ms)| ms.parse().ok()).unwrap_or(5000);
            std::thread::sleep(Duration::from_millis(ms));
            plain("200 OK", "", b"late")
        }
        // The first request is held for a minute (a call in flight when a test kills agentd);
        // later ones are answered at once.
        "/hold" => {
            if nth == 1 {
                std::thread::sleep(Duration::from_secs(60));
            }
            plain("200 OK", "", b"held")
        }
        // An OpenAI-compatible chat endpoint: checks the bearer key, answers with usage.
        "/v1/chat/completions" => {
            if seen.header("authorization") != Some("Bearer sk-test-0123456789abcdef") {
                return plain(
                    "401 Unauthorized",
                    "content-type: application/json\r\n",
                    br#"{"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}"#,
                );
            }
            let body = br#"{"id": "c1", "object": "chat.completion", "model": "m", "choices": [{"index": 0, "message": {"role": "assistant", "content": "{\"answer\": 42}"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}}"#;
            plain("200 OK", "content-type: application/json\r\n", body)
        }
        "/binary" => plain("200 OK", "", &[0x66, 0x6f, 0xff, 0x6f]),
        _ => plain("404 Not Found", "", b""),
    }
}

/// Waits until `predicate` holds or a generous bound passes (the server logs asynchronously).
pub fn eventually(mut predicate: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if predicate() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    predicate()
}

#[allow(dead_code)]
pub fn connect(port: u16) -> TcpStream {
    TcpStream::connect(("127.0.0.1", port)).expect("connect")
}
