//! The `[policy]` table as TOML (§1).

use agentd_policy::{PolicyConfig, RegoConfig};

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Workflow {
    policy: Option<PolicyConfig>,
}

fn parse(text: &str) -> Result<Option<PolicyConfig>, toml::de::Error> {
    toml::from_str::<Workflow>(text).map(|workflow| workflow.policy)
}

#[test]
fn full_example_of_the_spec_parses() {
    let policy = parse(
        r#"
[policy.fs]
read   = ["/srv/data/**"]
write  = ["/srv/out/**"]
delete = []
list   = []
[policy.env]
read_keys = ["APP_*", "REGION"]
[policy.http]
urls    = ["https://api.example.com/v1/**"]
methods = ["GET", "POST"]
[policy.shell]
commands = ["/usr/local/bin/report"]
[policy.mcp]
servers   = []
tools     = ["search_*"]
resources = ["docs://**"]
[policy.rego]
inline = '''package agent'''
data   = { region = "eu", limits = { max = 3 } }
"#,
    )
    .unwrap()
    .unwrap();
    let fs = policy.fs.as_ref().unwrap();
    assert_eq!(fs.read, ["/srv/data/**"]);
    assert_eq!(fs.write, ["/srv/out/**"]);
    assert_eq!(policy.env.as_ref().unwrap().read_keys, ["APP_*", "REGION"]);
    assert_eq!(policy.http.as_ref().unwrap().methods, ["GET", "POST"]);
    assert_eq!(policy.shell.as_ref().unwrap().commands, ["/usr/local/bin/report"]);
    assert_eq!(policy.mcp.as_ref().unwrap().resources, ["docs://**"]);
    let rego = policy.rego.as_ref().unwrap();
    assert_eq!(rego.inline.as_deref(), Some("package agent"));
    assert_eq!(rego.data, Some(serde_json::json!({"region": "eu", "limits": {"max": 3}})));
    assert_eq!(rego.effective_query(), "data.agent.allow");
    assert!(agentd_policy::check_policy_syntax(&policy).is_empty());
}

#[test]
fn every_key_is_optional() {
    assert_eq!(parse("").unwrap(), None);
    assert_eq!(parse("[policy]").unwrap(), Some(PolicyConfig::default()));
    let policy = parse("[policy.fs]\n[policy.http]\nurls = [\"*\"]").unwrap().unwrap();
    let fs = policy.fs.unwrap();
    assert!(fs.read.is_empty() && fs.write.is_empty() && fs.delete.is_empty() && fs.list.is_empty());
    let http = policy.http.unwrap();
    assert_eq!(http.urls, ["*"]);
    assert!(http.methods.is_empty());
    assert!(policy.env.is_none() && policy.shell.is_none() && policy.mcp.is_none());
}

#[test]
fn unknown_keys_are_parse_errors_everywhere() {
    for text in [
        "[policy]\nnetwork = true",
        "[policy.fs]\nexecute = []",
        "[policy.env]\nkeys = []",
        "[policy.http]\nhosts = []",
        "[policy.shell]\nargs = []",
        "[policy.mcp]\nprompts = []",
        "[policy.rego]\nentrypoint = \"x\"",
        "[policy.dns]\n",
    ] {
        assert!(parse(text).is_err(), "accepted: {text}");
    }
}

#[test]
fn wrong_types_are_parse_errors() {
    assert!(parse("[policy.fs]\nread = \"/srv/**\"").is_err());
    assert!(parse("[policy.http]\nmethods = [1]").is_err());
}

#[test]
fn round_trips_through_toml() {
    let policy = PolicyConfig {
        rego: Some(RegoConfig { query: Some("data.x.allow".to_owned()), ..RegoConfig::default() }),
        ..parse("[policy.env]\nread_keys = [\"A\"]").unwrap().unwrap()
    };
    let text = toml::to_string(&policy).unwrap();
    let back: PolicyConfig = toml::from_str(&text).unwrap();
    assert_eq!(back, policy);
    assert_eq!(back.rego.unwrap().effective_query(), "data.x.allow");
}
