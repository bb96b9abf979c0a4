//! `http_request` and `shell_run` through the binary (04 §5): real HTTP and HTTPS on loopback,
//! redirects never followed, caps, the `error` branch, secrets in headers that never leak, and
//! shell processes whose whole group dies at the timeout.

use serde_json::{Value, json};

use crate::http_server::{TestServer, Tls};
use crate::support::{Run, Scratch};

fn http(scratch: &Scratch, start: &str, input: Value, env: &[(&str, &str)]) -> Run {
    let file = scratch.fixture("http.toml");
    let input = input.to_string();
    let mut command = scratch.agentd();
    command.args(["run", &file, "--quiet", "--start", start, "--input", &input, "--record", "record.json"]);
    command.env("DECLARED_TOKEN_VAR", "declared-token-value-1234");
    for (k, v) in env {
        command.env(k, v);
    }
    scratch.exec(&mut command)
}

#[test]
fn get_returns_status_headers_and_body() {
    let server = TestServer::start();
    let scratch = Scratch::new();
    let run = http(&scratch, "get", json!({"url": server.url("/ok?x=1#frag")}), &[]);
    run.code(0);
    let out = run.json();
    assert_eq!(out["status"], "completed");
    let value = &out["final_value"];
    assert_eq!(value["status"], 200);
    assert_eq!(value["body"], r#"{"ok": true}"#);
    assert_eq!(value["bytes"], 12);
    assert_eq!(value["headers"]["content-type"], "application/json");
    assert_eq!(value["headers"]["x-multi"], "a, b", "repeated headers are joined");
    assert!(value.get("truncated").is_none());
    let seen = server.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "GET", "the method is upper-cased");
    assert_eq!(seen[0].path, "/ok?x=1", "the query is sent, the fragment never");
    assert_eq!(seen[0].header("user-agent"), Some(concat!("agentd/", env!("CARGO_PKG_VERSION"))));
    assert_eq!(seen[0].header("accept-encoding"), None);
    let record: Value = serde_json::from_str(&scratch.read("record.json")).expect("record");
    assert_eq!(record["trace"]["entries"][0]["output"]["status"], 200);
}

