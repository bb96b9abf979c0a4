//! Reading JSON Schemas at load time: is a schema usable, and which `enum`/`const` values does
//! it allow at a property path (for the `switch_unrouted_value` warning).

use serde_json::Value;

/// Checks that a JSON value is a usable JSON Schema (compiles, no remote references).
pub fn check_schema(schema: &Value) -> Result<(), String> {
    if !schema.is_object() && !schema.is_boolean() {
        return Err("a JSON Schema must be an object or a boolean".to_string());
    }
    jsonschema::validator_for(schema)
        .map(|_| ())
        .map_err(|e| format!("not a valid JSON Schema: {}", one_line(&e.to_string())))
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Walks `properties` along `path` (following local `#/…` references) and returns the values
/// of the `enum` (or the `const`) found there; `None` when there is none.
pub fn enum_values_at(schema: &Value, path: &[String]) -> Option<Vec<Value>> {
    let mut current = resolve_local(schema, schema, 0)?;
    for segment in path {
        let properties = current.get("properties")?;
        current = resolve_local(schema, properties.get(segment)?, 0)?;
    }
    if let Some(Value::Array(values)) = current.get("enum") {
        return Some(values.clone());
    }
    current.get("const").map(|c| vec![c.clone()])
}

/// Follows a chain of local `$ref`s (bounded, so reference loops end).
fn resolve_local<'a>(root: &'a Value, node: &'a Value, depth: usize) -> Option<&'a Value> {
    if depth > 32 {
        return None;
    }
    match node.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.strip_prefix('#')?;
            let target = root.pointer(&pointer.replace("%25", "%"))?;
            resolve_local(root, target, depth + 1)
        }
        None => Some(node),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_enums_through_refs() {
        let schema = json!({
            "$defs": {"label": {"enum": ["bug", "question"]}},
            "properties": {"label": {"$ref": "#/$defs/label"}, "inner": {"properties": {"k": {"const": 3}}}}
        });
        assert_eq!(enum_values_at(&schema, &["label".into()]), Some(vec![json!("bug"), json!("question")]));
        assert_eq!(enum_values_at(&schema, &["inner".into(), "k".into()]), Some(vec![json!(3)]));
        assert_eq!(enum_values_at(&schema, &["nope".into()]), None);
        let looping = json!({"$ref": "#"});
        assert_eq!(enum_values_at(&looping, &[]), None);
    }

    #[test]
    fn schema_usability() {
        assert!(check_schema(&json!({"type": "object"})).is_ok());
        assert!(check_schema(&json!({"type": 12})).is_err());
        assert!(check_schema(&json!([1])).is_err());
    }
}
