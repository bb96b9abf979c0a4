//! TOML text → [`RawWorkflow`], collecting every load error with its span.
//!
//! The document is parsed once into a spanned tree; each top-level table and each array entry
//! is then deserialized on its own, so one bad node does not hide the errors of the next one.
//! Load errors are distinct from validation findings (03 §1): they mean the file is not a
//! well-formed workflow at all (CLI exit 2).

use std::ops::Range;

use serde::Deserialize;
use serde::de::IntoDeserializer;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diagnostic::Diagnostic;
use crate::model::*;
use crate::source::SourceFile;

/// Keys allowed at the top level of a workflow document (03 §2).
pub const TOP_LEVEL_KEYS: [&str; 18] = [
    "name",
    "description",
    "start_nodes",
    "nodes",
    "edges",
    "triggers",
    "http_routes",
    "policy",
    "auth",
    "logging",
    "server",
    "signing",
    "budget",
    "mcp_servers",
    "intelligence",
    "secrets",
    "control",
    "store",
];

type Item<'i> = Spanned<DeValue<'i>>;

/// Parses a workflow document. Errors are every load error found, in source order.
pub fn parse_document(source: &SourceFile) -> Result<RawWorkflow, Vec<Diagnostic>> {
    let (root, syntax_errors) = DeTable::parse_recoverable(&source.text);
    if !syntax_errors.is_empty() {
        let mut diagnostics: Vec<Diagnostic> = Vec::new();
        for error in syntax_errors {
            let diagnostic =
                Diagnostic::error("toml_syntax", format!("TOML syntax: {}", one_line(error.message())), error.span());
            if !diagnostics.iter().any(|d| d.span == diagnostic.span) {
                diagnostics.push(diagnostic);
            }
        }
        return Err(diagnostics);
    }
    let mut loader = Loader { diagnostics: Vec::new() };
    let document_span = root.span();
    let mut table = root.into_inner();
    if let Some(wrapped) = table.remove("workflows") {
        let mut extra: Vec<_> = table.iter().map(|(k, _)| (k.get_ref().to_string(), k.span())).collect();
        extra.sort_by_key(|(_, span)| span.start);
        for (key, span) in extra {
            loader.diagnostics.push(
                Diagnostic::error(
                    "wrapped_form",
                    format!("top-level key `{key}` is not allowed next to [[workflows]]; in the wrapped form every key belongs inside the single [[workflows]] entry"),
                    Some(span),
                )
                .with_hint("move it into the [[workflows]] table, or drop the wrapper and keep all keys at the top level"),
            );
        }
        let span = wrapped.span();
        match wrapped.into_inner() {
            DeValue::Array(items) if items.len() == 1 => {
                let item = items.into_iter().next().expect("length checked");
                let item_span = item.span();
                match item.into_inner() {
                    DeValue::Table(inner) => table = inner,
                    _ => {
                        loader.error("wrong_type", "[[workflows]] entry must be a table".to_string(), item_span);
                        return Err(loader.finish());
                    }
                }
            }
            DeValue::Array(items) => {
                loader.error(
                    "wrapped_form",
                    format!("expected exactly one [[workflows]] entry; found {}", items.len()),
                    span,
                );
                return Err(loader.finish());
            }
            _ => {
                loader.error(
                    "wrapped_form",
                    "expected exactly one [[workflows]] entry; found 0 (`workflows` must be an array of tables: write [[workflows]])"
                        .to_string(),
                    span,
                );
                return Err(loader.finish());
            }
        }
    }
    let raw = loader.document(table, document_span);
    if loader.diagnostics.is_empty() { Ok(raw) } else { Err(loader.finish()) }
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

struct Loader {
    diagnostics: Vec<Diagnostic>,
}

impl Loader {
    fn finish(mut self) -> Vec<Diagnostic> {
        self.diagnostics.sort_by_key(|d| d.span.as_ref().map_or(0, |s| s.start));
        self.diagnostics
    }

    fn error(&mut self, code: &'static str, message: String, span: Range<usize>) {
        self.diagnostics.push(Diagnostic::error(code, message, Some(span)));
    }

    /// Records a serde error raised while deserializing `what`.
    fn serde_error(&mut self, what: &str, error: toml::de::Error, fallback: Range<usize>) {
        let message = one_line(error.message());
        let code = if message.starts_with("unknown field") {
            "unknown_key"
        } else if message.starts_with("missing field") {
            "missing_key"
        } else if message.starts_with("invalid type") {
            "wrong_type"
        } else {
            "bad_value"
        };
        let span = error.span().unwrap_or(fallback);
        self.error(code, format!("{what}: {}", plain_types(&message)), span);
    }

    fn value<'i, T: Deserialize<'i>>(&mut self, what: impl std::fmt::Display, item: Item<'i>) -> Option<T> {
        let span = item.span();
        match T::deserialize(item.into_deserializer()) {
            Ok(v) => Some(v),
            Err(e) => {
                self.serde_error(&what.to_string(), e, span);
                None
            }
        }
    }

    /// An array of tables (`[[x]]` or an inline array); each element handled by `f`.
    fn array<'i>(&mut self, key: &str, item: Item<'i>, mut f: impl FnMut(&mut Self, usize, Item<'i>)) {
        let span = item.span();
        match item.into_inner() {
            DeValue::Array(items) => {
                for (index, element) in items.into_iter().enumerate() {
                    f(self, index, element);
                }
            }
            other => self.error(
                "wrong_type",
                format!("`{key}` must be an array of tables, found {}", other.type_str()),
                span,
            ),
        }
    }

    /// Splits a tagged table: removes `tag` and returns its string value with the rest.
    fn tagged<'i>(
        &mut self,
        what: impl std::fmt::Display,
        tag: &str,
        item: Item<'i>,
    ) -> Option<(String, Range<usize>, Item<'i>)> {
        let span = item.span();
        let DeValue::Table(mut table) = item.into_inner() else {
            self.error("wrong_type", format!("{what} must be a table"), span);
            return None;
        };
        let Some(tag_value) = table.remove(tag) else {
            self.error("missing_key", format!("{what}: missing field `{tag}`"), span);
            return None;
        };
        let tag_span = tag_value.span();
        let DeValue::String(name) = tag_value.into_inner() else {
            self.error("wrong_type", format!("{what}: `{tag}` must be a string"), tag_span);
            return None;
        };
        Some((name.into_owned(), tag_span, Spanned::new(span, DeValue::Table(table))))
    }

    fn document<'i>(&mut self, table: DeTable<'i>, document_span: Range<usize>) -> RawWorkflow {
        let mut raw = RawWorkflow::default();
        let mut saw_name = false;
        for (key, item) in table {
            let key_span = key.span();
            match key.get_ref().as_ref() {
                "name" => {
                    saw_name = true;
                    raw.name_span = Some(item.span());
                    if let Some(name) = self.value::<String>("`name`", item) {
                        raw.name = name;
                    }
                }
                "description" => raw.description = self.value("`description`", item),
                "start_nodes" => self.array("start_nodes", item, |l, i, e| {
                    if let Some(s) = l.value(format_args!("start_nodes[{i}]"), e) {
                        raw.start_nodes.push(s);
                    }
                }),
                "nodes" => self.array("nodes", item, |l, i, e| {
                    if let Some(n) = l.node(i, e) {
                        raw.nodes.push(n);
                    }
                }),
                "edges" => self.array("edges", item, |l, i, e| {
                    if let Some(edge) = l.value(format_args!("edges[{i}]"), e) {
                        raw.edges.push(edge);
                    }
                }),
                "triggers" => self.array("triggers", item, |l, i, e| {
                    let span = e.span();
                    if let Some(t) = l.trigger(i, e) {
                        raw.triggers.push((t, span));
                    }
                }),
                "http_routes" => self.array("http_routes", item, |l, i, e| {
                    let span = e.span();
                    if let Some(r) = l.value(format_args!("http_routes[{i}]"), e) {
                        raw.http_routes.push((r, span));
                    }
                }),
                "policy" => {
                    raw.policy_span = Some(item.span());
                    raw.policy = self.value("[policy]", item);
                }
                "auth" => {
                    raw.auth_span = Some(item.span());
                    raw.auth = self.value("[auth]", item);
                }
                "logging" => raw.logging = self.value("[logging]", item),
                "server" => raw.server = self.value("[server]", item),
                "signing" => raw.signing = self.value("[signing]", item),
                "budget" => raw.budget = self.value("[budget]", item),
                "mcp_servers" => self.array("mcp_servers", item, |l, i, e| {
                    if let Some(s) = l.value(format_args!("mcp_servers[{i}]"), e) {
                        raw.mcp_servers.push(s);
                    }
                }),
                "intelligence" => raw.intelligence = self.value("[intelligence]", item),
                "secrets" => self.array("secrets", item, |l, i, e| {
                    let span = e.span();
                    if let Some(s) = l.secret(i, e) {
                        raw.secrets.push((s, span));
                    }
                }),
                "control" => raw.control = self.value("[control]", item),
                "store" => raw.store = self.value("[store]", item),
                other => {
                    let other = other.to_string();
                    let hint = closest(&other, &TOP_LEVEL_KEYS).map_or_else(
                        || format!("allowed keys: {}", TOP_LEVEL_KEYS.join(", ")),
                        |k| format!("did you mean `{k}`?"),
                    );
                    self.diagnostics.push(
                        Diagnostic::error("unknown_key", format!("unknown top-level key `{other}`"), Some(key_span))
                            .with_hint(hint),
                    );
                }
            }
        }
        if !saw_name {
            self.diagnostics.push(Diagnostic::error(
                "missing_key",
                "missing required top-level key `name`",
                Some(document_span.start..document_span.start),
            ));
        }
        raw
    }

    fn node<'i>(&mut self, index: usize, item: Item<'i>) -> Option<NodeConfig> {
        let span = item.span();
        let label = NodeLabel { index };
        let (type_name, type_span, rest) = self.tagged(&label, "type", item)?;
        let DeValue::Table(mut fields) = rest.into_inner() else {
            return None;
        };
        // Common fields are split off so each kind struct can deny unknown keys on its own.
        // `shell_run` has its own `timeout_secs` (04 §5.2), which stays with the kind.
        let mut common = DeTable::new();
        for key in ["id", "retry", "timeout_secs", "description"] {
            if key == "timeout_secs" && type_name == "shell_run" {
                continue;
            }
            if let Some((k, v)) = fields.remove_entry(key) {
                common.insert(k, v);
            }
        }
        // Only the id's text is copied; the rest of the label is formatted on error only.
        let id_text = common.get("id").and_then(|v| v.get_ref().as_str()).map(str::to_string);
        let what = NodeWhat { index, id: id_text.as_deref(), type_name: &type_name };
        let common: Option<CommonFields> = self.value(&what, Spanned::new(span.clone(), DeValue::Table(common)));
        let kind = match NodeKind::from_type(
            &type_name,
            Spanned::new(span.clone(), DeValue::Table(fields)).into_deserializer(),
        ) {
            Some(Ok(kind)) => Some(kind),
            Some(Err(e)) => {
                self.serde_error(&what.to_string(), e, span.clone());
                None
            }
            None => {
                let hint = closest(&type_name, &KIND_NAMES).map_or_else(
                    || format!("known types: {}", KIND_NAMES.join(", ")),
                    |k| format!("did you mean `{k}`?"),
                );
                self.diagnostics.push(
                    Diagnostic::error(
                        "unknown_node_type",
                        format!("{label}: unknown node type `{type_name}`"),
                        Some(type_span.clone()),
                    )
                    .with_hint(hint),
                );
                None
            }
        };
        Some(NodeConfig { common: common?, kind: kind?, type_span, span })
    }

    fn trigger<'i>(&mut self, index: usize, item: Item<'i>) -> Option<TriggerConfig> {
        let label = format!("triggers[{index}]");
        let (type_name, type_span, rest) = self.tagged(&label, "type", item)?;
        let what = format!("{label} (type `{type_name}`)");
        Some(match type_name.as_str() {
            "cron" => TriggerConfig::Cron(self.value(&what, rest)?),
            "interval" => TriggerConfig::Interval(self.value(&what, rest)?),
            "fs_watch" => TriggerConfig::FsWatch(self.value(&what, rest)?),
            "mcp.resource.updated" => TriggerConfig::McpResourceUpdated(self.value(&what, rest)?),
            "internal.event" | "mcp.resource.created" => {
                TriggerConfig::Rejected { config: self.value(&what, rest)?, type_name }
            }
            _ => {
                self.diagnostics.push(
                    Diagnostic::error(
                        "bad_value",
                        format!("{label}: unknown trigger type `{type_name}`"),
                        Some(type_span),
                    )
                    .with_hint("known trigger types: cron, interval, fs_watch, mcp.resource.updated"),
                );
                return None;
            }
        })
    }

    fn secret<'i>(&mut self, index: usize, item: Item<'i>) -> Option<SecretConfig> {
        let label = format!("secrets[{index}]");
        let (source, source_span, rest) = self.tagged(&label, "source", item)?;
        let span = rest.span();
        let DeValue::Table(mut fields) = rest.into_inner() else {
            return None;
        };
        let name = match fields.remove("name") {
            Some(v) => self.value::<String>(&format!("{label}: `name`"), v),
            None => {
                self.error("missing_key", format!("{label}: missing field `name`"), span.clone());
                None
            }
        };
        let rest = Spanned::new(span, DeValue::Table(fields));
        let what = format!("{label} (source `{source}`)");
        let source = match source.as_str() {
            "env" => SecretSource::Env(self.value(&what, rest)?),
            "file" => SecretSource::File(self.value(&what, rest)?),
            "command" => SecretSource::Command(self.value(&what, rest)?),
            "oauth2" => SecretSource::OAuth2(self.value(&what, rest)?),
            other => {
                let other = other.to_string();
                self.diagnostics.push(
                    Diagnostic::error(
                        "bad_value",
                        format!("{label}: unknown secret source `{other}`"),
                        Some(source_span),
                    )
                    .with_hint("known sources: env, file, command, oauth2"),
                );
                return None;
            }
        };
        Some(SecretConfig { name: name?, source })
    }
}

