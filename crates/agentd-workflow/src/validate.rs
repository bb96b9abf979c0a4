//! The validator (03 §9): every error and warning, collected in the specified check order.
//!
//! Inputs besides the document: whether `--mcp-stdio` is configured, and a [`FileSource`] for
//! the schema files the warnings inspect. Nothing else is read; nothing touches the network.

use std::collections::{BTreeMap, VecDeque};

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::diagnostic::{Diagnostic, Severity};
use crate::model::*;
use crate::source::SourceFile;
use crate::workflow::*;

/// Read access to auxiliary files (schema files) for the validator.
pub trait FileSource {
    /// The file's text, or `None` when it cannot be read.
    fn read_to_string(&self, path: &Path) -> Option<String>;
}

/// A [`FileSource`] that never finds anything (pure validation, tests).
pub struct NoFiles;

impl FileSource for NoFiles {
    fn read_to_string(&self, _path: &Path) -> Option<String> {
        None
    }
}

/// What the validator needs besides the document.
pub struct ValidateOptions<'a> {
    /// Whether a legacy `--mcp-stdio` server named `default` is configured.
    pub mcp_stdio: bool,
    /// The process working directory (first place relative schema paths are looked up).
    pub cwd: PathBuf,
    /// Reader for schema files.
    pub files: &'a dyn FileSource,
}

/// The outcome of validation that found errors.
#[derive(Debug, Clone)]
pub struct Rejected {
    /// The document's `name` (may be empty).
    pub workflow_name: String,
    /// Errors, in check order.
    pub errors: Vec<Diagnostic>,
    /// Warnings.
    pub warnings: Vec<Diagnostic>,
}

/// Validates a parsed document. `Ok` carries the compiled workflow (with its warnings).
pub fn validate(
    raw: RawWorkflow,
    source: &SourceFile,
    options: &ValidateOptions<'_>,
) -> Result<Workflow, Box<Rejected>> {
    let index = raw.nodes.iter().enumerate().map(|(i, n)| (n.id(), i)).collect();
    let mut v = Validator { raw: &raw, options, source, index, errors: Vec::new(), warnings: Vec::new() };
    v.run();
    let Validator { errors, warnings, .. } = v;
    if !errors.is_empty() {
        return Err(Box::new(Rejected { workflow_name: raw.name.clone(), errors, warnings }));
    }
    Ok(compile(raw, source, warnings))
}

struct Validator<'a> {
    raw: &'a RawWorkflow,
    options: &'a ValidateOptions<'a>,
    source: &'a SourceFile,
    /// Node id → index (the last declaration wins; duplicates are errors anyway).
    index: HashMap<&'a str, usize>,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

fn span_of<T>(s: &toml::Spanned<T>) -> Option<Range<usize>> {
    Some(s.span())
}

