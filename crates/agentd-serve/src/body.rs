//! Request bodies → trigger input (07 §6): decoding by content type, principal and exposed
//! header injection, and idempotency key extraction (§8).

use bytes::Bytes;
use http::HeaderMap;
use serde_json::{Map, Value};

/// A body the route refuses (400), with the exact error text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadBody(pub String);

/// The lower-cased media type before `;`, or `""` when absent or unreadable.
pub fn media_type(headers: &HeaderMap) -> String {
    let raw = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    raw.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

/// A file part dropped from a multipart body (audit `http.multipart_file_dropped`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedFile {
    /// Field name.
    pub field: String,
    /// Declared file name.
    pub filename: String,
    /// Size of the dropped content.
    pub bytes: usize,
}

/// Decodes a body by its content type (07 §6.1).
pub async fn decode(headers: &HeaderMap, body: Bytes) -> Result<(Value, Vec<DroppedFile>), BadBody> {
    match media_type(headers).as_str() {
        "application/x-www-form-urlencoded" => Ok((decode_form(&body)?, Vec::new())),
        "multipart/form-data" => decode_multipart(headers, body).await,
        _ if body.is_empty() => Ok((Value::Null, Vec::new())),
        _ => serde_json::from_slice(&body)
            .map(|v| (v, Vec::new()))
            .map_err(|e| BadBody(format!("invalid JSON body: {e}"))),
    }
}

/// `application/x-www-form-urlencoded` into a flat object of strings.
pub fn decode_form(body: &[u8]) -> Result<Value, BadBody> {
    let mut object = Map::new();
    for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (key, value) = match pair.iter().position(|b| *b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &b""[..]),
        };
        object.insert(form_component(key)?, Value::String(form_component(value)?));
    }
    Ok(Value::Object(object))
}

/// One form component: `+` → space, strict `%XX`, UTF-8.
fn form_component(raw: &[u8]) -> Result<String, BadBody> {
    let mut out = Vec::with_capacity(raw.len());
    let mut index = 0;
    while index < raw.len() {
        match raw[index] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = raw.get(index + 1..index + 3).ok_or_else(malformed_escape)?;
                let text = std::str::from_utf8(hex).map_err(|_| malformed_escape())?;
                out.push(u8::from_str_radix(text, 16).map_err(|_| malformed_escape())?);
                index += 2;
            }
            other => out.push(other),
        }
        index += 1;
    }
    String::from_utf8(out).map_err(|_| BadBody("invalid form body: not UTF-8".to_string()))
}

fn malformed_escape() -> BadBody {
    BadBody("invalid form body: malformed percent escape".to_string())
}

/// `multipart/form-data` (RFC 7578): text parts become strings, file parts are dropped.
async fn decode_multipart(headers: &HeaderMap, body: Bytes) -> Result<(Value, Vec<DroppedFile>), BadBody> {
    let content_type = headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let boundary = multer::parse_boundary(content_type)
        .map_err(|_| BadBody("invalid multipart body: missing boundary parameter".to_string()))?;
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::convert::Infallible>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut object = Map::new();
    let mut dropped = Vec::new();
    loop {
        let field = multipart.next_field().await.map_err(|e| BadBody(format!("invalid multipart body: {e}")))?;
        let Some(field) = field else { break };
        let disposition = field
            .headers()
            .get(http::header::CONTENT_DISPOSITION)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim_start().to_ascii_lowercase());
        let Some(name) =
            field.name().map(str::to_string).filter(|_| disposition.is_some_and(|d| d.starts_with("form-data")))
        else {
            return Err(BadBody(
                "invalid multipart body: part without content-disposition: form-data; name".to_string(),
            ));
        };
        let filename = field.file_name().map(str::to_string);
        let content = field.bytes().await.map_err(|e| BadBody(format!("invalid multipart body: {e}")))?;
        match filename {
            Some(filename) => dropped.push(DroppedFile { field: name, filename, bytes: content.len() }),
            None => {
                let text = String::from_utf8(content.to_vec())
                    .map_err(|_| BadBody(format!("invalid multipart body: part `{name}` is not UTF-8")))?;
                object.insert(name, Value::String(text));
            }
        }
    }
    Ok((Value::Object(object), dropped))
}

