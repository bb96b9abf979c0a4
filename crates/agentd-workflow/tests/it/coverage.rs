//! The valid corpus must exercise every node kind and every field of 03/04 and of the tables
//! they point to, so that a loader regression on any field breaks a corpus file. The lists below
//! are written from the specification, not from the model structs: a field the model forgets to
//! accept makes a corpus file fail to load, and a field the corpus forgets to use fails here.

use std::collections::BTreeSet;

use toml::{Table, Value};

use crate::support::corpus_files;

/// Fields every node may carry (03 §5). `shell_run.timeout_secs` is its own field (04 §5.2).
const COMMON_NODE_FIELDS: &[&str] = &["id", "type", "retry", "timeout_secs", "description"];

/// Tables whose keys are user-chosen (header names, schema keywords, …), by their last key:
/// recorded as one field, never descended into.
const OPAQUE_TABLES: &[&str] =
    &["headers", "tool_pins", "resource_attrs", "extra_params", "input_schema", "output_schema"];

/// The same, by full path, where the last key alone is ambiguous (`[policy.env]` is not opaque).
const OPAQUE_PATHS: &[&str] = &["mcp_servers.env", "policy.rego.data"];

/// Every field path the valid corpus must use at least once.
const EXPECTED_FIELDS: &[&str] = &[
    // 03 §2–§5
    "name",
    "description",
    "start_nodes.name",
    "start_nodes.source",
    "start_nodes.entry_node",
    "edges.from",
    "edges.to",
    "edges.when",
    "edges.max_iterations",
    "nodes.id",
    "nodes.type",
    "nodes.retry.max_attempts",
    "nodes.retry.backoff_ms",
    "nodes.retry.on",
    "nodes.retry.jitter",
    "nodes.timeout_secs",
    "nodes.description",
    // 04, every kind and field
    "nodes.condition.expr",
    "nodes.switch.expr",
    "nodes.merge",
    "nodes.fail.reason",
    "nodes.terminate",
    "nodes.pause_for_approval.reason",
    "nodes.respond.body_template",
    "nodes.respond.status",
    "nodes.respond.content_type",
    "nodes.respond.input_from",
    "nodes.parse_json.input_from",
    "nodes.json_select.input_from",
    "nodes.json_select.path",
    "nodes.template_render.template",
    "nodes.template_render.input_from",
    "nodes.diff_compute.left_from",
    "nodes.diff_compute.right_from",
    "nodes.read_file.path_from",
    "nodes.write_file.path_from",
    "nodes.write_file.content_from",
    "nodes.create_dir.path_from",
    "nodes.read_env.key",
    "nodes.http_request.method",
    "nodes.http_request.url_from",
    "nodes.http_request.body_from",
    "nodes.http_request.headers",
    "nodes.shell_run.command",
    "nodes.shell_run.args_from",
    "nodes.shell_run.timeout_secs",
    "nodes.call_mcp_tool.tool",
    "nodes.call_mcp_tool.args_from",
    "nodes.call_mcp_tool.server",
    "nodes.read_mcp_resource.resource_from",
    "nodes.read_mcp_resource.server",
    "nodes.llm_infer.backend",
    "nodes.llm_infer.prompt",
    "nodes.llm_infer.input_from",
    "nodes.llm_infer.output_schema",
    "nodes.llm_infer.output_repairs",
    "nodes.llm_infer.max_tokens",
    "nodes.llm_infer.temperature",
    "nodes.agent_loop.backend",
    "nodes.agent_loop.instructions",
    "nodes.agent_loop.instructions_from",
    "nodes.agent_loop.tools",
    "nodes.agent_loop.max_steps",
    "nodes.agent_loop.max_tokens",
    "nodes.agent_loop.step_max_tokens",
    "nodes.agent_loop.temperature",
    "nodes.agent_loop.max_result_bytes",
    "nodes.call.workflow",
    "nodes.call.input_from",
    "nodes.call.start",
    "nodes.parallel.branches.workflow",
    "nodes.parallel.branches.input_from",
    "nodes.parallel.branches.start",
    "nodes.map.items_from",
    "nodes.map.workflow",
    "nodes.map.max_items",
    "nodes.map.max_concurrent",
    "nodes.map.start",
    // 07 §10
    "triggers.cron.schedule",
    "triggers.cron.start_node",
    "triggers.cron.timezone",
    "triggers.interval.every",
    "triggers.interval.start_node",
    "triggers.fs_watch.path",
    "triggers.fs_watch.start_node",
    "triggers.fs_watch.recursive",
    "triggers.fs_watch.events",
    "triggers.fs_watch.debounce_ms",
    "triggers.mcp.resource.updated.server",
    "triggers.mcp.resource.updated.resource",
    "triggers.mcp.resource.updated.start_node",
    // 07 §3, 05 §8, 12 §4.1
    "http_routes.method",
    "http_routes.path",
    "http_routes.start_node",
    "http_routes.input_schema",
    "http_routes.auth",
    "http_routes.rate_limit.capacity",
    "http_routes.rate_limit.per_second",
    "http_routes.rate_limit.per",
    "http_routes.idempotency_key",
    "http_routes.idempotency_ttl_secs",
    "http_routes.max_body_bytes",
    "http_routes.expose_headers",
    "http_routes.dispatch",
    "http_routes.wait_ms",
    // 05 §1
    "policy.fs.read",
    "policy.fs.write",
    "policy.fs.delete",
    "policy.fs.list",
    "policy.env.read_keys",
    "policy.http.urls",
    "policy.http.methods",
    "policy.shell.commands",
    "policy.mcp.servers",
    "policy.mcp.tools",
    "policy.mcp.resources",
    "policy.rego.inline",
    "policy.rego.file",
    "policy.rego.data",
    "policy.rego.query",
    // 07 §4.2
    "auth.bearer.tokens_env",
    "auth.bearer.tokens",
    "auth.basic.credentials_env",
    "auth.basic.credentials",
    "auth.hmac.secret_env",
    "auth.hmac.secret",
    "auth.hmac.header",
    "auth.hmac.prefix",
    "auth.oidc.issuer",
    "auth.oidc.audience",
    "auth.oidc.jwks_file",
    "auth.oidc.jwks_json",
    "auth.oidc.jwks_url",
    "auth.oidc.subject_allowlist",
    "auth.oidc.clock_skew_secs",
    "auth.oidc.algorithms",
    "auth.oidc.jwks_refresh_secs",
    "auth.oidc.jwks_min_refresh_secs",
    "auth.oidc.jwks_timeout_secs",
    "auth.oidc.expose_claims",
    // 08 §4.1, §4.2, §5.4
    "logging.level",
    "logging.format",
    "logging.target",
    "logging.enabled",
    "logging.rotation",
    "logging.audit.target",
    "logging.audit.redact_fields",
    "logging.audit.include_reason",
    "logging.otel.endpoint",
    "logging.otel.service_name",
    "logging.otel.protocol",
    "logging.otel.resource_attrs",
    "logging.otel.sample_ratio",
    "logging.otel.headers",
    "logging.otel.timeout_secs",
    // 07 §2, §5
    "server.max_connections",
    "server.max_header_bytes",
    "server.max_body_bytes",
    "server.header_timeout_secs",
    "server.idle_timeout_secs",
    "server.metrics_auth",
    "server.tls.cert_file",
    "server.tls.key_file",
    "server.tls.client_auth.mode",
    "server.tls.client_auth.ca_file",
    // 08 §7.1
    "signing.required",
    "signing.public_key_file",
    "signing.public_key_pem",
    "signing.algorithm",
    // 05 §7, 12 §7
    "budget.max_memory_mb",
    "budget.max_cpu_secs",
    "budget.max_run_time_secs",
    "budget.max_fs_write_mb",
    "budget.max_llm_tokens",
    "budget.process.max_llm_tokens",
    "budget.process.max_fs_write_mb",
    "budget.fleet.max_llm_tokens",
    "budget.fleet.max_runs",
    "budget.fleet.window",
    "budget.fleet.allowance_tokens",
    // 08 §1.1
    "mcp_servers.name",
    "mcp_servers.command",
    "mcp_servers.url",
    "mcp_servers.allow_tools",
    "mcp_servers.allow_resources",
    "mcp_servers.env",
    "mcp_servers.env_passthrough",
    "mcp_servers.headers",
    "mcp_servers.timeout_secs",
    "mcp_servers.startup_timeout_secs",
    "mcp_servers.tool_pins",
    // 06 §2
    "intelligence.backends.name",
    "intelligence.backends.provider",
    "intelligence.backends.model",
    "intelligence.backends.api_key_env",
    "intelligence.backends.base_url",
    "intelligence.backends.max_tokens",
    "intelligence.backends.path",
    "intelligence.backends.url",
    "intelligence.backends.bearer_env",
    "intelligence.backends.timeout_secs",
    "intelligence.backends.connect_timeout_secs",
    "intelligence.backends.max_retries",
    "intelligence.backends.headers",
    // 08 §3.1
    "secrets.name",
    "secrets.env.var",
    "secrets.file.path",
    "secrets.file.trim",
    "secrets.command.argv",
    "secrets.command.timeout_secs",
    "secrets.command.ttl_secs",
    "secrets.oauth2.token_url",
    "secrets.oauth2.client_id_env",
    "secrets.oauth2.client_secret_env",
    "secrets.oauth2.scopes",
    "secrets.oauth2.extra_params",
    "secrets.oauth2.auth_style",
    "secrets.oauth2.skew_secs",
    // 11 §4.1
    "control.enabled",
    "control.bind",
    "control.auth",
    "control.allow_unauthenticated_loopback",
    "control.viewers",
    "control.operators",
    "control.approvers",
    "control.publishers",
    "control.forbid_self_approval",
    "control.redact_payloads",
    "control.cors_origins",
    "control.max_sse_clients",
    "control.rate_limit.capacity",
    "control.rate_limit.per_second",
    // 12 §2.2
    "store.url",
    "store.url_secret",
    "store.password_secret",
    "store.schema",
    "store.pool_size",
    "store.connect_timeout_secs",
    "store.statement_timeout_ms",
    "store.tls",
    "store.ca_file",
    "store.node_id",
    "store.lease_secs",
    "store.heartbeat_secs",
    "store.poll_interval_ms",
    "store.max_concurrent_runs",
    "store.max_attempts",
    "store.orphan_grace_secs",
    "store.resume_across_versions",
    "store.leader_lease_secs",
    "store.misfire_grace_secs",
    "store.effect_key_header",
    "store.auto_migrate",
    "store.oneshot_handoff",
];

