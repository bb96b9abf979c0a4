//! The escape corpus (issue acceptance: at least 40 cases): paths, URLs, shell commands and
//! environment keys that try to get around `[policy]`. Each case runs through the binary and must
//! be denied (exit 5, `policy violation: …`), audited (`policy.denied` in the audit file with the
//! checked target), and counted in the record (`cost.policy_denials`).

use serde_json::{Value, json};

use crate::support::Scratch;

/// One attempt: which node runs, and with what.
struct Case {
    op: &'static str,
    /// The path / URL / key given as input (shell: the literal command).
    target: String,
    /// A fragment the denial's target or reason must contain.
    expect: String,
}

fn workflow(root: &str, shell_command: &str) -> String {
    format!(
        r#"name = "escapes"

[policy.fs]
read = ["{root}/safe/**"]
write = ["{root}/safe/**"]

[policy.env]
read_keys = ["APP_*"]

[policy.http]
urls = ["https://api.example.com/v1/**", "http://127.0.0.1:18282/ok"]
methods = ["GET"]

[policy.shell]
commands = ["/usr/bin/true"]

[[secrets]]
name = "app_secret"
source = "env"
var = "APP_SECRET"

[logging.audit]
target = "file:audit.jsonl"

[[start_nodes]]
name = "read_file"
source = "manual"
entry_node = "read"

[[start_nodes]]
name = "write_file"
source = "manual"
entry_node = "write"

[[start_nodes]]
name = "create_dir"
source = "manual"
entry_node = "mkdir"

[[start_nodes]]
name = "read_env"
source = "manual"
entry_node = "env"

[[start_nodes]]
name = "http_request"
source = "manual"
entry_node = "get"

[[start_nodes]]
name = "http_delete"
source = "manual"
entry_node = "delete"

[[start_nodes]]
name = "shell_run"
source = "manual"
entry_node = "shell"

[[nodes]]
id = "read"
type = "read_file"
path_from = "trigger.target"

[[nodes]]
id = "write"
type = "write_file"
path_from = "trigger.target"
content_from = "trigger.target"

[[nodes]]
id = "mkdir"
type = "create_dir"
path_from = "trigger.target"

[[nodes]]
id = "env"
type = "read_env"
key = "{key}"

[[nodes]]
id = "get"
type = "http_request"
method = "GET"
url_from = "trigger.target"

[[nodes]]
id = "delete"
type = "http_request"
method = "DELETE"
url_from = "trigger.target"

[[nodes]]
id = "shell"
type = "shell_run"
command = "{shell_command}"
"#,
        key = "@KEY@"
    )
}

fn cases(root: &str) -> Vec<Case> {
    let case = |op: &'static str, target: &str, expect: &str| Case {
        op,
        target: target.replace("@R@", root),
        expect: expect.replace("@R@", root),
    };
    let mut cases = vec![
        // Paths (read, write, create_dir): dot segments, symlinks, absolute escapes.
        case("read_file", "@R@/safe/../secret.txt", "@R@/secret.txt"),
        case("read_file", "safe/../secret.txt", "@R@/secret.txt"),
        case("read_file", "./safe/./../secret.txt", "@R@/secret.txt"),
        case("read_file", "@R@/safe/a/b/../../../secret.txt", "@R@/secret.txt"),
        case("read_file", "@R@/safe/link/x.txt", "@R@/outside/x.txt"),
        case("read_file", "@R@/safe/file-link", "@R@/outside/x.txt"),
        case("read_file", "/etc/passwd", "/etc/passwd"),
        case("read_file", "/proc/self/environ", "/proc/"),
        case("read_file", "@R@/safe/..", "@R@"),
        case("read_file", "@R@/safe2/x.txt", "@R@/safe2/x.txt"),
        case("write_file", "@R@/safe/../escape.txt", "@R@/escape.txt"),
        case("write_file", "@R@/safe/link/new.txt", "@R@/outside/new.txt"),
        case("write_file", "@R@/safe/link/deep/new.txt", "@R@/outside/deep/new.txt"),
        case("write_file", "safe//sub/../../escape.txt", "@R@/escape.txt"),
        case("write_file", "/tmp/agentd-escape.txt", "/tmp/agentd-escape.txt"),
        case("write_file", "@R@/safe/file-link", "@R@/outside/x.txt"),
        case("create_dir", "@R@/safe/../made", "@R@/made"),
        case("create_dir", "@R@/safe/link/made", "@R@/outside/made"),
        case("create_dir", "/", "/"),
        // Environment keys.
        case("read_env", "PATH", "key not in [policy.env].read_keys"),
        case("read_env", "HOME", "key not in [policy.env].read_keys"),
        case("read_env", "app_lower", "key not in [policy.env].read_keys"),
        case("read_env", "APP", "key not in [policy.env].read_keys"),
        case("read_env", "XAPP_Y", "key not in [policy.env].read_keys"),
        case("read_env", "APP_SECRET", "variable backs a declared secret"),
        // URLs.
        case("http_request", "https://api.example.com/v1/../admin", "GET https://api.example.com/admin"),
        case("http_request", "https://api.example.com/v1/%2e%2e/admin", "GET https://api.example.com/admin"),
        case("http_request", "https://api.example.com/v1/..%2Fadmin", "URL path has an encoded separator"),
        case("http_request", "https://api.example.com/v1/%2E%2E/admin", "GET https://api.example.com/admin"),
        case("http_request", "https://api.example.com/v1/a%5C..%5Cadmin", "URL path has an encoded separator"),
        case("http_request", "https://api.example.com/v1/x%00", "URL path has an encoded separator"),
        case("http_request", "https://api.example.com.evil.net/v1/x", "URL not in [policy.http].urls"),
        case("http_request", "https://api.example.com@evil.net/v1/x", "URL has userinfo"),
        case("http_request", "https://user:pw@api.example.com/v1/x", "URL has userinfo"),
        case("http_request", "http://api.example.com/v1/x", "URL not in [policy.http].urls"),
        case("http_request", "HTTP://api.example.com/v1/x", "URL not in [policy.http].urls"),
        case("http_request", "https://api.example.com:8443/v1/x", "URL not in [policy.http].urls"),
        case("http_request", "https://api.example.com/v1/x\r\nHost: evil", "control or whitespace"),
        case("http_request", "https://api.example.com/v1/x y", "control or whitespace"),
        case("http_request", "file:///etc/passwd", "URL is not a valid http(s) URL"),
        case("http_request", "gopher://api.example.com/v1/x", "URL is not a valid http(s) URL"),
        case("http_request", "http://localhost:18282/ok", "URL not in [policy.http].urls"),
        // Legacy IPv4 spellings normalise to 127.0.0.1, so only the exact allowed URL matches.
        case("http_request", "http://2130706433:18282/ok/../admin", "GET http://127.0.0.1:18282/admin"),
        case("http_request", "http://0x7f.1:18283/ok", "GET http://127.0.0.1:18283/ok"),
        case("http_request", "http://[::1]:18282/ok", "URL not in [policy.http].urls"),
        case("http_request", "http://[::ffff:127.0.0.1]:18282/ok", "URL not in [policy.http].urls"),
        case("http_request", "http://169.254.169.254/latest/meta-data/", "URL not in [policy.http].urls"),
        case("http_delete", "https://api.example.com/v1/items", "method DELETE not in [policy.http].methods"),
    ];
    // Shell commands: the literal command is canonicalised before the check.
    for command in ["/bin/sh", "/usr/bin/env", "/usr/bin/../bin/sh", "@R@/true", "@R@/bin-link/sh"] {
        cases.push(case("shell_run", command, "command not in [policy.shell].commands"));
    }
    cases
}