impl Validator<'_> {
    fn error(&mut self, code: &'static str, message: String, span: Option<Range<usize>>) {
        self.errors.push(Diagnostic::error(code, message, span));
    }

    fn warn(&mut self, code: &'static str, message: String, span: Option<Range<usize>>) {
        self.warnings.push(Diagnostic::warning(code, message, span));
    }

    fn run(&mut self) {
        let raw = self.raw;
        let start_names: HashSet<&str> = raw.start_nodes.iter().map(|s| s.name.get_ref().as_str()).collect();

        // 1. dup_node_id
        let mut seen = HashSet::default();
        let mut reported = HashSet::default();
        for node in &raw.nodes {
            if !seen.insert(node.id()) && reported.insert(node.id()) {
                self.error(
                    "dup_node_id",
                    format!("node id `{}` is declared more than once", node.id()),
                    span_of(&node.common.id),
                );
            }
        }
        // 2. dup_start_name
        let mut seen = HashSet::default();
        let mut reported = HashSet::default();
        for start in &raw.start_nodes {
            let name = start.name.get_ref().as_str();
            if !seen.insert(name) && reported.insert(name) {
                self.error(
                    "dup_start_name",
                    format!("start node name `{name}` is declared more than once"),
                    span_of(&start.name),
                );
            }
        }
        // 3. dup_http_route, unknown_http_start_node
        let mut seen = HashSet::default();
        for (route, span) in &raw.http_routes {
            let method = route.method.to_ascii_uppercase();
            let display = format!("{method} {}", route.path);
            if !seen.insert((method, route.path.clone())) {
                self.error("dup_http_route", format!("duplicate HTTP route `{display}`"), Some(span.clone()));
            }
            let start = route.start_node.get_ref();
            if !start_names.contains(start.as_str()) {
                self.error(
                    "unknown_http_start_node",
                    format!("HTTP route `{display}` points at unknown start node `{start}`"),
                    span_of(&route.start_node),
                );
            }
        }
        // 4. unknown_trigger_start_node
        for (trigger, _) in &raw.triggers {
            if let Some(start) = trigger.start_node()
                && !start_names.contains(start.get_ref().as_str())
            {
                self.error(
                    "unknown_trigger_start_node",
                    format!("trigger points at unknown start node `{}`", start.get_ref()),
                    span_of(start),
                );
            }
        }
        // 5. unknown_start_entry_node
        for start in &raw.start_nodes {
            if let Some(entry) = &start.entry_node
                && !self.index.contains_key(entry.get_ref().as_str())
            {
                self.error(
                    "unknown_start_entry_node",
                    format!(
                        "start node `{}` references unknown entry node `{}`",
                        start.name.get_ref(),
                        entry.get_ref()
                    ),
                    span_of(entry),
                );
            }
        }
        // 6. dangling_edge
        let mut dangling = false;
        for (index, edge) in raw.edges.iter().enumerate() {
            let (from, to) = (edge.from.get_ref(), edge.to.get_ref());
            if !self.index.contains_key(from.as_str()) {
                dangling = true;
                self.error(
                    "dangling_edge",
                    format!("edge #{index} `{from}` → `{to}`: source node `{from}` is not declared"),
                    span_of(&edge.from),
                );
            }
            if !self.index.contains_key(to.as_str()) {
                dangling = true;
                self.error(
                    "dangling_edge",
                    format!("edge #{index} `{from}` → `{to}`: target node `{to}` is not declared"),
                    span_of(&edge.to),
                );
            }
        }
        // 7. MCP server references
        self.check_mcp_references();
        // 8–11. per-kind checks
        self.check_agent_loops();
        self.check_responds();
        self.check_maps();
        self.check_http_headers();
        // 12. extension codes
        self.check_extension_codes();
        // 13–14. graph shape
        if !dangling {
            self.check_cycle();
            if !raw.nodes.is_empty() && !raw.start_nodes.is_empty() {
                self.check_entries_and_reachability();
            }
        }
        self.collect_warnings(dangling);
    }

    fn check_mcp_references(&mut self) {
        let raw = self.raw;
        let mut declared: Vec<&str> = raw.mcp_servers.iter().map(|s| s.name.get_ref().as_str()).collect();
        if self.options.mcp_stdio {
            declared.push("default");
        }
        for node in &raw.nodes {
            let Some(server) = node.kind.mcp_server() else {
                continue;
            };
            let kind = node.kind.type_name();
            match server {
                Some(server) if !declared.contains(&server) => self.error(
                    "unknown_mcp_server",
                    format!("node `{}` ({kind}) references unknown mcp_server `{server}`", node.id()),
                    Some(node.span.clone()),
                ),
                None if declared.len() > 1 => self.error(
                    "ambiguous_mcp_server",
                    format!(
                        "node `{}` ({kind}) has no `server` field but multiple mcp_servers are configured",
                        node.id()
                    ),
                    Some(node.span.clone()),
                ),
                _ => {}
            }
        }
        for (index, (trigger, _)) in raw.triggers.iter().enumerate() {
            if let TriggerConfig::McpResourceUpdated(t) = trigger
                && !declared.contains(&t.server.get_ref().as_str())
            {
                self.error(
                    "unknown_mcp_server",
                    format!(
                        "trigger #{index} (mcp.resource.updated) references unknown mcp_server `{}`",
                        t.server.get_ref()
                    ),
                    span_of(&t.server),
                );
            }
        }
    }

    fn check_agent_loops(&mut self) {
        for node in &self.raw.nodes {
            let NodeKind::AgentLoop(config) = &node.kind else {
                continue;
            };
            let id = node.id();
            let span = Some(node.span.clone());
            if !(1..=64).contains(&config.max_steps) {
                self.error(
                    "agent_loop_steps_out_of_range",
                    format!("node `{id}`: max_steps must be 1..=64 (got {})", config.max_steps),
                    span.clone(),
                );
            }
            if config.instructions.is_none() && config.instructions_from.is_none() {
                self.error(
                    "agent_loop_missing_instructions",
                    format!("node `{id}`: agent_loop needs `instructions` or `instructions_from`"),
                    span.clone(),
                );
            }
            if config.tools.is_empty() {
                self.error(
                    "agent_loop_no_tools",
                    format!("node `{id}`: agent_loop `tools` must list at least one tool"),
                    span.clone(),
                );
            }
            for tool in &config.tools {
                if !LOOP_TOOLS.contains(&tool.as_str()) {
                    self.error(
                        "agent_loop_unknown_tool",
                        format!("node `{id}`: unknown agent_loop tool `{tool}` (allowed: {})", LOOP_TOOLS.join(", ")),
                        span.clone(),
                    );
                }
            }
        }
    }

    fn check_responds(&mut self) {
        for node in &self.raw.nodes {
            let NodeKind::Respond(config) = &node.kind else {
                continue;
            };
            if let Some(status) = config.status
                && !(100..=599).contains(&status)
            {
                self.error(
                    "respond_status_out_of_range",
                    format!("node `{}`: respond status {status} is outside 100..=599", node.id()),
                    Some(node.span.clone()),
                );
            }
            if let Some(content_type) = &config.content_type
                && content_type.trim().is_empty()
            {
                self.error(
                    "respond_empty_content_type",
                    format!("node `{}`: respond content_type must not be blank", node.id()),
                    Some(node.span.clone()),
                );
            }
        }
    }

    fn check_maps(&mut self) {
        for node in &self.raw.nodes {
            let NodeKind::Map(config) = &node.kind else {
                continue;
            };
            let span = Some(node.span.clone());
            if config.max_items == 0 {
                self.error(
                    "map_zero_max_items",
                    format!("node `{}`: map max_items must be at least 1", node.id()),
                    span.clone(),
                );
            }
            if config.max_concurrent == Some(0) {
                self.error(
                    "map_zero_concurrency",
                    format!("node `{}`: map max_concurrent must be at least 1", node.id()),
                    span.clone(),
                );
            }
            if config.workflow.trim().is_empty() {
                self.error("map_empty_workflow", format!("node `{}`: map workflow must not be blank", node.id()), span);
            }
        }
    }

    fn check_http_headers(&mut self) {
        for node in &self.raw.nodes {
            let NodeKind::HttpRequest(config) = &node.kind else {
                continue;
            };
            for (name, value) in &config.headers {
                let span = Some(node.span.clone());
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
                    self.error(
                        "http_header_bad_name",
                        format!(
                            "node `{}`: header name `{}` must match [A-Za-z0-9_-]+",
                            node.id(),
                            name.escape_debug()
                        ),
                        span.clone(),
                    );
                }
                if value.contains(['\r', '\n']) {
                    self.error(
                        "http_header_crlf",
                        format!("node `{}`: header `{}` value contains CR or LF", node.id(), name.escape_debug()),
                        span.clone(),
                    );
                }
                if let Err(why) = check_header_placeholders(value) {
                    self.error(
                        "http_header_bad_placeholder",
                        format!("node `{}`: header `{}`: {why}", node.id(), name.escape_debug()),
                        span,
                    );
                }
            }
        }
    }

    fn check_extension_codes(&mut self) {
        let raw = self.raw;
        // policy_bad_pattern
        if let Some(policy) = &raw.policy {
            for error in agentd_policy::check_policy_syntax(policy) {
                self.error("policy_bad_pattern", error.to_string(), raw.policy_span.clone());
            }
        }
        for server in &raw.mcp_servers {
            let name = server.name.get_ref();
            for (list, patterns) in [("allow_tools", &server.allow_tools), ("allow_resources", &server.allow_resources)]
            {
                for error in agentd_policy::check_name_patterns(&format!("mcp_servers[{name}].{list}"), patterns) {
                    self.error("policy_bad_pattern", error.to_string(), span_of(&server.name));
                }
            }
        }
        // llm_bad_temperature, agent_loop_bad_temperature
        for node in &raw.nodes {
            let (code, temperature) = match &node.kind {
                NodeKind::LlmInfer(c) => ("llm_bad_temperature", c.temperature),
                NodeKind::AgentLoop(c) => ("agent_loop_bad_temperature", c.temperature),
                _ => continue,
            };
            if let Some(t) = temperature
                && !(0.0..=2.0).contains(&t)
            {
                self.error(
                    code,
                    format!("node `{}`: temperature must be within 0.0..=2.0 (got {t})", node.id()),
                    Some(node.span.clone()),
                );
            }
        }
        // trigger_bad_schedule, unsupported_trigger_type
        for (index, (trigger, span)) in raw.triggers.iter().enumerate() {
            match trigger {
                TriggerConfig::Cron(t) => {
                    if let Err(e) = crate::schedule::CronSchedule::parse(t.schedule.get_ref()) {
                        self.error(
                            "trigger_bad_schedule",
                            format!("trigger #{index} (cron): {e}"),
                            span_of(&t.schedule),
                        );
                    }
                    if let Some(tz) = &t.timezone
                        && let Err(e) = crate::schedule::parse_timezone(tz.get_ref())
                    {
                        self.error("trigger_bad_schedule", format!("trigger #{index} (cron): {e}"), span_of(tz));
                    }
                }
                TriggerConfig::Interval(t) => {
                    if let Err(e) = crate::schedule::parse_interval(t.every.get_ref()) {
                        self.error(
                            "trigger_bad_schedule",
                            format!("trigger #{index} (interval): {e}"),
                            span_of(&t.every),
                        );
                    }
                }
                TriggerConfig::Rejected { type_name, .. } => {
                    let why = if type_name == "internal.event" {
                        "trigger type `internal.event` is not supported: nothing emits internal events; remove the trigger"
                    } else {
                        "trigger type `mcp.resource.created` is not supported: MCP has no creation notification; use `mcp.resource.updated` on a collection resource, or a cron trigger"
                    };
                    self.error("unsupported_trigger_type", why.to_string(), Some(span.clone()));
                }
                TriggerConfig::FsWatch(_) | TriggerConfig::McpResourceUpdated(_) => {}
            }
        }
        // auth_bad_ref
        let auth = raw.auth.clone().unwrap_or_default();
        for (route, _) in &raw.http_routes {
            if let Some(reference) = &route.auth
                && let Err(why) = check_auth_ref(reference.get_ref(), &auth)
            {
                self.error(
                    "auth_bad_ref",
                    format!(
                        "HTTP route `{} {}`: auth `{}`: {why}",
                        route.method.to_ascii_uppercase(),
                        route.path,
                        reference.get_ref()
                    ),
                    span_of(reference),
                );
            }
        }
        if let Some(reference) = raw.server.as_ref().and_then(|s| s.metrics_auth.as_ref())
            && let Err(why) = check_auth_ref(reference.get_ref(), &auth)
        {
            self.error(
                "auth_bad_ref",
                format!("[server].metrics_auth `{}`: {why}", reference.get_ref()),
                span_of(reference),
            );
        }
        for (kind, names) in [
            ("bearer", auth.bearer.keys().collect::<Vec<_>>()),
            ("basic", auth.basic.keys().collect()),
            ("hmac", auth.hmac.keys().collect()),
            ("oidc", auth.oidc.keys().collect()),
        ] {
            for name in names {
                if name.trim().is_empty() || name.trim() != name {
                    self.error(
                        "auth_bad_ref",
                        format!("[auth.{kind}] binding name `{name}` must be non-blank without surrounding spaces"),
                        raw.auth_span.clone(),
                    );
                }
            }
        }
        // rate_limit_out_of_range
        for (route, _) in &raw.http_routes {
            if let Some(limit) = &route.rate_limit
                && let Err(why) = check_rate_limit(limit.get_ref())
            {
                self.error(
                    "rate_limit_out_of_range",
                    format!("HTTP route `{} {}`: rate_limit {why}", route.method.to_ascii_uppercase(), route.path),
                    span_of(limit),
                );
            }
        }
    }

    fn check_cycle(&mut self) {
        let raw = self.raw;
        let index = self.index.clone();
        let n = raw.nodes.len();
        let mut indegree = vec![0usize; n];
        let mut adjacency = vec![Vec::new(); n];
        for edge in raw.edges.iter().filter(|e| e.max_iterations.is_none()) {
            let (from, to) = (index[edge.from.get_ref().as_str()], index[edge.to.get_ref().as_str()]);
            adjacency[from].push(to);
            indegree[to] += 1;
        }
        let mut queue: VecDeque<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
        let mut removed = vec![false; n];
        while let Some(i) = queue.pop_front() {
            removed[i] = true;
            for &j in &adjacency[i] {
                indegree[j] -= 1;
                if indegree[j] == 0 {
                    queue.push_back(j);
                }
            }
        }
        let mut left: Vec<&str> = (0..n).filter(|&i| !removed[i]).map(|i| raw.nodes[i].id()).collect();
        if !left.is_empty() {
            left.sort_unstable();
            left.dedup();
            let first = raw.nodes.iter().find(|node| node.id() == left[0]).map(|node| node.span.clone());
            self.errors.push(
                Diagnostic::error(
                    "cycle",
                    format!("workflow contains a cycle; nodes involved or downstream: {}", left.join(", ")),
                    first,
                )
                .with_hint("close intended loops with `max_iterations` on the edge that goes back"),
            );
        }
    }

    fn check_entries_and_reachability(&mut self) {
        let raw = self.raw;
        let index = self.index.clone();
        let n = raw.nodes.len();
        let mut has_incoming = vec![false; n];
        let mut adjacency = vec![Vec::new(); n];
        for edge in &raw.edges {
            let (from, to) = (index[edge.from.get_ref().as_str()], index[edge.to.get_ref().as_str()]);
            has_incoming[to] = true;
            adjacency[from].push(to);
        }
        let roots: Vec<usize> = (0..n).filter(|&i| !has_incoming[i]).collect();
        let mut entries = Vec::new();
        for start in &raw.start_nodes {
            match &start.entry_node {
                Some(entry) => {
                    if let Some(&i) = index.get(entry.get_ref().as_str()) {
                        entries.push(i);
                    }
                }
                None if roots.len() == 1 => entries.push(roots[0]),
                None => self.error(
                    "ambiguous_start_entry",
                    format!(
                        "start node `{}` has no `entry_node` and the graph has {} nodes without incoming edges (exactly 1 is needed)",
                        start.name.get_ref(),
                        roots.len()
                    ),
                    span_of(&start.name),
                ),
            }
        }
        let mut reached = vec![false; n];
        let mut queue: VecDeque<usize> = VecDeque::new();
        for entry in entries {
            if !reached[entry] {
                reached[entry] = true;
                queue.push_back(entry);
            }
        }
        while let Some(i) = queue.pop_front() {
            for &j in &adjacency[i] {
                if !reached[j] {
                    reached[j] = true;
                    queue.push_back(j);
                }
            }
        }
        for (i, node) in raw.nodes.iter().enumerate() {
            // A duplicated id shares one index; report each declaration only once.
            if !reached[index[node.id()]] && index[node.id()] == i {
                self.error(
                    "unreachable_node",
                    format!("node `{}` is not reachable from any start node", node.id()),
                    span_of(&node.common.id),
                );
            }
        }
    }

    fn collect_warnings(&mut self, dangling: bool) {
        let raw = self.raw;
        let mut declared_backends: HashSet<&str> =
            raw.intelligence.iter().flat_map(|i| i.backends.iter()).map(|b| b.name.get_ref().as_str()).collect();
        declared_backends.insert("default");
        let mcp_configured = !raw.mcp_servers.is_empty() || self.options.mcp_stdio;
        let mut out_edges: HashMap<&str, Vec<&EdgeConfig>> = HashMap::default();
        for edge in &raw.edges {
            out_edges.entry(edge.from.get_ref().as_str()).or_default().push(edge);
        }
        let routes = |id: &str, label: &str| {
            out_edges.get(id).is_some_and(|edges| {
                edges.iter().any(|e| e.when.as_ref().is_some_and(|w| w.get_ref() == label || w.get_ref() == "*"))
            })
        };
        for node in &raw.nodes {
            let id = node.id();
            let kind = node.kind.type_name();
            let span = Some(node.span.clone());
            if id == "trigger" {
                self.warn("reserved_node_id", "node id `trigger` is reserved for the trigger input; paths starting with `trigger` never reach this node's output".to_string(), span_of(&node.common.id));
            }
            if node.common.retry.is_some()
                && (node.kind.is_composition() || matches!(node.kind, NodeKind::PauseForApproval(_)))
            {
                self.warn(
                    "retry_ignored",
                    format!("node `{id}` ({kind}): `retry` is ignored on this kind"),
                    span.clone(),
                );
            }
            match &node.kind {
                NodeKind::Parallel(p) if p.branches.is_empty() => {
                    self.warn(
                        "parallel_no_branches",
                        format!("node `{id}` (parallel) has no branches; it always outputs an empty result list"),
                        span.clone(),
                    );
                }
                NodeKind::Respond(r) if r.status.is_some_and(|s| (100..=199).contains(&s)) => {
                    self.warn(
                        "respond_status_informational",
                        format!("node `{id}` (respond): status {} is informational and cannot be sent as a final HTTP response", r.status.unwrap_or_default()),
                        span.clone(),
                    );
                }
                NodeKind::LlmInfer(c) => {
                    if !declared_backends.contains(c.backend.as_str()) {
                        self.warn("unknown_backend", format!("node `{id}` (llm_infer) names backend `{}`, which is neither declared in [[intelligence.backends]] nor `default`", c.backend), span.clone());
                    }
                    if let Some(OutputSchema::Named(path)) = &c.output_schema
                        && !matches!(path.as_str(), "inline" | "json")
                        && let Err(why) = self.load_schema_file(path)
                    {
                        self.warn(
                            "llm_schema_unusable",
                            format!("node `{id}` (llm_infer): output_schema `{path}`: {why}"),
                            span.clone(),
                        );
                    }
                }
                NodeKind::AgentLoop(c) if !declared_backends.contains(c.backend.as_str()) => {
                    self.warn("unknown_backend", format!("node `{id}` (agent_loop) names backend `{}`, which is neither declared in [[intelligence.backends]] nor `default`", c.backend), span.clone());
                }
                NodeKind::CallMcpTool(_) | NodeKind::ReadMcpResource(_) if !mcp_configured => {
                    self.warn("no_mcp_servers", format!("node `{id}` ({kind}) needs an MCP server but none is configured ([[mcp_servers]] or --mcp-stdio)"), span.clone());
                }
                _ => {}
            }
        }
        for (route, span) in &raw.http_routes {
            if let Some(SchemaRef::File(path)) = &route.input_schema
                && let Err(why) = self.load_schema_file(path)
            {
                self.warn(
                    "llm_schema_unusable",
                    format!(
                        "HTTP route `{} {}`: input_schema `{path}`: {why}",
                        route.method.to_ascii_uppercase(),
                        route.path
                    ),
                    Some(span.clone()),
                );
            }
        }
        if dangling {
            return;
        }
        // Graph-dependent warnings.
        let kinds: HashMap<&str, &NodeConfig> = self.index.iter().map(|(id, i)| (*id, &raw.nodes[*i])).collect();
        for node in &raw.nodes {
            let id = node.id();
            let kind = node.kind.type_name();
            let span = Some(node.span.clone());
            match &node.kind {
                NodeKind::HttpRequest(_)
                | NodeKind::ShellRun(_)
                | NodeKind::CallMcpTool(_)
                | NodeKind::Call(_)
                | NodeKind::Parallel(_)
                | NodeKind::Map(_)
                    if !routes(id, "error") =>
                {
                    self.warn(
                        "unrouted_error_branch",
                        format!(
                            "node `{id}` ({kind}) can emit `error` but has no `when = \"error\"` or `when = \"*\"` edge"
                        ),
                        span,
                    );
                }
                NodeKind::AgentLoop(_) if !routes(id, "exhausted") => {
                    self.warn("unrouted_exhausted_branch", format!("node `{id}` (agent_loop) can emit `exhausted` but has no `when = \"exhausted\"` or `when = \"*\"` edge"), span);
                }
                NodeKind::Switch(s) => self.check_switch_values(id, s, &kinds, &routes, span),
                _ => {}
            }
        }
        let mut groups: BTreeMap<EdgeGroup<'_>, (usize, Range<usize>)> = BTreeMap::new();
        for (index, edge) in raw.edges.iter().enumerate() {
            let from = edge.from.get_ref().as_str();
            let when = edge.when.as_ref().map(|w| w.get_ref().as_str());
            let source = kinds[from];
            let source_kind = source.kind.type_name();
            let edge_span = span_of(&edge.from);
            if matches!(source.kind, NodeKind::Fail(_) | NodeKind::Terminate(_)) {
                self.warn("unfollowable_edge", format!("edge #{index} `{from}` → `{}`: `{from}` is a {source_kind} node; its out-edges are never followed", edge.to.get_ref()), edge_span.clone());
            } else if let Some(label) = when.filter(|w| *w != "*") {
                let producible = source.kind.producible_labels();
                if matches!(source.kind, NodeKind::PauseForApproval(_)) {
                    self.warn("unfollowable_edge", format!("edge #{index} `{from}` → `{}`: a pause_for_approval successor is chosen without a label; `when = \"{label}\"` is never followed", edge.to.get_ref()), edge_span.clone());
                } else if producible.is_some_and(|labels| !labels.contains(&label)) {
                    self.warn(
                        "unfollowable_edge",
                        format!(
                            "edge #{index} `{from}` → `{}`: node `{from}` ({source_kind}) never emits label `{label}`",
                            edge.to.get_ref()
                        ),
                        edge_span.clone(),
                    );
                }
            }
            let entry = groups.entry((from, when)).or_insert((0, edge_span.clone().unwrap_or(0..0)));
            entry.0 += 1;
        }
        let mut ambiguous: Vec<_> = groups.into_iter().filter(|(_, (count, _))| *count > 1).collect();
        ambiguous.sort_by_key(|(_, (_, span))| span.start);
        for ((from, when), (count, span)) in ambiguous {
            let what = when.map_or_else(|| "no `when`".to_string(), |w| format!("`when = \"{w}\"`"));
            self.warn(
                "ambiguous_edges",
                format!("{count} edges leave `{from}` with {what}; a run that takes them errors with an ambiguity"),
                Some(span),
            );
        }
    }

    fn check_switch_values<F: Fn(&str, &str) -> bool>(
        &mut self,
        id: &str,
        switch: &SwitchNode,
        kinds: &HashMap<&str, &NodeConfig>,
        routes: &F,
        span: Option<Range<usize>>,
    ) {
        let (Some(head), tail) = (switch.expr.head(), switch.expr.tail()) else {
            return;
        };
        if tail.first().map(String::as_str) != Some("parsed") {
            return;
        }
        let Some(NodeKind::LlmInfer(llm)) = kinds.get(head).map(|n| &n.kind) else {
            return;
        };
        let schema = match &llm.output_schema {
            Some(OutputSchema::Inline(table)) => Value::Object(table.clone()),
            Some(OutputSchema::Named(path)) if !matches!(path.as_str(), "inline" | "json") => {
                match self.load_schema_file(path) {
                    Ok(schema) => schema,
                    Err(_) => return,
                }
            }
            _ => return,
        };
        let Some(values) = crate::schema_walk::enum_values_at(&schema, &tail[1..]) else {
            return;
        };
        for value in values {
            let label = crate::workflow::switch_label(&value);
            if !routes(id, &label) {
                self.warn("switch_unrouted_value", format!("node `{id}` (switch): value `{label}` allowed by the output schema of `{head}` has no `when = \"{label}\"` edge"), span.clone());
            }
        }
    }

    /// Finds and parses a schema file: absolute as is; relative against the working directory,
    /// then the workflow file's directory.
    fn load_schema_file(&self, path: &str) -> Result<Value, String> {
        let candidates: Vec<PathBuf> = if Path::new(path).is_absolute() {
            vec![PathBuf::from(path)]
        } else {
            let mut c = vec![self.options.cwd.join(path)];
            if let Some(dir) = self.source.directory() {
                c.push(dir.join(path));
            }
            c
        };
        let Some(text) = candidates.iter().find_map(|c| self.options.files.read_to_string(c)) else {
            return Err("file not found in the working directory or next to the workflow file".to_string());
        };
        let schema: Value = serde_json::from_str(&text).map_err(|e| format!("not valid JSON: {e}"))?;
        crate::schema_walk::check_schema(&schema)?;
        Ok(schema)
    }
}

