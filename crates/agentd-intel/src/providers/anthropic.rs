//! Anthropic Messages API: `POST {base}/v1/messages` with `x-api-key` and
//! `anthropic-version: 2023-06-01`.

use serde_json::{Value, json};

use super::{Answer, count, put_temperature, split_system};
use crate::types::{CompletionRequest, Usage};

/// Request body: top-level `system`, user/assistant `messages`, `max_tokens` always sent.
pub(super) fn body(model: &str, request: &CompletionRequest, max_tokens: u32) -> Value {
    let (system, turns) = split_system(&request.messages);
    let messages: Vec<Value> = turns.iter().map(|m| json!({"role": m.role.as_str(), "content": m.content})).collect();
    let mut body = serde_json::Map::new();
    body.insert("model".into(), json!(model));
    body.insert("max_tokens".into(), json!(max_tokens));
    body.insert("messages".into(), Value::Array(messages));
    if let Some(system) = system {
        body.insert("system".into(), json!(system));
    }
    put_temperature(&mut body, request);
    Value::Object(body)
}

/// Text = every `text` block of `content[]`, in order; cache tokens count as prompt tokens.
pub(super) fn parse(value: &Value) -> Result<Answer, String> {
    let blocks = value.get("content").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let texts: Vec<&str> = blocks
        .iter()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
        .filter_map(|b| b.get("text").and_then(Value::as_str))
        .collect();
    if texts.is_empty() {
        return Err("anthropic response missing content[].text".into());
    }
    let usage = value.get("usage").cloned().unwrap_or(Value::Null);
    let prompt = count(&usage, "input_tokens")
        .saturating_add(count(&usage, "cache_creation_input_tokens"))
        .saturating_add(count(&usage, "cache_read_input_tokens"));
    Ok(Answer {
        text: texts.concat(),
        usage: Usage { prompt_tokens: prompt, completion_tokens: count(&usage, "output_tokens") },
        model: value.get("model").and_then(Value::as_str).map(String::from),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Message;

    #[test]
    fn systems_are_joined_and_lifted() {
        let request = CompletionRequest {
            messages: vec![Message::system("a"), Message::user("hi"), Message::system("b")],
            temperature: Some(0.5),
            ..Default::default()
        };
        let body = body("m", &request, 7);
        assert_eq!(
            body,
            json!({"model": "m", "max_tokens": 7, "system": "a\n\nb", "temperature": 0.5,
                   "messages": [{"role": "user", "content": "hi"}]})
        );
    }

    #[test]
    fn text_blocks_concatenate_and_cache_tokens_count() {
        let answer = parse(&json!({
            "model": "claude-x",
            "content": [{"type": "thinking", "thinking": "hm"}, {"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            "usage": {"input_tokens": 3, "cache_creation_input_tokens": 4, "cache_read_input_tokens": 5, "output_tokens": 6}
        }))
        .unwrap();
        assert_eq!(answer.text, "ab");
        assert_eq!(answer.usage, Usage { prompt_tokens: 12, completion_tokens: 6 });
        assert_eq!(parse(&json!({"content": []})).unwrap_err(), "anthropic response missing content[].text");
    }
}
