//! Present, absent and empty (§2) and the rule reasons of §6.

use std::path::Path;

use agentd_policy::{
    Decision, EnvPolicyConfig, Family, FsPolicyConfig, HttpPolicyConfig, McpPolicyConfig, NamePattern, Policy,
    PolicyConfig, ShellPolicyConfig, check_mcp_resource, check_mcp_tool, normalize_url,
};

fn compile(config: &PolicyConfig) -> Policy {
    Policy::compile(Some(config), Path::new("/")).unwrap()
}

fn denied(decision: &Decision, family: Family, reason: &str) {
    assert!(!decision.allowed, "expected a denial, got {decision:?}");
    assert_eq!(decision.family, family);
    assert_eq!(decision.reason, reason);
    assert_eq!(decision.rule, None);
}

fn allowed(decision: &Decision, family: Family, rule: Option<&str>) {
    assert!(decision.allowed, "expected an allow, got {decision:?}");
    assert_eq!(decision.family, family);
    assert_eq!(decision.rule.as_deref(), rule);
}

#[test]
fn no_policy_table_allows_everything() {
    for policy in [Policy::allow_all(), Policy::compile(None, Path::new("/")).unwrap()] {
        assert!(policy.is_allow_all());
        let url = normalize_url("http://169.254.169.254/latest/meta-data/").unwrap();
        allowed(&policy.check_fs_read(Path::new("/etc/shadow")), Family::Fs, None);
        allowed(&policy.check_fs_write(Path::new("/etc/cron.d/x")), Family::Fs, None);
        allowed(&policy.check_env("AWS_SECRET_ACCESS_KEY"), Family::Env, None);
        allowed(&policy.check_shell(Path::new("/bin/sh")), Family::Shell, None);
        allowed(&policy.check_http("DELETE", &url), Family::Http, None);
        // No restricted-address rule in allow-everything mode.
        allowed(&policy.restricted_address_decision(&url, &["169.254.169.254".parse().unwrap()]), Family::Http, None);
        allowed(&policy.check_mcp_legacy_tool("rm_rf"), Family::Mcp, None);
        allowed(&policy.check_mcp_legacy_resource("file:///etc/passwd"), Family::Mcp, None);
        assert!(policy.rego().is_none());
    }
}

#[test]
fn an_empty_policy_table_denies_every_family() {
    let policy = compile(&PolicyConfig::default());
    assert!(!policy.is_allow_all());
    let url = normalize_url("https://api.example.com/").unwrap();
    denied(&policy.check_fs_read(Path::new("/x")), Family::Fs, "[policy.fs].read is empty");
    denied(&policy.check_fs_write(Path::new("/x")), Family::Fs, "[policy.fs].write is empty");
    denied(&policy.check_env("HOME"), Family::Env, "[policy.env].read_keys is empty");
    denied(&policy.check_shell(Path::new("/bin/true")), Family::Shell, "[policy.shell].commands is empty");
    denied(&policy.check_http("GET", &url), Family::Http, "[policy.http].urls is empty");
    denied(&policy.check_mcp_legacy_tool("search"), Family::Mcp, "tool search not in allow_tools of server default");
    denied(
        &policy.check_mcp_legacy_resource("docs://a"),
        Family::Mcp,
        "resource docs://a not in allow_resources of server default",
    );
}

#[test]
fn only_fs_denies_env_http_and_shell() {
    let policy = compile(&PolicyConfig {
        fs: Some(FsPolicyConfig { read: vec!["*".to_owned()], ..FsPolicyConfig::default() }),
        ..PolicyConfig::default()
    });
    allowed(&policy.check_fs_read(Path::new("/any/thing")), Family::Fs, Some("*"));
    denied(&policy.check_fs_write(Path::new("/x")), Family::Fs, "[policy.fs].write is empty");
    assert!(!policy.check_env("HOME").allowed);
    assert!(!policy.check_shell(Path::new("/bin/true")).allowed);
    let url = normalize_url("https://api.example.com/").unwrap();
    assert!(!policy.check_http("GET", &url).allowed);
}