fn layout(scratch: &Scratch) {
    scratch.mkdir("safe");
    scratch.mkdir("records");
    scratch.write("outside/x.txt", "outside");
    scratch.write("secret.txt", "top secret");
    std::os::unix::fs::symlink(scratch.path("outside"), scratch.path("safe/link")).expect("symlink");
    std::os::unix::fs::symlink(scratch.path("outside/x.txt"), scratch.path("safe/file-link")).expect("symlink");
    // A file named like an allowed program that is really a shell.
    std::os::unix::fs::symlink("/bin/sh", scratch.path("true")).expect("symlink");
    std::os::unix::fs::symlink("/bin", scratch.path("bin-link")).expect("symlink");
}

#[test]
fn every_escape_is_denied_audited_and_counted() {
    let scratch = Scratch::new();
    layout(&scratch);
    let root = scratch.root_str();
    let cases = cases(&root);
    assert!(cases.len() >= 40, "the corpus has {} cases", cases.len());
    let before = scratch.listing();
    for (i, case) in cases.iter().enumerate() {
        let (command, key) = match case.op {
            "shell_run" => (case.target.clone(), "APP_X".to_string()),
            "read_env" => ("/usr/bin/true".to_string(), case.target.clone()),
            _ => ("/usr/bin/true".to_string(), "APP_X".to_string()),
        };
        let file = format!("escape-{i}.toml");
        scratch.write(&file, workflow(&root, &command).replace("@KEY@", &key));
        let input = json!({"target": case.target}).to_string();
        let record = format!("records/{i}.json");
        let mut cmd = scratch.agentd();
        cmd.args(["run", &file, "--quiet", "--start", case.op, "--input", &input, "--record", &record])
            .env("APP_SECRET", "secret-value-for-escapes")
            .env("HOME", "/root");
        let run = scratch.exec(&mut cmd);
        let label = format!("case {i} ({} {:?})", case.op, case.target);
        run.code(5);
        let outcome = run.json();
        let reason = outcome["reason"].as_str().unwrap_or_default();
        let op = if case.op == "http_delete" { "http_request" } else { case.op };
        assert!(reason.starts_with(&format!("policy violation: {op} denied on ")), "{label}: {reason}");
        assert!(reason.contains(&case.expect), "{label}: {reason} lacks {}", case.expect);
        let record: Value = serde_json::from_str(&scratch.read(&record)).expect("record");
        assert_eq!(record["cost"]["policy_denials"], 1, "{label}");
        let audit = scratch.read("audit.jsonl");
        let denial = audit
            .lines()
            .rev()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|e| e["fields"]["event"] == "policy.denied")
            .unwrap_or_else(|| panic!("{label}: no policy.denied in audit"));
        assert_eq!(denial["fields"]["op"], op, "{label}");
        std::fs::remove_file(scratch.path("audit.jsonl")).expect("reset audit");
    }
    // Nothing was created or changed outside the records and the generated workflow files.
    let after: Vec<String> = scratch
        .listing()
        .into_iter()
        .filter(|p| !p.starts_with("records") && !p.starts_with("escape-") && !p.starts_with(".agentd"))
        .collect();
    let before: Vec<String> =
        before.into_iter().filter(|p| !p.starts_with(".agentd") && !p.starts_with("records")).collect();
    assert_eq!(after, before, "an escape changed the filesystem");
    assert!(!std::path::Path::new("/tmp/agentd-escape.txt").exists());
    assert_eq!(scratch.read("outside/x.txt"), "outside");
}
