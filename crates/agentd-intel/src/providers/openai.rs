//! OpenAI Chat Completions (`POST {base}/v1/chat/completions`), used by both `openai` and
//! `openai-compatible`; they differ only in the name of the output cap.

use serde_json::{Value, json};

use super::{Answer, count, put_temperature};
use crate::types::{CompletionRequest, Usage};

/// Request body: messages in order (system messages kept in place) and the output cap under
/// `cap_field` (`max_completion_tokens` for openai, `max_tokens` for compatible servers).
pub(super) fn body(model: &str, request: &CompletionRequest, cap_field: &str, max_tokens: u32) -> Value {
    let messages: Vec<Value> =
        request.messages.iter().map(|m| json!({"role": m.role.as_str(), "content": m.content})).collect();
    let mut body = serde_json::Map::new();
    body.insert("model".into(), json!(model));
    body.insert("messages".into(), Value::Array(messages));
    body.insert(cap_field.into(), json!(max_tokens));
    put_temperature(&mut body, request);
    Value::Object(body)
}

/// Text = `choices[0].message.content` (a string, or the `text` of an array of parts).
pub(super) fn parse(label: &str, value: &Value) -> Result<Answer, String> {
    let message = value.pointer("/choices/0/message");
    let content = message.and_then(|m| m.get("content"));
    let text = match content {
        Some(Value::String(text)) => Some(text.clone()),
        Some(Value::Array(parts)) => {
            let texts: Vec<&str> = parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect();
            (!texts.is_empty()).then(|| texts.concat())
        }
        _ => None,
    };
    let Some(text) = text else {
        if let Some(refusal) = message.and_then(|m| m.get("refusal")).and_then(Value::as_str) {
            let refusal: String = refusal.chars().take(200).collect();
            return Err(format!("{label}: model refused: {refusal}"));
        }
        return Err(format!("{label} response missing choices[0].message.content"));
    };
    let usage = value.get("usage").cloned().unwrap_or(Value::Null);
    Ok(Answer {
        text,
        usage: Usage {
            prompt_tokens: count(&usage, "prompt_tokens"),
            completion_tokens: count(&usage, "completion_tokens"),
        },
        model: value.get("model").and_then(Value::as_str).map(String::from),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Message;

    #[test]
    fn body_keeps_system_in_place() {
        let request =
            CompletionRequest { messages: vec![Message::system("s"), Message::user("u")], ..Default::default() };
        assert_eq!(
            body("gpt", &request, "max_completion_tokens", 9),
            json!({"model": "gpt", "max_completion_tokens": 9,
                   "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]})
        );
    }

    #[test]
    fn parts_refusals_and_missing_content() {
        let parts = json!({"choices": [{"message": {"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}}]});
        assert_eq!(parse("openai", &parts).unwrap().text, "ab");
        let refused = json!({"choices": [{"message": {"content": null, "refusal": "no"}}]});
        assert_eq!(parse("openai", &refused).unwrap_err(), "openai: model refused: no");
        let empty = json!({"choices": []});
        assert_eq!(parse("openai", &empty).unwrap_err(), "openai response missing choices[0].message.content");
        let usage = json!({"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": 2, "completion_tokens": "bad"}});
        assert_eq!(parse("openai", &usage).unwrap().usage, Usage { prompt_tokens: 2, completion_tokens: 0 });
    }
}