/// Edges grouped by (source, `when`) for the `ambiguous_edges` warning.
type EdgeGroup<'a> = (&'a str, Option<&'a str>);

/// Checks a header value: literal text plus `{{secret:NAME}}` placeholders only.
fn check_header_placeholders(value: &str) -> Result<(), String> {
    let mut rest = value;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err("unclosed `{{` placeholder".to_string());
        };
        let inner = after[..close].trim();
        match inner.strip_prefix("secret:") {
            Some(name) if !name.trim().is_empty() => {}
            _ => {
                return Err(format!(
                    "placeholder `{{{{{inner}}}}}` is not `{{{{secret:NAME}}}}`; header values are never context-interpolated"
                ));
            }
        }
        rest = &after[close + 2..];
    }
    Ok(())
}

/// Checks an auth reference against the declared bindings (07 §4.1).
pub fn check_auth_ref(reference: &str, auth: &AuthConfig) -> Result<(), String> {
    let trimmed = reference.trim();
    if trimmed.is_empty() || trimmed.eq_ignore_ascii_case("none") {
        return Ok(());
    }
    let (kind, name) = match trimmed.split_once(':') {
        Some((kind, name)) => {
            let name = name.trim();
            if name.is_empty() {
                return Err("the binding name after `:` is empty".to_string());
            }
            (kind, name)
        }
        None => (trimmed, "default"),
    };
    let exists = match kind {
        "bearer" => auth.bearer.contains_key(name),
        "basic" => auth.basic.contains_key(name),
        "hmac" => auth.hmac.contains_key(name),
        "oidc" => auth.oidc.contains_key(name),
        "mtls" => {
            return if name == "default" { Ok(()) } else { Err("mtls takes no binding name (use `mtls`)".to_string()) };
        }
        other => {
            return Err(format!("unknown auth kind `{other}` (expected bearer, basic, hmac, oidc, mtls or none)"));
        }
    };
    if exists { Ok(()) } else { Err(format!("no [auth.{kind}.{name}] binding is declared")) }
}

