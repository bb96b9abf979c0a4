//! The one template renderer (`template_render.template`, `respond.body_template`,
//! `llm_infer.prompt`): `{{ key }}` markers with dotted data paths, no logic, parsed once.
//!
//! Model output can never inject template code: values are inserted after parsing, and the
//! inserted text is never scanned for markers again.

use serde_json::Value;

use crate::value_path::DataPath;

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
    /// Rough size of the literal text, to size the output buffer.
    literal_len: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Literal(String),
    /// A marker: the trimmed key (kept to re-emit unresolved markers) and its parsed path.
    Marker {
        key: String,
        path: DataPath,
    },
}

impl Template {
    /// Parses template text. Never fails: an unclosed `{{` and the rest are copied verbatim.
    pub fn parse(text: &str) -> Template {
        let mut parts = Vec::new();
        let mut rest = text;
        let mut literal = String::new();
        while let Some(open) = rest.find("{{") {
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else { break };
            literal.push_str(&rest[..open]);
            let key = after[..close].trim().to_string();
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal)));
            }
            let path = DataPath::parse(&key);
            parts.push(Part::Marker { key, path });
            rest = &after[close + 2..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        let literal_len = parts.iter().map(|p| if let Part::Literal(s) = p { s.len() } else { 8 }).sum();
        Template { parts, literal_len }
    }

    /// Renders against `data`; `context` is the fallback lookup for keys whose first segment is
    /// `trigger` or a node id present in the run context (extension, 03 §7).
    pub fn render<'a>(&self, data: &Value, context: impl Fn(&str) -> Option<&'a Value>) -> String {
        let mut out = String::with_capacity(self.literal_len);
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Marker { key, path } => {
                    let found = path.resolve(data).or_else(|| {
                        let segments = path.segments();
                        let root = context(segments.first()?)?;
                        DataPath::parse(&segments[1..].join(".")).resolve(root)
                    });
                    match found {
                        Some(Value::String(s)) => out.push_str(s),
                        Some(other) => out.push_str(&other.to_string()),
                        None => {
                            out.push_str("{{");
                            out.push_str(key);
                            out.push_str("}}");
                        }
                    }
                }
            }
        }
        out
    }

    /// The keys of all markers, in order (used by the validator and for documentation).
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| if let Part::Marker { key, .. } = p { Some(key.as_str()) } else { None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(t: &str, data: Value) -> String {
        Template::parse(t).render(&data, |_| None)
    }

    #[test]
    fn spec_example() {
        let data = json!({"user": {"name": "Ada"}, "tags": ["x", "y"], "n": 7});
        assert_eq!(
            render("hi {{user.name}}, first={{ tags.0 }}, n={{n}}, all={{tags}}, {{missing}}", data),
            "hi Ada, first=x, n=7, all=[\"x\",\"y\"], {{missing}}"
        );
    }

    #[test]
    fn whole_value_unclosed_and_unicode() {
        assert_eq!(render("{{}}|{{ }}", json!({"a": 1})), "{\"a\":1}|{\"a\":1}");
        assert_eq!(render("héllo {{a", json!({"a": 1})), "héllo {{a");
        assert_eq!(render("ü{{a}}ö{{b}}", json!({"a": "ß", "b": null})), "üßönull");
        assert_eq!(render("{{a}}", json!({"a": "{{b}}", "b": "x"})), "{{b}}");
        assert_eq!(render("{{ secret:X }}", json!(null)), "{{secret:X}}");
    }

    #[test]
    fn context_fallback() {
        let ctx = json!({"classify": {"parsed": {"label": "bug"}}});
        let t = Template::parse("{{classify.parsed.label}} {{title}}");
        let out = t.render(&json!({"title": "T"}), |k| ctx.get(k));
        assert_eq!(out, "bug T");
    }
}
