//! Turns one incoming JSON-RPC message into what the scripted server does next, shared by the
//! stdio and the HTTP front ends.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};

use super::script::{Reply, Script};

/// Versions the scripted server answers with when the client offers one of them.
const KNOWN_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
/// The answer when the client offers something else.
const FALLBACK_VERSION: &str = "2025-06-18";

/// What to do with one message.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send this JSON-RPC message after `delay`.
    Reply {
        /// The whole response object.
        message: Value,
        /// Wait before sending.
        delay: Duration,
    },
    /// Send this text (not JSON) after `delay`.
    Garbage {
        /// The text.
        text: String,
        /// Wait before sending.
        delay: Duration,
    },
    /// Never answer.
    Hang,
    /// Exit the process with this status after `delay`.
    Crash {
        /// The exit status.
        code: i32,
        /// Wait before exiting.
        delay: Duration,
    },
    /// Nothing to send (notifications, responses).
    Nothing,
}

/// The scripted server's state: FIFO queues and the call counter.
#[derive(Debug)]
pub struct Responder {
    script: Script,
    state: Mutex<State>,
    log: Option<Mutex<std::fs::File>>,
}

#[derive(Debug, Default)]
struct State {
    calls: u64,
    call_queues: BTreeMap<String, VecDeque<Reply>>,
    read_queues: BTreeMap<String, VecDeque<Reply>>,
}

impl Responder {
    /// A responder for `script`; requests are appended to `call_log` (or the script's
    /// `call_log`) when one is given.
    pub fn new(script: Script, call_log: Option<&std::path::Path>) -> std::io::Result<Self> {
        let log_path = call_log.map(std::path::Path::to_path_buf).or_else(|| script.call_log.clone().map(Into::into));
        let log = match log_path {
            Some(path) => Some(Mutex::new(std::fs::OpenOptions::new().create(true).append(true).open(path)?)),
            None => None,
        };
        let mut state = State::default();
        for call in &script.calls {
            state.call_queues.entry(call.tool.clone()).or_default().push_back(call.reply.clone());
        }
        for read in &script.reads {
            state.read_queues.entry(read.uri.clone()).or_default().push_back(read.reply.clone());
        }
        Ok(Self { script, state: Mutex::new(state), log })
    }

    /// Decides what to do with one decoded message.
    pub fn handle(&self, message: &Value) -> Action {
        self.handle_with_headers(message, None)
    }

    /// The request header names the HTTP front end passes to [`Responder::handle_with_headers`].
    pub fn logged_headers(&self) -> &[String] {
        &self.script.log_headers
    }

    /// Like [`Responder::handle`]; `headers` (HTTP request headers picked by `log_headers`) go
    /// into the call log entry.
    pub fn handle_with_headers(&self, message: &Value, headers: Option<Value>) -> Action {
        let Some(method) = message.get("method").and_then(Value::as_str) else {
            return Action::Nothing;
        };
        let params = message.get("params").cloned().unwrap_or(Value::Null);
        self.log(method, &params, headers);
        let Some(id) = message.get("id").cloned() else {
            return Action::Nothing;
        };
        match method {
            "initialize" => self.result(id, self.initialize(&params)),
            "ping" => self.result(id, json!({})),
            "tools/list" => self.result(id, self.tools_page(&params)),
            "resources/list" => self.result(id, json!({"resources": self.script.listed_resources()})),
            "tools/call" => self.call(id, &params),
            "resources/read" => self.read(id, &params),
            other => error_action(id, -32601, &format!("method not found: {other}")),
        }
    }

    fn log(&self, method: &str, params: &Value, headers: Option<Value>) {
        let Some(log) = &self.log else { return };
        let mut entry = json!({"method": method, "params": params});
        if let Some(headers) = headers {
            entry["headers"] = headers;
        }
        if let Ok(mut file) = log.lock() {
            let _ = writeln!(file, "{entry}");
            let _ = file.flush();
        }
    }

    fn result(&self, id: Value, result: Value) -> Action {
        Action::Reply { message: json!({"jsonrpc": "2.0", "id": id, "result": result}), delay: Duration::ZERO }
    }