#[test]
fn post_sends_json_or_raw_bodies() {
    let server = TestServer::start();
    let scratch = Scratch::new();
    http(&scratch, "post", json!({"url": server.url("/created"), "body": {"b": [1, 2], "a": "x"}}), &[]).code(0);
    http(&scratch, "post", json!({"url": server.url("/created"), "body": "raw text"}), &[]).code(0);
    let seen = server.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(String::from_utf8_lossy(&seen[0].body), r#"{"a":"x","b":[1,2]}"#);
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    assert_eq!(String::from_utf8_lossy(&seen[1].body), "raw text");
}

#[test]
fn non_2xx_and_redirects_take_the_error_branch_unfollowed() {
    let server = TestServer::start();
    let scratch = Scratch::new();
    let run = http(&scratch, "get", json!({"url": server.url("/missing")}), &[]);
    run.code(0);
    let record: Value = serde_json::from_str(&scratch.read("record.json")).expect("record");
    assert_eq!(record["trace"]["entries"][0]["branch"], "error");
    assert_eq!(run.json()["final_value"]["status"], 404);

    let run = http(&scratch, "get", json!({"url": server.url("/redirect")}), &[]);
    let value = &run.json()["final_value"];
    assert_eq!(value["status"], 302);
    assert_eq!(value["headers"]["location"], "http://10.0.0.1/");
    assert_eq!(server.requests().len(), 2, "the redirect is returned, never followed");
}

#[test]
fn chunked_bodies_are_decoded_and_big_bodies_truncated() {
    let server = TestServer::start();
    let scratch = Scratch::new();
    let run = http(&scratch, "get", json!({"url": server.url("/chunked")}), &[]);
    assert_eq!(run.json()["final_value"]["body"], "hello world");

    let run = http(&scratch, "get", json!({"url": server.url("/big")}), &[]);
    let value = &run.json()["final_value"];
    assert_eq!(value["bytes"], 1_048_576);
    assert_eq!(value["truncated"], true);
    assert_eq!(value["body"].as_str().map(str::len), Some(1_048_576));

    let run = http(&scratch, "get", json!({"url": server.url("/binary")}), &[]);
    assert_eq!(run.json()["final_value"]["body"], "fo\u{fffd}o", "invalid UTF-8 is replaced");
}

#[test]
fn oversized_request_body_is_refused_before_sending() {
    let server = TestServer::start();
    let scratch = Scratch::new();
    let body = "x".repeat(1_048_577);
    scratch.write("input.json", json!({"url": server.url("/created"), "body": body}).to_string());
    let file = scratch.fixture("http.toml");
    let mut command = scratch.agentd();
    command
        .args(["run", &file, "--quiet", "--start", "post", "--input", "input.json"])
        .env("DECLARED_TOKEN_VAR", "declared-token-value-1234");
    let run = scratch.exec(&mut command);
    run.code(5);
    assert_eq!(run.json()["reason"], "tool `http_request` failed: request body 1048577 bytes exceeds cap (1048576)");
    assert!(server.requests().is_empty());
}

#[test]
fn connection_failures_are_tool_errors_naming_the_url() {
    let scratch = Scratch::new();
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let run = http(&scratch, "get", json!({"url": format!("http://127.0.0.1:{port}/x")}), &[]);
    run.code(5);
    let reason = run.json()["reason"].as_str().expect("reason").to_string();
    assert!(
        reason.starts_with(&format!("tool `http_request` failed: GET http://127.0.0.1:{port}/x: connect failed")),
        "{reason}"
    );
}

#[test]
fn node_timeout_bounds_a_slow_server() {
    let server = TestServer::start();
    let scratch = Scratch::new();
    let file = scratch.write(
        "slow.toml",
        "name = \"slow\"\n[[start_nodes]]\nname = \"get\"\nsource = \"manual\"\nentry_node = \"get\"\n[[nodes]]\nid = \"get\"\ntype = \"http_request\"\nmethod = \"GET\"\nurl_from = \"trigger.url\"\ntimeout_secs = 1\n",
    );
    let input = json!({"url": server.url("/slow")}).to_string();
    let started = std::time::Instant::now();
    let run = scratch.run(["run", file.to_str().expect("path"), "--quiet", "--input", &input]);
    run.code(5);
    assert_eq!(run.json()["reason"], "timeout: node get exceeded 1s");
    assert!(started.elapsed() < std::time::Duration::from_secs(4), "bounded by the node timeout");
}

#[test]
fn dry_run_checks_but_sends_nothing() {
    let server = TestServer::start();
    let scratch = Scratch::new();
    let file = scratch.fixture("http.toml");
    let input = json!({"url": server.url("/ok#f"), "body": "x"}).to_string();
    let mut command = scratch.agentd();
    command
        .args(["run", &file, "--quiet", "--dry-run", "--start", "post", "--input", &input])
        .env("DECLARED_TOKEN_VAR", "declared-token-value-1234");
    let run = scratch.exec(&mut command);
    run.code(0);
    assert_eq!(
        run.json()["final_value"],
        json!({"dry_run": true, "method": "POST", "url": format!("http://127.0.0.1:{}/ok", server.port)})
    );
    assert!(server.requests().is_empty());
}

#[test]
fn invalid_urls_without_policy_are_tool_errors() {
    let scratch = Scratch::new();
    for (url, why) in [
        ("ftp://127.0.0.1/x", "URL is not a valid http(s) URL"),
        ("http://user:pw@127.0.0.1/x", "URL has userinfo"),
        ("http://127.0.0.1/a b", "URL contains control or whitespace characters"),
        ("not a url", "URL contains control or whitespace characters"),
    ] {
        let run = http(&scratch, "get", json!({"url": url}), &[]);
        run.code(5);
        let reason = run.json()["reason"].as_str().expect("reason").to_string();
        assert!(reason.starts_with("tool `http_request` failed: invalid URL"), "{url}: {reason}");
        assert!(reason.ends_with(why), "{url}: {reason}");
    }
}

/// Everything a run leaves behind that a user or operator can read.
fn all_output(scratch: &Scratch, run: &Run) -> String {
    let mut text = format!("{}\n{}\n", run.stdout, run.stderr);
    for file in scratch.listing() {
        let path = scratch.path(&file);
        if path.is_file() {
            text.push_str(&String::from_utf8_lossy(&std::fs::read(&path).expect("read")));
        }
    }
    text
}

#[test]
fn header_secrets_never_leak_anywhere() {
    let server = TestServer::start();
    let scratch = Scratch::new();
    let token = "tok-4f9a2c81e7d3b605";
    let declared = "declared-token-value-1234";
    let mut command = scratch.agentd();
    let file = scratch.fixture("http.toml");
    std::fs::write(scratch.path(&file), scratch.read(&file) + "\n[logging.audit]\ntarget = \"file:audit.jsonl\"\n")
        .expect("append audit");
    let input = json!({"url": server.url("/echo")}).to_string();
    command
        .args(["run", &file, "--start", "secret", "--input", &input, "--record", "record.json", "--log-level", "debug"])
        .env("API_TOKEN", token)
        .env("DECLARED_TOKEN_VAR", declared);
    let run = scratch.exec(&mut command);
    run.code(0);
    let seen = server.requests();
    assert_eq!(seen[0].header("authorization"), Some(format!("Bearer {token}").as_str()), "the secret is sent");
    assert_eq!(seen[0].header("x-declared"), Some(declared));
    assert_eq!(seen[0].header("x-plain"), Some("literal"));
    // The server echoed the headers into its body; the outcome shows them scrubbed.
    let body = run.json()["final_value"]["body"].as_str().expect("body").to_string();
    assert!(body.contains("authorization: Bearer <redacted>"), "{body}");
    let everything = all_output(&scratch, &run);
    assert!(scratch.path(".agentd").exists() || !everything.is_empty());
    assert!(!everything.contains(token), "the env secret leaked");
    assert!(!everything.contains(declared), "the declared secret leaked");

    // A failing run: the secret is missing → the error names the header and the secret, no value.
    let scratch = Scratch::new();
    let run = http(&scratch, "secret", json!({"url": server.url("/echo")}), &[]);
    run.code(5);
    assert_eq!(
        run.json()["reason"],
        "tool `http_request` failed: header `Authorization`: secret `API_TOKEN`: not declared in [[secrets]] and environment variable `API_TOKEN` is not set"
    );
}

#[test]
fn header_values_with_crlf_are_refused() {
    let server = TestServer::start();
    let scratch = Scratch::new();
    let run = http(&scratch, "secret", json!({"url": server.url("/echo")}), &[("API_TOKEN", "abc\r\nX-Evil: 1")]);
    run.code(5);
    assert_eq!(run.json()["reason"], "tool `http_request` failed: header `Authorization`: value contains CR or LF");
    assert!(server.requests().is_empty());
    assert!(!run.stdout.contains("X-Evil") && !run.stderr.contains("X-Evil"));
}

fn https_workflow(scratch: &Scratch, port: u16) -> String {
    let text = format!(
        r#"name = "tls"
[policy.http]
urls = ["https://localhost:{port}/**"]

[[start_nodes]]
name = "get"
source = "manual"
entry_node = "get"

[[nodes]]
id = "get"
type = "http_request"
method = "GET"
url_from = "trigger.url"
"#
    );
    scratch.write("tls.toml", text);
    "tls.toml".to_string()
}

#[test]
fn https_with_a_trusted_ca_works_and_redirects_to_denied_urls_are_not_followed() {
    let tls = Tls::generate();
    let server = TestServer::start_tls(&tls);
    let scratch = Scratch::new();
    let ca = scratch.write("ca.pem", &tls.ca_pem);
    let file = https_workflow(&scratch, server.port);
    let run_url = |url: String| {
        let input = json!({"url": url}).to_string();
        let mut command = scratch.agentd();
        command.args(["run", &file, "--quiet", "--input", &input]).env("SSL_CERT_FILE", &ca);
        scratch.exec(&mut command)
    };
    let run = run_url(format!("https://localhost:{}/ok", server.port));
    run.code(0);
    assert_eq!(run.json()["final_value"]["status"], 200);
    assert_eq!(run.json()["final_value"]["body"], r#"{"ok": true}"#);

    let run = run_url(format!("https://localhost:{}/redirect", server.port));
    run.code(0);
    assert_eq!(run.json()["final_value"]["status"], 302, "the 302 is the response");
    assert_eq!(server.requests().len(), 2, "http://10.0.0.1/ was never requested");

    // The same server is not trusted without the CA: certificates are always verified.
    let input = json!({"url": format!("https://localhost:{}/ok", server.port)}).to_string();
    let run = scratch.run(["run", &file, "--quiet", "--input", &input]);
    run.code(5);
    let reason = run.json()["reason"].as_str().expect("reason").to_string();
    assert!(reason.contains("certificate") || reason.contains("Certificate"), "{reason}");
    assert_eq!(server.requests().len(), 2, "no request over an unverified connection");
}

fn shell(scratch: &Scratch, start: &str, args: Value) -> Run {
    let file = scratch.fixture("shell.toml");
    let input = json!({"args": args}).to_string();
    scratch.run(["run", &file, "--quiet", "--start", start, "--input", &input])
}

#[test]
fn shell_runs_argv_with_a_scrubbed_environment() {
    let scratch = Scratch::new();
    let run = shell(&scratch, "echo", json!(["hello", "$HOME", "a b"]));
    run.code(0);
    let value = &run.json()["final_value"];
    assert_eq!(value["stdout"], "hello $HOME a b\n", "argv only, never a shell");
    assert_eq!(value["exit_code"], 0);
    assert_eq!(value["signal"], Value::Null);
    assert_eq!(value["timed_out"], false);
    assert_eq!(value["truncated"], false);
    assert!(value["command"].as_str().expect("command").ends_with("/echo"));

    let mut command = scratch.agentd();
    let file = scratch.fixture("shell.toml");
    let input = json!({"args": ["-c", "env | sort"]}).to_string();
    command.args(["run", &file, "--quiet", "--start", "sh", "--input", &input]).env("LEAKY", "value");
    let run = scratch.exec(&mut command);
    let env = run.json()["final_value"]["stdout"].as_str().expect("stdout").to_string();
    let names: Vec<&str> = env.lines().filter_map(|l| l.split_once('=').map(|(k, _)| k)).collect();
    assert!(names.iter().all(|n| ["PATH", "LANG", "PWD", "SHLVL", "_"].contains(n)), "{env}");
    assert!(env.contains("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));
    assert!(env.contains("LANG=C.UTF-8"));
}

#[test]
fn shell_non_zero_exit_takes_the_error_branch() {
    let scratch = Scratch::new();
    let file = scratch.fixture("shell.toml");
    let input = json!({"args": ["-c", "echo oops >&2; exit 3"]}).to_string();
    let run = scratch.run(["run", &file, "--quiet", "--start", "sh", "--input", &input, "--record", "r.json"]);
    run.code(0);
    let value = &run.json()["final_value"];
    assert_eq!(value["exit_code"], 3);
    assert_eq!(value["stderr"], "oops\n");
    let record: Value = serde_json::from_str(&scratch.read("r.json")).expect("record");
    assert_eq!(record["trace"]["entries"][0]["branch"], "error");
}

#[test]
fn shell_timeout_kills_the_whole_process_group() {
    let scratch = Scratch::new();
    let pidfile = scratch.path("child.pid");
    let script = format!("sleep 300 & echo $! > {}; echo started; sleep 300", pidfile.display());
    let started = std::time::Instant::now();
    let run = shell(&scratch, "sh", json!(["-c", script]));
    run.code(0);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    let value = &run.json()["final_value"];
    assert_eq!(value["timed_out"], true);
    assert_eq!(value["signal"], 9);
    assert_eq!(value["exit_code"], -1);
    assert_eq!(value["stdout"], "started\n");
    let pid = scratch.read("child.pid").trim().to_string();
    let gone = crate::http_server::eventually(|| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_or(true, |stat| stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')))
    });
    assert!(gone, "the forked grandchild {pid} survived the timeout");
}

#[test]
fn shell_output_is_capped_not_buffered() {
    let scratch = Scratch::new();
    let run = shell(&scratch, "sh", json!(["-c", "head -c 10485760 /dev/zero | tr '\\0' a; echo done >&2"]));
    run.code(0);
    let value = &run.json()["final_value"];
    assert_eq!(value["stdout"].as_str().map(str::len), Some(65_536));
    assert_eq!(value["truncated"], true);
    assert_eq!(value["stderr"], "done\n");
    assert_eq!(value["exit_code"], 0, "the producer was drained, not blocked");
}

#[test]
fn shell_command_errors() {
    let scratch = Scratch::new();
    let run = shell(&scratch, "relative", json!(null));
    run.code(5);
    assert_eq!(run.json()["reason"], "tool `shell_run` failed: shell_run requires an absolute path; got `echo`");
    let run = shell(&scratch, "missing", json!(null));
    run.code(5);
    assert_eq!(
        run.json()["reason"],
        "tool `shell_run` failed: resolve /no/such/program: No such file or directory (os error 2)"
    );
    let run = shell(&scratch, "echo", json!("not an array"));
    run.code(5);
    assert_eq!(
        run.json()["reason"],
        "tool `shell_run` failed: args_from `trigger.args` must resolve to an array of strings; got string"
    );
    let run = shell(&scratch, "echo", json!(["ok", 1]));
    run.code(5);
    assert_eq!(run.json()["reason"], "tool `shell_run` failed: args element must be a string; got number");
}

#[test]
fn shell_dry_run_reports_without_spawning() {
    let scratch = Scratch::new();
    let file = scratch.fixture("shell.toml");
    let marker = scratch.path("marker");
    let input = json!({"args": ["-c", format!("touch {}", marker.display())]}).to_string();
    let run = scratch.run(["run", &file, "--quiet", "--dry-run", "--start", "sh", "--input", &input]);
    run.code(0);
    let value = &run.json()["final_value"];
    assert_eq!(value["dry_run"], true);
    assert!(!marker.exists());
}

#[test]
fn process_rlimits_are_applied_and_audited() {
    let scratch = Scratch::new();
    scratch.write(
        "limits.toml",
        r#"name = "limits"
[budget]
max_memory_mb = 8192
max_cpu_secs = 77
[logging.audit]
target = "file:audit.jsonl"
[[start_nodes]]
name = "sh"
source = "manual"
entry_node = "sh"
[[nodes]]
id = "sh"
type = "shell_run"
command = "/bin/sh"
args_from = "trigger.args"
"#,
    );
    let input = json!({"args": ["-c", "ulimit -v; ulimit -t"]}).to_string();
    let run = scratch.run(["run", "limits.toml", "--quiet", "--input", &input]);
    run.code(0);
    assert_eq!(run.json()["final_value"]["stdout"], "8388608\n77\n", "the limits are in force (and inherited)");
    let audit = scratch.read("audit.jsonl");
    assert!(audit.contains(r#""event":"budget.applied","kind":"max_memory_mb","value":8192"#), "{audit}");
    assert!(audit.contains(r#""event":"budget.applied","kind":"max_cpu_secs","value":77"#), "{audit}");
}
