//! The workflow corpus: every file under `tests/corpus/valid` must load with no errors, every
//! file under `tests/corpus/invalid` must raise the code named on its first line. One snapshot
//! per file records every diagnostic with its code, location and rendered caret output, so a
//! change in any message or location shows up in review.

use std::collections::BTreeSet;

use agentd_workflow::LoadFailure;

use crate::support::{Loaded, corpus_files, error_codes, load_corpus_file, report};

/// Every validation error code of 03 §9.1 and §9.2 and every load-error code of 03 §1.
const ALL_ERROR_CODES: &[&str] = &[
    // 03 §9.1
    "dup_node_id",
    "dup_start_name",
    "dup_http_route",
    "unknown_http_start_node",
    "unknown_trigger_start_node",
    "unknown_start_entry_node",
    "dangling_edge",
    "unknown_mcp_server",
    "ambiguous_mcp_server",
    "agent_loop_steps_out_of_range",
    "agent_loop_missing_instructions",
    "agent_loop_no_tools",
    "agent_loop_unknown_tool",
    "respond_status_out_of_range",
    "respond_empty_content_type",
    "map_zero_max_items",
    "map_zero_concurrency",
    "map_empty_workflow",
    "http_header_bad_name",
    "http_header_crlf",
    "http_header_bad_placeholder",
    "cycle",
    "ambiguous_start_entry",
    "unreachable_node",
    // 03 §9.2
    "policy_bad_pattern",
    "llm_bad_temperature",
    "agent_loop_bad_temperature",
    "trigger_bad_schedule",
    "unsupported_trigger_type",
    "auth_bad_ref",
    "rate_limit_out_of_range",
    // load errors (03 §1)
    "toml_syntax",
    "unknown_key",
    "missing_key",
    "wrong_type",
    "bad_value",
    "wrapped_form",
    "unknown_node_type",
];