    fn initialize(&self, params: &Value) -> Value {
        let offered = params.get("protocolVersion").and_then(Value::as_str).unwrap_or(FALLBACK_VERSION);
        let version = match &self.script.protocol_version {
            Some(version) => version.clone(),
            None if KNOWN_VERSIONS.contains(&offered) => offered.to_owned(),
            None => FALLBACK_VERSION.to_owned(),
        };
        let name = self.script.server_name.clone().unwrap_or_else(|| "agentd-mcp-scripted".to_owned());
        json!({
            "protocolVersion": version,
            "capabilities": {"tools": {"listChanged": false}, "resources": {}},
            "serverInfo": {"name": name, "version": env!("CARGO_PKG_VERSION")},
        })
    }

    fn tools_page(&self, params: &Value) -> Value {
        let tools = self.script.listed_tools();
        let size = self.script.tools_page_size;
        if size == 0 {
            return json!({"tools": tools});
        }
        let start: usize =
            params.get("cursor").and_then(Value::as_str).and_then(|cursor| cursor.parse().ok()).unwrap_or(0);
        let page: Vec<Value> = tools.iter().skip(start).take(size).cloned().collect();
        let next = start + page.len();
        if next < tools.len() { json!({"tools": page, "nextCursor": next.to_string()}) } else { json!({"tools": page}) }
    }

    fn call(&self, id: Value, params: &Value) -> Action {
        let tool = params.get("name").and_then(Value::as_str).unwrap_or_default().to_owned();
        let arguments = params.get("arguments").cloned().unwrap_or(Value::Null);
        let (ordinal, queued) = {
            let Ok(mut state) = self.state.lock() else { return error_action(id, -32603, "state poisoned") };
            state.calls += 1;
            let queued = state.call_queues.get_mut(&tool).and_then(VecDeque::pop_front);
            (state.calls, queued)
        };
        if let Some(fault) = self.fault(ordinal, &id) {
            return fault;
        }
        let reply = queued.or_else(|| self.script.tools.iter().find(|t| t.name == tool).map(|t| t.reply.clone()));
        let placeholders = Placeholders { arguments: &arguments, tool: &tool, uri: "", call: ordinal };
        match reply {
            Some(reply) => self.perform(id, &reply, &placeholders, &tool),
            None => error_action(id, -32000, &format!("no scripted reply for `{tool}`")),
        }
    }

    fn read(&self, id: Value, params: &Value) -> Action {
        let uri = params.get("uri").and_then(Value::as_str).unwrap_or_default().to_owned();
        let queued = match self.state.lock() {
            Ok(mut state) => state.read_queues.get_mut(&uri).and_then(VecDeque::pop_front),
            Err(_) => return error_action(id, -32603, "state poisoned"),
        };
        let placeholders = Placeholders { arguments: &Value::Null, tool: "", uri: &uri, call: 0 };
        if let Some(reply) = queued {
            return self.perform(id, &reply, &placeholders, &uri);
        }
        let resource = self.script.resources.iter().find(|resource| resource.uri == uri);
        match resource.and_then(|resource| resource.text.as_ref().map(|text| (resource, text))) {
            Some((resource, text)) => {
                let mut content = json!({"uri": uri, "text": text});
                if let Some(mime_type) = &resource.mime_type {
                    content["mimeType"] = json!(mime_type);
                }
                self.result(id, json!({"contents": [content]}))
            }
            None => error_action(id, -32000, &format!("no scripted reply for `{uri}`")),
        }
    }

    fn fault(&self, ordinal: u64, id: &Value) -> Option<Action> {
        let faults = &self.script.faults;
        if faults.crash_on_call.contains(&ordinal) {
            return Some(Action::Crash { code: faults.exit_code.unwrap_or(3), delay: Duration::ZERO });
        }
        if faults.hang_on_call.contains(&ordinal) {
            return Some(Action::Hang);
        }
        if faults.garbage_on_call.contains(&ordinal) {
            return Some(garbage(Duration::ZERO));
        }
        if faults.error_on_call.contains(&ordinal) {
            return Some(error_action(id.clone(), -32603, "injected MCP fault"));
        }
        None
    }

    fn perform(&self, id: Value, reply: &Reply, placeholders: &Placeholders<'_>, subject: &str) -> Action {
        let delay = Duration::from_millis(reply.delay_ms);
        if reply.crash {
            return Action::Crash { code: self.script.faults.exit_code.unwrap_or(3), delay };
        }
        if reply.hang {
            return Action::Hang;
        }
        if reply.garbage {
            return garbage(delay);
        }
        let message = if let Some(error) = &reply.error {
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": error.code, "message": error.message}})
        } else if let Some(result) = &reply.result {
            json!({"jsonrpc": "2.0", "id": id, "result": placeholders.apply(result)})
        } else {
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32000, "message": format!("no scripted reply for `{subject}`")}})
        };
        Action::Reply { message, delay }
    }
}

