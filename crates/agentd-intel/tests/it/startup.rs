//! Startup validation of backend definitions (06 §2, §3.1): every bad definition is one clear
//! line naming the backend and the field; secrets are probed but never printed.

use std::sync::Arc;

use agentd_intel::{Backends, CliIntel, StaticSecrets};

use crate::support::build;

fn refused(toml: &str, secrets: &[(&str, &str)]) -> String {
    build(toml, secrets).expect_err("must be refused").to_string()
}

#[test]
fn names() {
    let default = "[[backends]]\nname = \"default\"\nprovider = \"openai-compatible\"\nmodel = \"m\"\nbase_url = \"http://127.0.0.1:1\"\n";
    assert!(refused(default, &[]).starts_with("intelligence.backends.default: the name `default` is reserved"));
    let twice = "[[backends]]\nname = \"a\"\nprovider = \"unix\"\npath = \"/s\"\n[[backends]]\nname = \"a\"\nprovider = \"unix\"\npath = \"/t\"\n";
    assert_eq!(refused(twice, &[]), "intelligence.backends.a: duplicate backend name");
    let blank = "[[backends]]\nname = \" \"\nprovider = \"unix\"\npath = \"/s\"\n";
    assert!(refused(blank, &[]).contains("must not be blank"));
}

#[test]
fn providers_and_fields() {
    let cases = [
        ("[[backends]]\nname = \"x\"\nprovider = \"llama\"\n", "intelligence.backends.x: unknown provider `llama`"),
        (
            "[[backends]]\nname = \"x\"\nprovider = \"anthropic\"\nmodel = \"m\"\npath = \"/s\"\n",
            "intelligence.backends.x: field `path` is not meaningful for provider `anthropic`",
        ),
        (
            "[[backends]]\nname = \"x\"\nprovider = \"unix\"\npath = \"/s\"\napi_key_env = \"K\"\n",
            "intelligence.backends.x: field `api_key_env` is not meaningful for provider `unix`",
        ),
        ("[[backends]]\nname = \"x\"\nprovider = \"openai\"\n", "intelligence.backends.x: `model` is required"),
        (
            "[[backends]]\nname = \"x\"\nprovider = \"openai-compatible\"\nmodel = \"m\"\n",
            "intelligence.backends.x: `base_url` is required for provider `openai-compatible`",
        ),
        (
            "[[backends]]\nname = \"x\"\nprovider = \"unix\"\n",
            "intelligence.backends.x: `path` is required for provider `unix`",
        ),
        (
            "[[backends]]\nname = \"x\"\nprovider = \"http\"\n",
            "intelligence.backends.x: `url` is required for provider `http`",
        ),
        (
            "[[backends]]\nname = \"x\"\nprovider = \"unix\"\npath = \"/s\"\nmax_tokens = 0\n",
            "intelligence.backends.x: `max_tokens` must be at least 1",
        ),
        (
            "[[backends]]\nname = \"x\"\nprovider = \"unix\"\npath = \"/s\"\ntimeout_secs = 0\n",
            "intelligence.backends.x: `timeout_secs` must be at least 1",
        ),
    ];
    for (toml, expected) in cases {
        let error = refused(toml, &[("K", "v"), ("OPENAI_API_KEY", "k")]);
        assert!(error.starts_with(expected), "{error}\nexpected: {expected}");
    }
}

#[test]
fn api_keys_are_probed_by_name() {
    let anthropic = "[[backends]]\nname = \"claude\"\nprovider = \"anthropic\"\nmodel = \"m\"\n";
    let error = refused(anthropic, &[]);
    assert!(
        error.starts_with("intelligence.backends.claude: secret `ANTHROPIC_API_KEY` could not be resolved"),
        "{error}"
    );
    assert!(build(anthropic, &[("ANTHROPIC_API_KEY", "k")]).is_ok());
    let custom = "[[backends]]\nname = \"g\"\nprovider = \"gemini\"\nmodel = \"m\"\napi_key_env = \"MY_KEY\"\n";
    assert!(refused(custom, &[("GEMINI_API_KEY", "k")]).contains("secret `MY_KEY`"));
    let header = "[[backends]]\nname = \"o\"\nprovider = \"openai-compatible\"\nmodel = \"m\"\nbase_url = \"http://127.0.0.1:1\"\n\
                  headers = { \"X-K\" = \"{{secret:GW}}\" }\n";
    assert!(refused(header, &[]).contains("secret `GW`"));
    let http = "[[backends]]\nname = \"h\"\nprovider = \"http\"\nurl = \"http://127.0.0.1:1/\"\nbearer_env = \"TOK\"\n";
    assert!(refused(http, &[]).contains("secret `TOK`"));
}