/// Value forms the corpus must show, beyond plain field presence.
const EXPECTED_FORMS: &[&str] = &[
    "document:bare",
    "document:wrapped",
    "start_nodes.source=manual",
    "start_nodes.source=http",
    "start_nodes.source=event",
    "start_nodes.entry_node:absent",
    "edges.when=*",
    "edges.when:label",
    "edges.max_iterations=0",
    "retry.on=any",
    "retry.on=transient",
    "triggers.cron.schedule:5 fields",
    "triggers.cron.schedule:6 fields",
    "triggers.cron.schedule:7 fields",
    "triggers.cron.schedule:@shorthand",
    "http_routes.input_schema:string",
    "http_routes.input_schema:table",
    "http_routes.rate_limit:inline table",
    "http_routes.rate_limit:sub-table",
    "http_routes.dispatch=local",
    "http_routes.dispatch=queue",
    "nodes.llm_infer.output_schema=inline",
    "nodes.llm_infer.output_schema=json",
    "nodes.llm_infer.output_schema:file",
    "nodes.llm_infer.output_schema:table",
    "intelligence.backends.provider=anthropic",
    "intelligence.backends.provider=openai",
    "intelligence.backends.provider=gemini",
    "intelligence.backends.provider=openai-compatible",
    "intelligence.backends.provider=unix",
    "intelligence.backends.provider=http",
    "mcp_servers:stdio",
    "mcp_servers:url",
    "secrets.oauth2.auth_style=basic",
    "policy.rego:inline",
    "policy.rego:file",
];

