//! A scriptable MCP server for tests and conformance runs (binary `agentd-mcp-scripted`).
//!
//! It speaks the protocol by hand (not through rmcp) so that it can misbehave on purpose:
//! crash mid-call, never answer, answer with bytes that are not JSON.
//!
//! ```text
//! agentd-mcp-scripted SCRIPT [--http 127.0.0.1:PORT] [--call-log PATH]
//! ```
//!
//! Without `--http` it serves stdio (one JSON-RPC message per line). With `--http` it serves
//! streamable HTTP at `POST /mcp` (JSON answers, `mcp-session-id` issued on `initialize`, an
//! unknown session id answered `404`, `GET` answered `405`) and prints
//! `listening on http://ADDR/mcp` on stdout once bound (port 0 picks a free port).
//!
//! # Script format
//!
//! TOML, or JSON when the file name ends in `.json`; unknown keys are errors.
//!
//! ```toml
//! server_name = "docs"              # serverInfo.name (default agentd-mcp-scripted)
//! protocol_version = "2025-06-18"   # answer to initialize (default: the client's offer if known)
//! tools_page_size = 0               # > 0: tools/list is paged with nextCursor
//! call_log = "/tmp/calls.jsonl"     # every request and notification appended as {"method", "params"}
//! log_headers = ["authorization"]   # HTTP: these request headers join each log entry as "headers"
//!
//! [[tools]]                         # listed tools; `result`/`error`/... = the default reply
//! name = "echo"
//! description = "echoes"
//! input_schema = { type = "object" }
//! result = { content = [{ type = "text", text = "Echo: {{arguments.text}}" }] }
//!
//! [[resources]]                     # listed resources; `text` = the default read reply
//! uri = "docs://a"
//! name = "a"
//! mime_type = "text/plain"
//! text = "hello"
//!
//! [[calls]]                         # FIFO per tool, used before the tool's default reply
//! tool = "echo"
//! result = { content = [{ type = "text", text = "first" }], isError = true }
//! delay_ms = 0                      # wait before answering
//! # error = { code = -32000, message = "boom" }   # a JSON-RPC error instead
//! # hang = true                     # never answer this call
//! # garbage = true                  # answer with a line that is not JSON
//! # crash = true                    # exit (status faults.exit_code) instead of answering
//!
//! [[reads]]                         # FIFO per URI; same reply keys with `uri` instead of `tool`
//! uri = "docs://a"
//! result = { contents = [{ uri = "docs://a", text = "hello" }] }
//!
//! [faults]                          # by the 1-based ordinal of tools/call, across tools
//! crash_on_call = [3]
//! hang_on_call = [2]
//! garbage_on_call = [4]
//! error_on_call = [5]               # JSON-RPC error -32603 `injected MCP fault`
//! exit_code = 3
//! ```
//!
//! Result strings may use `{{arguments.NAME}}`, `{{arguments}}` (the arguments as JSON),
//! `{{tool}}`, `{{uri}}`, `{{call}}` (the call ordinal) and `{{pid}}` (the server's process id).
//! A call or read with no reply left and no default answers JSON-RPC error `-32000` ``no scripted reply for `<tool|uri>` ``.
//! Tools named only by `calls` are listed with an empty object schema.

mod responder;
mod script;
mod serve;

pub use responder::{Action, Responder};
pub use script::{CallScript, Faults, ReadScript, Reply, ResourceScript, RpcError, Script, ScriptError, ToolScript};
pub use serve::{serve_http, serve_stdio};