fn check_rate_limit(limit: &RateLimitConfig) -> Result<(), String> {
    match limit.capacity {
        None => return Err("is missing `capacity`".to_string()),
        Some(c) if c <= 0 || c > i64::from(u32::MAX) => {
            return Err(format!("capacity must be 1..=4294967295 (got {c})"));
        }
        _ => {}
    }
    match limit.per_second {
        None => return Err("is missing `per_second`".to_string()),
        Some(p) if !p.is_finite() || p <= 0.0 => {
            return Err(format!("per_second must be finite and > 0 (got {p})"));
        }
        _ => {}
    }
    match limit.per.as_deref() {
        None | Some("route") | Some("client_ip") => Ok(()),
        Some(other) => Err(format!("per must be `route` or `client_ip` (got `{other}`)")),
    }
}

/// Builds the compiled workflow from a document that passed validation.
fn compile(raw: RawWorkflow, source: &SourceFile, warnings: Vec<Diagnostic>) -> Workflow {
    debug_assert!(warnings.iter().all(|w| w.severity == Severity::Warning));
    let node_index: HashMap<String, usize> =
        raw.nodes.iter().enumerate().map(|(i, n)| (n.id().to_string(), i)).collect();
    let edges: Vec<Edge> = raw
        .edges
        .iter()
        .map(|e| Edge {
            from: node_index[e.from.get_ref()],
            to: node_index[e.to.get_ref()],
            when: match e.when.as_ref().map(|w| w.get_ref().as_str()) {
                None => When::Unlabelled,
                Some("*") => When::Default,
                Some(label) => When::Label(label.to_string()),
            },
            max_iterations: e.max_iterations,
        })
        .collect();
    let mut out_edges = vec![Vec::new(); raw.nodes.len()];
    let mut has_incoming = vec![false; raw.nodes.len()];
    for (i, edge) in edges.iter().enumerate() {
        out_edges[edge.from].push(i);
        has_incoming[edge.to] = true;
    }
    let roots: Vec<usize> = (0..raw.nodes.len()).filter(|&i| !has_incoming[i]).collect();
    let start_nodes = raw
        .start_nodes
        .iter()
        .map(|s| StartNode {
            name: s.name.get_ref().clone(),
            source: s.source,
            entry: match &s.entry_node {
                Some(entry) => node_index.get(entry.get_ref()).copied(),
                None if roots.len() == 1 => Some(roots[0]),
                None => None,
            },
        })
        .collect();
    let nodes = raw
        .nodes
        .into_iter()
        .map(|n| Node {
            id: n.common.id.into_inner(),
            kind: n.kind,
            retry: n.common.retry,
            timeout_secs: n.common.timeout_secs,
            description: n.common.description,
        })
        .collect();
    Workflow {
        name: raw.name,
        description: raw.description,
        provenance: Provenance { display_name: source.name.clone(), path: source.path.clone(), sha256: None },
        nodes,
        edges,
        start_nodes,
        node_index,
        out_edges,
        warnings,
        environment: Environment {
            triggers: raw.triggers.into_iter().map(|(t, _)| t).collect(),
            http_routes: raw.http_routes.into_iter().map(|(r, _)| r).collect(),
            policy: raw.policy,
            auth: raw.auth,
            logging: raw.logging,
            server: raw.server,
            signing: raw.signing,
            budget: raw.budget,
            mcp_servers: raw.mcp_servers,
            intelligence: raw.intelligence,
            secrets: raw.secrets.into_iter().map(|(s, _)| s).collect(),
            control: raw.control,
            store: raw.store,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_placeholders() {
        assert!(check_header_placeholders("Bearer {{secret:TOKEN}}").is_ok());
        assert!(check_header_placeholders("{{ secret:A }}-{{secret:B}}").is_ok());
        assert!(check_header_placeholders("plain").is_ok());
        assert!(check_header_placeholders("{{secret:}}").is_err());
        assert!(check_header_placeholders("{{trigger.x}}").is_err());
        assert!(check_header_placeholders("x {{secret:A").is_err());
    }

    #[test]
    fn auth_refs() {
        let mut auth = AuthConfig::default();
        auth.bearer.insert("default".into(), BearerAuth::default());
        auth.hmac.insert("gh".into(), HmacAuth::default());
        for ok in ["", " none ", "NONE", "bearer", "bearer:default", "hmac: gh ", "mtls", "mtls:default"] {
            assert!(check_auth_ref(ok, &auth).is_ok(), "{ok}");
        }
        for bad in ["hmac", "bearer:", "Bearer", "mtls:x", "oidc:corp", "token"] {
            assert!(check_auth_ref(bad, &auth).is_err(), "{bad}");
        }
    }
}