#[test]
fn urls_and_headers() {
    let base =
        |url: &str| format!("[[backends]]\nname = \"x\"\nprovider = \"openai\"\nmodel = \"m\"\nbase_url = \"{url}\"\n");
    for bad in ["ftp://h", "http://u:p@h", "http://h/?q=1", "not a url"] {
        let error = refused(&base(bad), &[("OPENAI_API_KEY", "k")]);
        assert!(error.starts_with("intelligence.backends.x: `base_url` "), "{error}");
    }
    let header = |name: &str, value: &str| {
        format!(
            "[[backends]]\nname = \"x\"\nprovider = \"openai\"\nmodel = \"m\"\nheaders = {{ \"{name}\" = \"{value}\" }}\n"
        )
    };
    let secrets = [("OPENAI_API_KEY", "k")];
    assert!(refused(&header("Authorization", "x"), &secrets).contains("header `Authorization` cannot be set"));
    assert!(refused(&header("Content-Type", "x"), &secrets).contains("cannot be set"));
    assert!(refused(&header("Host", "x"), &secrets).contains("cannot be set"));
    assert!(refused(&header("X_Bad", "x"), &secrets).contains("must match [A-Za-z0-9-]+"));
    assert!(refused(&header("X-Ok", "{{input.x}}"), &secrets).contains("only {{secret:NAME}} placeholders"));
    let rpc = "[[backends]]\nname = \"h\"\nprovider = \"http\"\nurl = \"unix:/tmp/x\"\n";
    assert!(refused(rpc, &[]).starts_with("intelligence.backends.h: `url` "));
}

#[test]
fn insecure_transports_are_listed_once() {
    let toml = "[[backends]]\nname = \"remote\"\nprovider = \"openai\"\nmodel = \"m\"\nbase_url = \"http://gateway.example.com\"\n\
                [[backends]]\nname = \"local\"\nprovider = \"openai\"\nmodel = \"m\"\nbase_url = \"http://localhost:8000\"\n\
                [[backends]]\nname = \"keyless\"\nprovider = \"openai-compatible\"\nmodel = \"m\"\nbase_url = \"http://10.0.0.1\"\n\
                [[backends]]\nname = \"tls\"\nprovider = \"openai\"\nmodel = \"m\"\n";
    let backends = build(toml, &[("OPENAI_API_KEY", "k")]).expect("valid");
    assert_eq!(backends.insecure_transports(), ["remote"]);
    assert_eq!(backends.names(), ["keyless", "local", "remote", "tls"]);
    assert!(!backends.is_empty());
}

#[test]
fn cli_flags() {
    let secrets = || Arc::new(StaticSecrets::default());
    let none = Backends::build(&[], &CliIntel::default(), secrets()).expect("no backends is fine");
    assert!(none.is_empty());
    let bad_url = CliIntel { http: Some("127.0.0.1:9000".into()), ..CliIntel::default() };
    let error = Backends::build(&[], &bad_url, secrets()).expect_err("bad url").to_string();
    assert!(error.starts_with("--intel-http: "), "{error}");
    let no_file = CliIntel {
        http: Some("http://127.0.0.1:9/".into()),
        http_bearer_file: Some("/nonexistent/bearer".into()),
        ..CliIntel::default()
    };
    let error = Backends::build(&[], &no_file, secrets()).expect_err("no file").to_string();
    assert!(error.starts_with("--intel-http-bearer-file: /nonexistent/bearer: "), "{error}");
    let unreachable = CliIntel { unix: Some("/nonexistent/agentd.sock".into()), ..CliIntel::default() };
    let backends = Backends::build(&[], &unreachable, secrets()).expect("an unreachable socket is not a startup error");
    assert_eq!(backends.names(), ["default"]);
}