#[test]
fn valid_corpus_loads_with_no_errors() {
    let mut problems = Vec::new();
    insta::glob!("../corpus/valid", "*.toml", |path| {
        let loaded = load_corpus_file(path);
        let name = &loaded.source.name;
        if let Err(failure) = &loaded.result {
            let kind = match failure {
                LoadFailure::Load(_) => "a load error",
                LoadFailure::Invalid(_) => "validation errors",
            };
            problems.push(format!("{name} must be valid but has {kind}:\n{}", report(&loaded.source, &loaded.result)));
        }
        if loaded.directives.expect.is_some() {
            problems.push(format!("{name}: a valid file carries no `# expect:`"));
        }
        insta::assert_snapshot!(report(&loaded.source, &loaded.result));
    });
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn invalid_corpus_raises_the_expected_code() {
    let mut problems = Vec::new();
    insta::glob!("../corpus/invalid", "*.toml", |path| {
        let loaded = load_corpus_file(path);
        problems.extend(invalid_file_problems(&loaded));
        insta::assert_snapshot!(report(&loaded.source, &loaded.result));
    });
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// What is wrong with an invalid corpus file's expectation, if anything.
fn invalid_file_problems(loaded: &Loaded) -> Vec<String> {
    let name = &loaded.source.name;
    let first_line = loaded.source.text.lines().next().unwrap_or_default();
    let Some(expect) = loaded.directives.expect.as_deref() else {
        return vec![format!("{name}: line 1 must be `# expect: <code>`, found `{first_line}`")];
    };
    let mut problems = Vec::new();
    if first_line != format!("# expect: {expect}") {
        problems.push(format!("{name}: the `# expect:` line must be line 1"));
    }
    if !ALL_ERROR_CODES.contains(&expect) {
        problems.push(format!("{name}: `{expect}` is not an error code of 03 §1/§9"));
    }
    let errors = error_codes(&loaded.result);
    if !errors.contains(&expect) {
        problems.push(format!(
            "{name}: expected `{expect}` among the errors, got {errors:?}\n{}",
            report(&loaded.source, &loaded.result)
        ));
    }
    // Each file is focused: any other error code must be declared with `# also:`.
    for code in errors {
        if code != expect && !loaded.directives.also.iter().any(|also| also == code) {
            problems.push(format!(
                "{name}: unexpected error `{code}` (declare it with `# also: {code}` if intended)\n{}",
                report(&loaded.source, &loaded.result)
            ));
        }
    }
    problems
}

#[test]
fn corpus_is_large_enough_and_covers_every_error_code() {
    let valid = corpus_files("valid");
    let invalid = corpus_files("invalid");
    assert!(valid.len() >= 30, "only {} valid corpus files", valid.len());
    assert!(invalid.len() >= 45, "only {} invalid corpus files", invalid.len());
    let expected: BTreeSet<String> =
        invalid.iter().filter_map(|path| load_corpus_file(path).directives.expect).collect();
    let missing: Vec<&&str> = ALL_ERROR_CODES.iter().filter(|code| !expected.contains(**code)).collect();
    assert!(missing.is_empty(), "no invalid corpus file expects {missing:?}");
}

/// Variants the brief of each code asks for, recognised by a fragment of their message.
const EXPECTED_VARIANTS: &[(&str, &str)] = &[
    ("dangling_edge", ": source node `"),
    ("dangling_edge", ": target node `"),
    ("unknown_mcp_server", ") references unknown mcp_server"),
    ("unknown_mcp_server", "(mcp.resource.updated) references unknown mcp_server"),
    ("policy_bad_pattern", "[policy.fs]."),
    ("policy_bad_pattern", "[policy.shell]."),
    ("policy_bad_pattern", "[policy.env].read_keys"),
    ("policy_bad_pattern", "[policy.http].urls"),
    ("policy_bad_pattern", "[policy.mcp]."),
    ("policy_bad_pattern", "mcp_servers["),
    ("trigger_bad_schedule", "(cron): cron `"),
    ("trigger_bad_schedule", "(interval): interval `"),
    ("trigger_bad_schedule", "time zone `"),
    ("unsupported_trigger_type", "`internal.event`"),
    ("unsupported_trigger_type", "`mcp.resource.created`"),
    ("auth_bad_ref", "HTTP route `"),
    ("auth_bad_ref", "[server].metrics_auth"),
    ("unknown_key", "unknown top-level key"),
    ("unknown_key", "(type `llm_infer`): unknown field"),
    ("unknown_key", "edges[0]: unknown field"),
    ("unknown_key", "[policy]: unknown field `exec`"),
    ("unknown_key", "(source `env`): unknown field"),
    ("unknown_key", "(type `fs_watch`): unknown field"),
    ("missing_key", "missing required top-level key `name`"),
    ("missing_key", "missing field `id`"),
    ("missing_key", "missing field `type`"),
    ("wrong_type", "invalid type"),
    ("wrong_type", "must be an array of tables"),
    ("unknown_node_type", "unknown node type"),
    ("wrapped_form", "found 0"),
    ("wrapped_form", "found 2"),
    ("wrapped_form", "is not allowed next to [[workflows]]"),
    ("bad_value", "unknown trigger type"),
    ("bad_value", "unknown secret source"),
    ("bad_value", "unknown variant"),
];

#[test]
fn invalid_corpus_covers_every_variant() {
    let mut found = Vec::new();
    for path in corpus_files("invalid") {
        let loaded = load_corpus_file(&path);
        for diagnostic in crate::support::diagnostics(&loaded.result) {
            found.push((diagnostic.code, diagnostic.message.clone()));
        }
    }
    let missing: Vec<_> = EXPECTED_VARIANTS
        .iter()
        .filter(|(code, fragment)| !found.iter().any(|(c, message)| c == code && message.contains(fragment)))
        .collect();
    assert!(missing.is_empty(), "no invalid corpus file raises {missing:?}");
}
