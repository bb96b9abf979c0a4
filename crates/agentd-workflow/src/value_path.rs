//! Context paths (`*_from` fields, `expr`) and data paths (template keys, `json_select.path`).
//!
//! Both are parsed once at load time so a run never re-splits a string. The two grammars differ
//! only in empty segments: a context path with an empty segment is never set; a data path skips it.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A dotted path into the run context: the first segment names a context key (a node id or
/// `trigger`), the rest step into objects by key and into arrays by decimal index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextPath {
    raw: String,
    /// `None` when the path can never resolve (an empty segment): it is always "not set".
    segments: Option<Vec<String>>,
}

impl ContextPath {
    /// Parses a context path. Never fails: malformed paths simply never resolve.
    pub fn parse(raw: &str) -> ContextPath {
        let segments: Vec<String> = raw.split('.').map(str::to_string).collect();
        let valid = segments.iter().all(|s| !s.is_empty());
        ContextPath { raw: raw.to_string(), segments: valid.then_some(segments) }
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The context key this path starts at (`trigger` or a node id), when the path is well formed.
    pub fn head(&self) -> Option<&str> {
        self.segments.as_ref().and_then(|s| s.first()).map(String::as_str)
    }

    /// The segments after the head.
    pub fn tail(&self) -> &[String] {
        self.segments.as_deref().map_or(&[], |s| &s[1..])
    }

    /// Resolves the path given a lookup for the head key. `None` = not set.
    pub fn resolve<'a>(&self, lookup: impl FnOnce(&str) -> Option<&'a Value>) -> Option<&'a Value> {
        let head = self.head()?;
        let root = lookup(head)?;
        step_all(root, self.tail().iter().map(String::as_str))
    }
}

impl<'de> Deserialize<'de> for ContextPath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Ok(ContextPath::parse(&raw))
    }
}

impl std::fmt::Display for ContextPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.raw)
    }
}

/// A dotted path relative to a data value (template keys, `json_select.path`): empty segments
/// are skipped, so `""` selects the whole value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPath {
    raw: String,
    segments: Vec<String>,
}

impl DataPath {
    /// Parses a data path.
    pub fn parse(raw: &str) -> DataPath {
        DataPath {
            raw: raw.to_string(),
            segments: raw.split('.').filter(|s| !s.is_empty()).map(str::to_string).collect(),
        }
    }

    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The non-empty segments.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// Resolves against `root`. `None` = not set.
    pub fn resolve<'a>(&self, root: &'a Value) -> Option<&'a Value> {
        step_all(root, self.segments.iter().map(String::as_str))
    }
}

impl<'de> Deserialize<'de> for DataPath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Ok(DataPath::parse(&raw))
    }
}

fn step_all<'a, 'b>(root: &'a Value, segments: impl Iterator<Item = &'b str>) -> Option<&'a Value> {
    let mut current = root;
    for segment in segments {
        current = step(current, segment)?;
    }
    Some(current)
}

/// One step: an object key, or a decimal array index (ASCII digits only; no sign).
pub fn step<'a>(value: &'a Value, segment: &str) -> Option<&'a Value> {
    match value {
        Value::Object(map) => map.get(segment),
        Value::Array(items) => {
            if segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            segment.parse::<usize>().ok().and_then(|i| items.get(i))
        }
        _ => None,
    }
}

/// The JSON type name used in error texts (`null`, `bool`, `number`, `string`, `array`, `object`).
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Value {
        json!({"trigger": {"kind":"manual","items":[{"id":7}]}, "fetch": {"status":200,"body":"ok"}})
    }

    fn resolve(path: &str) -> Option<Value> {
        let c = ctx();
        ContextPath::parse(path).resolve(|k| c.get(k)).cloned()
    }

    #[test]
    fn spec_examples() {
        assert_eq!(resolve("trigger.items.0.id"), Some(json!(7)));
        assert_eq!(resolve("fetch.status"), Some(json!(200)));
        assert_eq!(resolve("fetch.headers"), None);
        assert_eq!(resolve("trigger.items.x"), None);
    }

    #[test]
    fn misses_are_not_set() {
        assert_eq!(resolve("nope"), None);
        assert_eq!(resolve("trigger..kind"), None);
        assert_eq!(resolve(""), None);
        assert_eq!(resolve("trigger.items.-1"), None);
        assert_eq!(resolve("trigger.items.1"), None);
        assert_eq!(resolve("fetch.status.x"), None);
        assert_eq!(resolve("trigger.items.+0"), None);
    }

    #[test]
    fn data_paths_skip_empty_segments() {
        let v = json!({"a": {"b": [1, 2]}});
        assert_eq!(DataPath::parse("a..b.1").resolve(&v), Some(&json!(2)));
        assert_eq!(DataPath::parse("").resolve(&v), Some(&v));
        assert_eq!(DataPath::parse("a.c").resolve(&v), None);
    }
}