fn garbage(delay: Duration) -> Action {
    Action::Garbage { text: "this is not JSON }{ \u{1b}[31m garbage".to_owned(), delay }
}

fn error_action(id: Value, code: i64, message: &str) -> Action {
    Action::Reply {
        message: json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}),
        delay: Duration::ZERO,
    }
}

/// The values `{{...}}` placeholders in result strings stand for.
struct Placeholders<'a> {
    arguments: &'a Value,
    tool: &'a str,
    uri: &'a str,
    call: u64,
}

impl Placeholders<'_> {
    fn apply(&self, value: &Value) -> Value {
        match value {
            Value::String(text) => Value::String(self.render(text)),
            Value::Array(items) => Value::Array(items.iter().map(|item| self.apply(item)).collect()),
            Value::Object(members) => {
                Value::Object(members.iter().map(|(key, member)| (key.clone(), self.apply(member))).collect())
            }
            other => other.clone(),
        }
    }

    fn render(&self, text: &str) -> String {
        let mut rendered = String::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else { break };
            rendered.push_str(&rest[..open]);
            rendered.push_str(&self.lookup(after[..close].trim()));
            rest = &after[close + 2..];
        }
        rendered.push_str(rest);
        rendered
    }

    fn lookup(&self, name: &str) -> String {
        let as_text = |value: &Value| match value {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        match name {
            "tool" => self.tool.to_owned(),
            "uri" => self.uri.to_owned(),
            "call" => self.call.to_string(),
            "pid" => std::process::id().to_string(),
            "arguments" => self.arguments.to_string(),
            _ => match name.strip_prefix("arguments.") {
                Some(key) => self.arguments.get(key).map(as_text).unwrap_or_default(),
                None => String::new(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn responder(text: &str) -> Responder {
        let script = Script::parse(text, false, "<inline>").unwrap_or_else(|e| panic!("{e}"));
        Responder::new(script, None).unwrap_or_else(|e| panic!("{e}"))
    }

    fn call(responder: &Responder, id: u64, tool: &str, arguments: Value) -> Action {
        responder.handle(&json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}))
    }

    #[test]
    fn fifo_replies_come_first_then_the_tool_default() {
        let responder = responder(
            r#"
            [[tools]]
            name = "echo"
            result = { content = [{ type = "text", text = "echo {{arguments.text}} #{{call}}" }] }
            [[calls]]
            tool = "echo"
            error = { code = -32000, message = "boom" }
            "#,
        );
        let Action::Reply { message, .. } = call(&responder, 1, "echo", json!({"text": "hi"})) else {
            panic!("no reply")
        };
        assert_eq!(message["error"]["message"], "boom");
        let Action::Reply { message, .. } = call(&responder, 2, "echo", json!({"text": "hi"})) else {
            panic!("no reply")
        };
        assert_eq!(message["result"]["content"][0]["text"], "echo hi #2");
        let Action::Reply { message, .. } = call(&responder, 3, "missing", Value::Null) else { panic!("no reply") };
        assert_eq!(message["error"]["code"], -32000);
    }

    #[test]
    fn faults_are_counted_across_tools() {
        let responder = responder(
            "[[tools]]\nname = \"a\"\nresult = {}\n[faults]\nhang_on_call = [2]\ncrash_on_call = [3]\ngarbage_on_call = [4]",
        );
        assert!(matches!(call(&responder, 1, "a", Value::Null), Action::Reply { .. }));
        assert_eq!(call(&responder, 2, "a", Value::Null), Action::Hang);
        assert!(matches!(call(&responder, 3, "a", Value::Null), Action::Crash { code: 3, .. }));
        assert!(matches!(call(&responder, 4, "a", Value::Null), Action::Garbage { .. }));
    }

    #[test]
    fn tools_are_paged_when_asked() {
        let responder = responder("tools_page_size = 1\n[[tools]]\nname = \"a\"\n[[tools]]\nname = \"b\"");
        let Action::Reply { message, .. } =
            responder.handle(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        else {
            panic!("no reply")
        };
        assert_eq!(message["result"]["nextCursor"], "1");
        assert_eq!(
            responder.handle(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"})),
            Action::Nothing
        );
    }
}