#[test]
fn no_match_reasons() {
    let policy = compile(&PolicyConfig {
        fs: Some(FsPolicyConfig {
            read: vec!["/srv/data/**".to_owned()],
            write: vec!["/srv/out/**".to_owned()],
            ..FsPolicyConfig::default()
        }),
        env: Some(EnvPolicyConfig { read_keys: vec!["APP_*".to_owned(), "REGION".to_owned()] }),
        http: Some(HttpPolicyConfig {
            urls: vec!["https://api.example.com/v1/**".to_owned()],
            methods: vec!["get".to_owned(), "POST".to_owned()],
        }),
        shell: Some(ShellPolicyConfig { commands: vec!["/usr/local/bin/report".to_owned()] }),
        mcp: Some(McpPolicyConfig {
            servers: vec![],
            tools: vec!["search_*".to_owned()],
            resources: vec!["docs://**".to_owned()],
        }),
        rego: None,
    });
    allowed(&policy.check_fs_read(Path::new("/srv/data/a.csv")), Family::Fs, Some("/srv/data/**"));
    denied(&policy.check_fs_read(Path::new("/srv/out/a")), Family::Fs, "path not in [policy.fs].read");
    denied(&policy.check_fs_write(Path::new("/etc/cron.d/backdoor")), Family::Fs, "path not in [policy.fs].write");
    assert_eq!(
        policy.check_fs_write(Path::new("/etc/cron.d/backdoor")).violation_text("write_file", "/etc/cron.d/backdoor"),
        "policy violation: write_file denied on /etc/cron.d/backdoor: path not in [policy.fs].write"
    );
    allowed(&policy.check_env("APP_NAME"), Family::Env, Some("APP_*"));
    allowed(&policy.check_env("REGION"), Family::Env, Some("REGION"));
    denied(&policy.check_env("REGION_X"), Family::Env, "key not in [policy.env].read_keys");
    denied(&policy.check_env("app_name"), Family::Env, "key not in [policy.env].read_keys");
    allowed(&policy.check_shell(Path::new("/usr/local/bin/report")), Family::Shell, Some("/usr/local/bin/report"));
    denied(&policy.check_shell(Path::new("/bin/sh")), Family::Shell, "command not in [policy.shell].commands");

    let url = normalize_url("https://api.example.com/v1/items").unwrap();
    allowed(&policy.check_http("GET", &url), Family::Http, Some("https://api.example.com/v1/**"));
    allowed(&policy.check_http("post", &url), Family::Http, Some("https://api.example.com/v1/**"));
    denied(&policy.check_http("DELETE", &url), Family::Http, "method DELETE not in [policy.http].methods");
    denied(&policy.check_http("delete", &url), Family::Http, "method DELETE not in [policy.http].methods");
    let other = normalize_url("https://api.example.com/v2/items").unwrap();
    denied(&policy.check_http("GET", &other), Family::Http, "URL not in [policy.http].urls");

    allowed(&policy.check_mcp_legacy_tool("search_docs"), Family::Mcp, Some("search_*"));
    denied(
        &policy.check_mcp_legacy_tool("delete_all"),
        Family::Mcp,
        "tool delete_all not in allow_tools of server default",
    );
    allowed(&policy.check_mcp_legacy_resource("docs://a/b"), Family::Mcp, Some("docs://**"));
    denied(
        &policy.check_mcp_legacy_resource("file:///etc/passwd"),
        Family::Mcp,
        "resource file:///etc/passwd not in allow_resources of server default",
    );
}

#[test]
fn empty_methods_mean_any_method_but_urls_still_apply() {
    let policy = compile(&PolicyConfig {
        http: Some(HttpPolicyConfig { urls: vec!["https://api.example.com/**".to_owned()], methods: vec![] }),
        ..PolicyConfig::default()
    });
    let url = normalize_url("https://api.example.com/x").unwrap();
    for method in ["GET", "DELETE", "PATCH", "PROPFIND"] {
        assert!(policy.check_http(method, &url).allowed, "{method}");
    }
    let elsewhere = normalize_url("https://evil.example.net/x").unwrap();
    denied(&policy.check_http("GET", &elsewhere), Family::Http, "URL not in [policy.http].urls");

    // Methods listed but no URL list: the URL list is still empty.
    let policy = compile(&PolicyConfig {
        http: Some(HttpPolicyConfig { urls: vec![], methods: vec!["GET".to_owned()] }),
        ..PolicyConfig::default()
    });
    denied(&policy.check_http("GET", &url), Family::Http, "[policy.http].urls is empty");
}

#[test]
fn mcp_server_allowlists() {
    let tools: Vec<NamePattern> =
        ["query", "search_*"].iter().map(|pattern| NamePattern::parse(pattern).unwrap()).collect();
    allowed(&check_mcp_tool("warehouse", &tools, "query"), Family::Mcp, Some("query"));
    allowed(&check_mcp_tool("warehouse", &tools, "search_x"), Family::Mcp, Some("search_*"));
    denied(
        &check_mcp_tool("warehouse", &tools, "drop"),
        Family::Mcp,
        "tool drop not in allow_tools of server warehouse",
    );
    denied(
        &check_mcp_resource("warehouse", &[], "db://x"),
        Family::Mcp,
        "resource db://x not in allow_resources of server warehouse",
    );
}

#[test]
fn rego_table_is_carried_for_the_runtime() {
    let policy = compile(&PolicyConfig {
        rego: Some(agentd_policy::RegoConfig {
            inline: Some("package agent".to_owned()),
            ..agentd_policy::RegoConfig::default()
        }),
        ..PolicyConfig::default()
    });
    assert_eq!(policy.rego().and_then(|rego| rego.inline.as_deref()), Some("package agent"));
}

#[test]
fn family_labels() {
    let labels: Vec<&str> = [Family::Fs, Family::Env, Family::Http, Family::Shell, Family::Mcp]
        .iter()
        .map(|family| family.as_str())
        .collect();
    assert_eq!(labels, ["fs", "env", "http", "shell", "mcp"]);
    assert_eq!(Family::Http.to_string(), "http");
}

#[test]
fn a_policy_can_be_shared_between_concurrent_runs() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<Policy>();
    shareable::<Decision>();
}