/// The closest known word within edit distance 2, for "did you mean" hints.
fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known.iter().map(|k| (edit_distance(word, k), *k)).filter(|(d, _)| *d <= 2).min_by_key(|(d, _)| *d).map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).collect();
    let b: Vec<char> = b.chars().take(64).collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            current.push((previous[j] + cost).min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// `nodes[i]`, formatted only when an error needs it.
struct NodeLabel {
    index: usize,
}

impl std::fmt::Display for NodeLabel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "nodes[{}]", self.index)
    }
}

/// How a node is named in its load errors, formatted only when an error needs it.
struct NodeWhat<'a> {
    index: usize,
    id: Option<&'a str>,
    type_name: &'a str,
}

impl std::fmt::Display for NodeWhat<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.id {
            Some(id) => write!(f, "node `{id}` (type `{}`)", self.type_name),
            None => write!(f, "nodes[{}] (type `{}`)", self.index, self.type_name),
        }
    }
}

/// Replaces Rust type names in serde messages with the TOML words a user knows.
fn plain_types(message: &str) -> String {
    let mut out = message.to_string();
    for (rust, plain) in [
        ("expected i64", "expected an integer"),
        ("expected u64", "expected a non-negative integer"),
        ("expected u32", "expected a non-negative integer (at most 4294967295)"),
        ("expected u16", "expected a non-negative integer (at most 65535)"),
        ("expected f64", "expected a number"),
        ("expected a sequence", "expected an array"),
        ("expected a map", "expected a table"),
        ("invalid type: map", "invalid type: table"),
        ("invalid type: sequence", "invalid type: array"),
    ] {
        out = out.replace(rust, plain);
    }
    if let Some(start) = out.find("expected struct ") {
        let end = out[start + 16..].find(|c: char| !c.is_alphanumeric()).map_or(out.len(), |e| start + 16 + e);
        out.replace_range(start..end, "expected a table");
    }
    out
}
