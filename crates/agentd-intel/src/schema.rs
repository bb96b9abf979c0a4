//! Output contracts of `llm_infer` (06 §5.3): "must be JSON", or "must be JSON valid against a
//! schema". Schemas are compiled once at startup; validation never touches the network or the
//! file system (jsonschema is built without remote or file retrieval, so such `$ref`s fail to
//! compile).

use std::sync::Arc;

use serde_json::Value;

/// Most schema violations listed in one rejection.
const MAX_VIOLATIONS: usize = 10;

/// A compiled JSON Schema. The dialect comes from `$schema` (draft 4, 6, 7, 2019-09, 2020-12),
/// 2020-12 when absent; `format` is an annotation only.
pub struct CompiledSchema {
    validator: jsonschema::Validator,
}

impl std::fmt::Debug for CompiledSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledSchema").finish_non_exhaustive()
    }
}

/// A schema that does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SchemaError(pub String);

impl CompiledSchema {
    /// Compiles `schema`. Not async-sensitive: no retrieval can happen.
    pub fn compile(schema: &Value) -> Result<CompiledSchema, SchemaError> {
        let validator = jsonschema::options()
            .should_validate_formats(false)
            .build(schema)
            .map_err(|e| SchemaError(e.to_string().replace('\n', " ")))?;
        Ok(CompiledSchema { validator })
    }

    /// Every violation as `<instance JSON pointer or "/">: <message>`, at most 10.
    pub fn violations(&self, instance: &Value) -> Vec<String> {
        self.validator
            .iter_errors(instance)
            .take(MAX_VIOLATIONS)
            .map(|error| {
                let pointer = error.instance_path().to_string();
                let pointer = if pointer.is_empty() { "/".to_string() } else { pointer };
                format!("{pointer}: {error}")
            })
            .collect()
    }
}

/// What an answer must satisfy.
#[derive(Debug, Clone)]
pub enum OutputContract {
    /// `"inline"` / `"json"`: any single JSON value.
    Json,
    /// A schema file or inline table: JSON valid against the schema.
    Schema(Arc<CompiledSchema>),
}

/// Why an answer was rejected (the text goes into the repair prompt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection(pub String);

impl OutputContract {
    /// Parses and checks `text` (06 §5.2 steps 6–7).
    pub fn check(&self, text: &str) -> Result<Value, Rejection> {
        let value = parse_json_answer(text).map_err(|e| Rejection(format!("model returned invalid JSON: {e}")))?;
        if let OutputContract::Schema(schema) = self {
            let violations = schema.violations(&value);
            if !violations.is_empty() {
                return Err(Rejection(format!("schema violation: {}", violations.join("; "))));
            }
        }
        Ok(value)
    }
}

/// Trims the text, drops a leading code-fence line (with its optional language tag) and a final
/// line that is only a fence, then parses exactly one JSON value.
pub fn parse_json_answer(text: &str) -> Result<Value, serde_json::Error> {
    let trimmed = text.trim();
    let body = match trimmed.strip_prefix("```") {
        Some(_) => {
            let after_first_line = trimmed.split_once('\n').map_or("", |(_, rest)| rest);
            match after_first_line.rsplit_once('\n') {
                Some((inner, last)) if last.trim() == "```" => inner,
                _ if after_first_line.trim() == "```" => "",
                _ => after_first_line,
            }
        }
        None => trimmed,
    };
    serde_json::from_str(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fences_are_tolerated() {
        assert_eq!(parse_json_answer("```json\n{\"a\": 1}\n```").unwrap(), json!({"a": 1}));
        assert_eq!(parse_json_answer("  ```\n[1,2]\n```  \n").unwrap(), json!([1, 2]));
        assert_eq!(parse_json_answer("```\n42").unwrap(), json!(42));
        assert!(parse_json_answer("```json {\"a\":1}```").is_err());
        assert!(parse_json_answer("{} {}").is_err());
        assert!(parse_json_answer("Sure! {\"a\":1}").is_err());
    }

    #[test]
    fn violations_name_pointers() {
        let schema = CompiledSchema::compile(&json!({
            "type": "object", "required": ["label"],
            "properties": {"label": {"enum": ["bug", "question"]}, "n": {"type": "integer"}}
        }))
        .unwrap();
        assert!(schema.violations(&json!({"label": "bug"})).is_empty());
        let v = schema.violations(&json!({"label": "x", "n": "y"}));
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v.iter().any(|e| e.starts_with("/label: ")), "{v:?}");
        assert!(schema.violations(&json!(3))[0].starts_with("/: "));
    }

    #[test]
    fn remote_and_file_refs_do_not_compile() {
        for r in ["https://example.com/s.json", "file:///etc/passwd"] {
            assert!(CompiledSchema::compile(&json!({"$ref": r})).is_err(), "{r}");
        }
        let local = json!({"$defs": {"n": {"type": "integer"}}, "$ref": "#/$defs/n"});
        assert!(CompiledSchema::compile(&local).unwrap().violations(&json!("x")).len() == 1);
    }

    #[test]
    fn dialect_from_schema_keyword_and_formats_not_asserted() {
        let draft4 = CompiledSchema::compile(
            &json!({"$schema": "http://json-schema.org/draft-04/schema#", "maximum": 5, "exclusiveMaximum": true}),
        )
        .unwrap();
        assert_eq!(draft4.violations(&json!(5)).len(), 1);
        let formats = CompiledSchema::compile(&json!({"format": "email"})).unwrap();
        assert!(formats.violations(&json!("not an email")).is_empty());
        assert!(CompiledSchema::compile(&json!({"type": 12})).is_err());
    }
}
