//! Google Gemini `generateContent` (`POST {base}/v1beta/models/{model}:generateContent`, key in
//! `x-goog-api-key`; the model is in the URL, not the body).

use serde_json::{Value, json};

use super::{Answer, count, split_system};
use crate::types::{CompletionRequest, Role, Usage};

/// Request body: `contents` with roles `user`/`model`, systems joined into `system_instruction`,
/// cap and temperature under `generationConfig`.
pub(super) fn body(request: &CompletionRequest, max_tokens: u32) -> Value {
    let (system, turns) = split_system(&request.messages);
    let contents: Vec<Value> = turns
        .iter()
        .map(|m| {
            let role = if m.role == Role::Assistant { "model" } else { "user" };
            json!({"role": role, "parts": [{"text": m.content}]})
        })
        .collect();
    let mut generation = serde_json::Map::new();
    generation.insert("maxOutputTokens".into(), json!(max_tokens));
    if let Some(t) = request.temperature {
        generation.insert("temperature".into(), json!(t));
    }
    let mut body = serde_json::Map::new();
    body.insert("contents".into(), Value::Array(contents));
    if let Some(system) = system {
        body.insert("system_instruction".into(), json!({"parts": [{"text": system}]}));
    }
    body.insert("generationConfig".into(), Value::Object(generation));
    Value::Object(body)
}

/// Text = the non-thought `text` parts of the first candidate; thought tokens are output tokens.
pub(super) fn parse(value: &Value) -> Result<Answer, String> {
    if let Some(reason) = value.pointer("/promptFeedback/blockReason") {
        let reason = reason.as_str().map_or_else(|| reason.to_string(), String::from);
        return Err(format!("gemini: prompt blocked: {reason}"));
    }
    let parts =
        value.pointer("/candidates/0/content/parts").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let texts: Vec<&str> = parts
        .iter()
        .filter(|p| p.get("thought").and_then(Value::as_bool) != Some(true))
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect();
    if texts.is_empty() {
        return Err("gemini response missing candidates[0].content.parts[].text".into());
    }
    let usage = value.get("usageMetadata").cloned().unwrap_or(Value::Null);
    let completion = count(&usage, "candidatesTokenCount").saturating_add(count(&usage, "thoughtsTokenCount"));
    Ok(Answer {
        text: texts.concat(),
        usage: Usage { prompt_tokens: count(&usage, "promptTokenCount"), completion_tokens: completion },
        model: value.get("modelVersion").and_then(Value::as_str).map(String::from),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Message;

    #[test]
    fn roles_and_system_instruction() {
        let request = CompletionRequest {
            messages: vec![Message::system("s"), Message::user("u"), Message::assistant("a")],
            temperature: Some(1.0),
            ..Default::default()
        };
        assert_eq!(
            body(&request, 5),
            json!({"system_instruction": {"parts": [{"text": "s"}]},
                   "contents": [{"role": "user", "parts": [{"text": "u"}]}, {"role": "model", "parts": [{"text": "a"}]}],
                   "generationConfig": {"maxOutputTokens": 5, "temperature": 1.0}})
        );
    }

    #[test]
    fn thoughts_skipped_but_billed_and_blocks_reported() {
        let answer = parse(&json!({
            "candidates": [{"content": {"parts": [{"text": "think", "thought": true}, {"text": "x"}, {"text": "y"}]}}],
            "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2, "thoughtsTokenCount": 7}
        }))
        .unwrap();
        assert_eq!(answer.text, "xy");
        assert_eq!(answer.usage, Usage { prompt_tokens: 4, completion_tokens: 9 });
        let blocked = json!({"promptFeedback": {"blockReason": "SAFETY"}});
        assert_eq!(parse(&blocked).unwrap_err(), "gemini: prompt blocked: SAFETY");
        assert!(parse(&json!({"candidates": []})).unwrap_err().contains("candidates[0].content.parts[].text"));
    }
}