/// Injects the principal and exposed headers (07 §6.4). Returns the run input.
///
/// For an array or scalar body the spec puts `principal` (and `headers`) into the `trigger`
/// value next to `input`. The engine builds that value from an object input by copying its
/// fields, so the input becomes `{"input": <body>, "principal": …}`, which yields exactly that
/// `trigger` value.
pub fn inject(body: Value, principal: Value, headers: Option<Map<String, Value>>) -> Value {
    let mut object = match body {
        Value::Object(object) => object,
        Value::Null => Map::new(),
        other => {
            let mut wrapper = Map::new();
            wrapper.insert("input".to_string(), other);
            wrapper
        }
    };
    object.insert("principal".to_string(), principal);
    if let Some(headers) = headers {
        object.insert("headers".to_string(), Value::Object(headers));
    }
    Value::Object(object)
}

/// How a route finds its idempotency key (07 §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `body_sha256`.
    BodySha256,
    /// `header:<Name>`.
    Header(http::HeaderName),
    /// A dotted path into the input (after principal injection).
    Path(Vec<String>),
}

impl KeySource {
    /// Parses the spec string.
    pub fn parse(spec: &str) -> Result<KeySource, String> {
        if spec == "body_sha256" {
            return Ok(KeySource::BodySha256);
        }
        if let Some(name) = spec.strip_prefix("header:") {
            let name = http::HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| format!("idempotency_key `{spec}`: `{name}` is not a header name"))?;
            return Ok(KeySource::Header(name));
        }
        let path = spec.strip_prefix("trigger.").unwrap_or(spec);
        Ok(KeySource::Path(path.split('.').map(str::to_string).collect()))
    }

    /// The key of one request, or `None` when it does not resolve.
    pub fn resolve(&self, headers: &HeaderMap, raw_body: &[u8], input: &Value) -> Option<String> {
        match self {
            KeySource::BodySha256 => {
                use sha2::Digest;
                Some(hex::encode(sha2::Sha256::digest(raw_body)))
            }
            KeySource::Header(name) => {
                headers.get(name)?.to_str().ok().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string)
            }
            KeySource::Path(segments) => {
                let mut value = input;
                for segment in segments {
                    value = match value {
                        Value::Object(map) => map.get(segment)?,
                        Value::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
                        _ => return None,
                    };
                }
                match value {
                    Value::String(s) if !s.is_empty() => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    Value::Bool(b) => Some(b.to_string()),
                    _ => None,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn forms_follow_the_spec() {
        assert_eq!(decode_form(b"a=1&&b&c=x+y%21&a=2").expect("ok"), json!({"a": "2", "b": "", "c": "x y!"}));
        assert!(decode_form(b"a=%2").is_err());
        assert!(decode_form(b"a=%zz").is_err());
        assert!(decode_form(b"a=%ff").is_err());
    }

    #[test]
    fn principal_lands_next_to_scalar_input() {
        let principal = json!({"kind": "anonymous", "name": ""});
        assert_eq!(inject(json!([1]), principal.clone(), None), json!({"input": [1], "principal": principal}));
        assert_eq!(inject(Value::Null, principal.clone(), None), json!({"principal": principal}));
        assert_eq!(
            inject(json!({"principal": 1, "a": 2}), principal.clone(), None),
            json!({"a": 2, "principal": principal})
        );
    }

    #[test]
    fn key_paths_resolve_scalars_only() {
        let input = json!({"order": {"id": 7, "tags": ["x"], "empty": ""}});
        let headers = HeaderMap::new();
        let key = |spec: &str| KeySource::parse(spec).expect("spec").resolve(&headers, b"", &input);
        assert_eq!(key("trigger.order.id").as_deref(), Some("7"));
        assert_eq!(key("order.tags.0").as_deref(), Some("x"));
        assert_eq!(key("order.empty"), None);
        assert_eq!(key("order"), None);
    }
}