#[test]
fn valid_corpus_uses_every_field_of_the_specification() {
    let mut seen = BTreeSet::new();
    for path in corpus_files("valid") {
        let text = std::fs::read_to_string(&path).expect("readable corpus file");
        let document: Table = text.parse().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        record_document(&document, &text, &mut seen);
    }
    let missing: Vec<&&str> =
        EXPECTED_FIELDS.iter().chain(EXPECTED_FORMS).filter(|field| !seen.contains(**field)).collect();
    assert!(missing.is_empty(), "the valid corpus never uses: {missing:#?}");
    let missing_kinds: Vec<&&str> =
        agentd_workflow::KIND_NAMES.iter().filter(|kind| !seen.contains(&format!("nodes.{kind}"))).collect();
    assert!(missing_kinds.is_empty(), "the valid corpus has no node of kind {missing_kinds:?}");
}

fn record_document(document: &Table, text: &str, seen: &mut BTreeSet<String>) {
    let body = match document.get("workflows").and_then(Value::as_array).and_then(|items| items.first()) {
        Some(Value::Table(inner)) => {
            seen.insert("document:wrapped".into());
            inner
        }
        _ => {
            seen.insert("document:bare".into());
            document
        }
    };
    if text.contains("[http_routes.rate_limit]") || text.contains("[workflows.http_routes.rate_limit]") {
        seen.insert("http_routes.rate_limit:sub-table".into());
    }
    for (key, value) in body {
        match (key.as_str(), value) {
            ("nodes", Value::Array(nodes)) => {
                nodes.iter().filter_map(Value::as_table).for_each(|n| record_node(n, seen))
            }
            ("triggers" | "secrets", Value::Array(entries)) => {
                let tag = if key == "triggers" { "type" } else { "source" };
                for entry in entries.iter().filter_map(Value::as_table) {
                    record_tagged(key, tag, entry, seen);
                }
            }
            ("auth", Value::Table(kinds)) => {
                for (kind, bindings) in kinds {
                    for binding in bindings.as_table().into_iter().flat_map(Table::values) {
                        walk(&format!("auth.{kind}"), binding, seen);
                    }
                }
            }
            _ => walk(key, value, seen),
        }
    }
    record_forms(body, text, seen);
}

