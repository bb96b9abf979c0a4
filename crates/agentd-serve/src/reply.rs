//! Building HTTP responses: JSON error bodies (07), and run replies from outcomes (02 §9).

use agentd_engine::Outcome;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use serde_json::{Value, json};

/// The response body type of every answer.
pub type Body = Full<Bytes>;

/// `application/json`.
pub const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// A response with a JSON body.
pub fn json(status: StatusCode, body: &Value) -> Response<Body> {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, JSON);
    response
}

/// A JSON error response that closes the HTTP/1.1 connection.
pub fn closing(status: StatusCode, body: &Value) -> Response<Body> {
    let mut response = json(status, body);
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// `{"error": text}` with `status`.
pub fn error(status: StatusCode, text: &str) -> Response<Body> {
    json(status, &json!({"error": text}))
}

/// What a finished run answers, before headers are attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReply {
    /// Status code.
    pub status: u16,
    /// Content type (`None` for 204/304).
    pub content_type: Option<String>,
    /// Body bytes.
    pub body: Bytes,
    /// Whether the run ended errored (the HTTP/1.1 connection is closed after it).
    pub errored: bool,
    /// Whether the reply may be stored for idempotent replay (completed or paused).
    pub storable: bool,
}

impl RunReply {
    fn outcome_json(status: u16, outcome: &Outcome, storable: bool) -> RunReply {
        let body = serde_json::to_vec(outcome).unwrap_or_default();
        RunReply {
            status,
            content_type: Some("application/json".to_string()),
            body: Bytes::from(body),
            errored: matches!(outcome, Outcome::Errored { .. }),
            storable,
        }
    }

    /// The reply of an outcome (02 §9).
    pub fn from_outcome(outcome: &Outcome) -> RunReply {
        match outcome {
            Outcome::Completed { http_response: Some(reply), last_node, .. } => {
                if !(200..=599).contains(&reply.status) {
                    let errored = Outcome::Errored {
                        reason: format!("respond: status {} cannot be a final HTTP response", reply.status),
                        last_node: Some(last_node.clone()),
                    };
                    return RunReply::outcome_json(500, &errored, false);
                }
                let bodiless = matches!(reply.status, 204 | 304);
                RunReply {
                    status: reply.status,
                    content_type: (!bodiless).then(|| reply.content_type.clone()),
                    body: if bodiless { Bytes::new() } else { Bytes::from(reply.body.clone()) },
                    errored: false,
                    storable: true,
                }
            }
            Outcome::Completed { .. } => RunReply::outcome_json(200, outcome, true),
            Outcome::Failed { .. } => RunReply::outcome_json(422, outcome, false),
            Outcome::TimedOut { .. } => RunReply::outcome_json(504, outcome, false),
            Outcome::Paused { .. } => RunReply::outcome_json(202, outcome, true),
            Outcome::Errored { .. } => RunReply::outcome_json(500, outcome, false),
        }
    }

    /// The HTTP response, with `x-agentd-execution-id`.
    pub fn into_response(self, execution_id: &str) -> Response<Body> {
        let mut response = Response::new(Full::new(self.body));
        *response.status_mut() = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if response.status().canonical_reason().is_none() {
            response.extensions_mut().insert(hyper::ext::ReasonPhrase::from_static(b"Unknown"));
        }
        let headers = response.headers_mut();
        if let Some(value) = self.content_type.and_then(|c| HeaderValue::from_str(&c).ok()) {
            headers.insert(header::CONTENT_TYPE, value);
        }
        if let Ok(value) = HeaderValue::from_str(execution_id) {
            headers.insert("x-agentd-execution-id", value);
        }
        if self.errored {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentd_engine::HttpReply;

    fn completed(status: u16) -> Outcome {
        Outcome::Completed {
            final_value: Value::Null,
            last_node: "r".into(),
            http_response: Some(HttpReply { status, content_type: "text/plain".into(), body: "hi".into() }),
        }
    }

    #[test]
    fn declared_replies_and_bodiless_statuses() {
        let reply = RunReply::from_outcome(&completed(201));
        assert_eq!(
            (reply.status, reply.content_type.as_deref(), &reply.body[..]),
            (201, Some("text/plain"), &b"hi"[..])
        );
        let reply = RunReply::from_outcome(&completed(204));
        assert_eq!((reply.content_type, reply.body.len()), (None, 0));
        let reply = RunReply::from_outcome(&completed(101));
        assert_eq!(reply.status, 500);
        assert!(String::from_utf8_lossy(&reply.body).contains("respond: status 101 cannot be a final HTTP response"));
    }

    #[test]
    fn outcome_statuses() {
        let failed = Outcome::Failed { reason: "x".into(), last_node: "f".into() };
        assert_eq!(RunReply::from_outcome(&failed).status, 422);
        let timed_out = Outcome::TimedOut { elapsed_ms: 1, last_node: None };
        assert_eq!(RunReply::from_outcome(&timed_out).status, 504);
        let errored = Outcome::Errored { reason: "x".into(), last_node: None };
        assert!(RunReply::from_outcome(&errored).errored);
    }
}