fn record_node(node: &Table, seen: &mut BTreeSet<String>) {
    let kind = node.get("type").and_then(Value::as_str).unwrap_or("?");
    seen.insert(format!("nodes.{kind}"));
    for (key, value) in node {
        let common = COMMON_NODE_FIELDS.contains(&key.as_str()) && !(kind == "shell_run" && key == "timeout_secs");
        let prefix = if common { format!("nodes.{key}") } else { format!("nodes.{kind}.{key}") };
        walk(&prefix, value, seen);
        if key == "retry"
            && let Some(on) = value.get("on").and_then(Value::as_str)
        {
            seen.insert(format!("retry.on={on}"));
        }
    }
}

fn record_tagged(table: &str, tag: &str, entry: &Table, seen: &mut BTreeSet<String>) {
    let variant = entry.get(tag).and_then(Value::as_str).unwrap_or("?");
    for (key, value) in entry {
        match key.as_str() {
            k if k == tag => {}
            "name" => walk(&format!("{table}.name"), value, seen),
            _ => walk(&format!("{table}.{variant}.{key}"), value, seen),
        }
    }
}

/// Records `path` and everything below it (tables by key, arrays of tables element-wise).
fn walk(path: &str, value: &Value, seen: &mut BTreeSet<String>) {
    seen.insert(path.to_string());
    let last = path.rsplit('.').next().unwrap_or(path);
    if OPAQUE_TABLES.contains(&last) || OPAQUE_PATHS.contains(&path) {
        return;
    }
    match value {
        Value::Table(table) => {
            for (key, inner) in table {
                walk(&format!("{path}.{key}"), inner, seen);
            }
        }
        Value::Array(items) => {
            for item in items.iter().filter(|item| item.is_table()) {
                walk(path, item, seen);
            }
        }
        _ => {}
    }
}

/// Records the value forms of [`EXPECTED_FORMS`].
fn record_forms(body: &Table, text: &str, seen: &mut BTreeSet<String>) {
    let tables = |key: &str| -> Vec<&Table> {
        body.get(key).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_table).collect()
    };
    for start in tables("start_nodes") {
        if let Some(source) = start.get("source").and_then(Value::as_str) {
            seen.insert(format!("start_nodes.source={source}"));
        }
        if !start.contains_key("entry_node") {
            seen.insert("start_nodes.entry_node:absent".into());
        }
    }
    for edge in tables("edges") {
        match edge.get("when").and_then(Value::as_str) {
            Some("*") => seen.insert("edges.when=*".into()),
            Some(_) => seen.insert("edges.when:label".into()),
            None => false,
        };
        if edge.get("max_iterations").and_then(Value::as_integer) == Some(0) {
            seen.insert("edges.max_iterations=0".into());
        }
    }
    for trigger in tables("triggers") {
        if let Some(schedule) = trigger.get("schedule").and_then(Value::as_str) {
            let form = match schedule.split_whitespace().collect::<Vec<_>>().as_slice() {
                [shorthand] if shorthand.starts_with('@') => "@shorthand".to_string(),
                fields => format!("{} fields", fields.len()),
            };
            seen.insert(format!("triggers.cron.schedule:{form}"));
        }
    }
    for route in tables("http_routes") {
        match route.get("input_schema") {
            Some(Value::String(_)) => seen.insert("http_routes.input_schema:string".into()),
            Some(Value::Table(_)) => seen.insert("http_routes.input_schema:table".into()),
            _ => false,
        };
        if let Some(dispatch) = route.get("dispatch").and_then(Value::as_str) {
            seen.insert(format!("http_routes.dispatch={dispatch}"));
        }
    }
    if text.lines().any(|line| line.trim_start().starts_with("rate_limit = {")) {
        seen.insert("http_routes.rate_limit:inline table".into());
    }
    for node in tables("nodes") {
        match node.get("output_schema") {
            Some(Value::String(s)) if s == "inline" || s == "json" => {
                seen.insert(format!("nodes.llm_infer.output_schema={s}"))
            }
            Some(Value::String(_)) => seen.insert("nodes.llm_infer.output_schema:file".into()),
            Some(Value::Table(_)) => seen.insert("nodes.llm_infer.output_schema:table".into()),
            _ => false,
        };
    }
    for backend in
        body.get("intelligence").and_then(|i| i.get("backends")).and_then(Value::as_array).into_iter().flatten()
    {
        if let Some(provider) = backend.get("provider").and_then(Value::as_str) {
            seen.insert(format!("intelligence.backends.provider={provider}"));
        }
    }
    for server in tables("mcp_servers") {
        if server.contains_key("command") {
            seen.insert("mcp_servers:stdio".into());
        }
        if server.contains_key("url") {
            seen.insert("mcp_servers:url".into());
        }
    }
    for secret in tables("secrets") {
        if let Some(style) = secret.get("auth_style").and_then(Value::as_str) {
            seen.insert(format!("secrets.oauth2.auth_style={style}"));
        }
    }
    if let Some(rego) = body.get("policy").and_then(|p| p.get("rego")).and_then(Value::as_table) {
        for form in ["inline", "file"] {
            if rego.contains_key(form) {
                seen.insert(format!("policy.rego:{form}"));
            }
        }
    }
}
