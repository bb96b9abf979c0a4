//! Scripted MCP servers of a trial (10 §2.6): each `[mcp.servers.<name>]` becomes a script file
//! for `agentd_mcp::scripted`, served by this binary re-executed with the hidden sub-command
//! [`SERVE_SUBCOMMAND`], over stdio or streamable HTTP. The hub then talks to it over the real
//! transport; the workflow entry keeps its allowlists, only its command/URL is replaced.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use agentd_mcp::TransportSpec;
use serde_json::{Value, json};
use tokio::io::AsyncBufReadExt;

use crate::scenario::{Faults, McpCall, McpRead, McpServerScript, McpTransport, RpcError};

/// The hidden sub-command: `agentd-conformance __mcp-serve SCRIPT.json [--http ADDR]`.
pub const SERVE_SUBCOMMAND: &str = "__mcp-serve";

/// The script of one scripted server as the JSON the scripted-server engine reads.
pub fn script_json(name: &str, server: &McpServerScript, faults: &Faults, shared_faults: bool) -> Value {
    let tools: Vec<Value> = server
        .tools
        .iter()
        .map(|t| {
            let mut tool = json!({"name": t.name});
            if let Some(d) = &t.description {
                tool["description"] = json!(d);
            }
            if let Some(s) = &t.input_schema {
                tool["input_schema"] = s.clone();
            }
            tool
        })
        .collect();
    let resources: Vec<Value> = server
        .resources
        .iter()
        .map(|r| {
            let mut resource = json!({"uri": r.uri});
            if let Some(n) = &r.name {
                resource["name"] = json!(n);
            }
            if let Some(m) = &r.mime_type {
                resource["mime_type"] = json!(m);
            }
            resource
        })
        .collect();
    let calls: Vec<Value> = server.calls.iter().map(call_json).collect();
    let reads: Vec<Value> = server.reads.iter().map(read_json).collect();
    let mut script = json!({
        "server_name": name, "tools": tools, "resources": resources, "calls": calls, "reads": reads,
    });
    if shared_faults {
        let mut fault_table = serde_json::Map::new();
        if let Some(n) = faults.mcp_error_on_call {
            fault_table.insert("error_on_call".into(), json!([n]));
        }
        if let Some(n) = faults.mcp_hang_on_call {
            fault_table.insert("hang_on_call".into(), json!([n]));
        }
        script["faults"] = Value::Object(fault_table);
    }
    script
}

fn reply_json(result: &Option<Value>, error: &Option<RpcError>, delay_ms: u64) -> serde_json::Map<String, Value> {
    let mut reply = serde_json::Map::new();
    if let Some(r) = result {
        reply.insert("result".into(), r.clone());
    }
    if let Some(e) = error {
        reply.insert("error".into(), json!({"code": e.code, "message": e.message}));
    }
    if delay_ms > 0 {
        reply.insert("delay_ms".into(), json!(delay_ms));
    }
    reply
}

fn call_json(call: &McpCall) -> Value {
    let mut reply = reply_json(&call.result, &call.error, call.delay_ms);
    reply.insert("tool".into(), json!(call.tool));
    Value::Object(reply)
}

fn read_json(read: &McpRead) -> Value {
    let mut reply = reply_json(&read.result, &read.error, read.delay_ms);
    reply.insert("uri".into(), json!(read.uri));
    Value::Object(reply)
}

/// Checks a server script with the scripted-server engine's own rules (load time).
pub fn check_script(name: &str, server: &McpServerScript, faults: &Faults) -> Result<(), String> {
    let text = script_json(name, server, faults, true).to_string();
    agentd_mcp::scripted::Script::parse(&text, true, &format!("[mcp.servers.{name}]"))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// A started scripted server: its transport for the hub, and the child kept alive for HTTP.
pub struct Started {
    /// How the hub reaches it.
    pub transport: TransportSpec,
    /// The HTTP server process (stdio children are owned by the hub).
    pub child: Option<tokio::process::Child>,
}

/// Writes the script into the trial dir and prepares the transport; an HTTP server is started
/// now and its URL read from its first stdout line.
pub async fn start(
    exe: &Path,
    trial_dir: &Path,
    name: &str,
    script: &Value,
    transport: McpTransport,
    original: &TransportSpec,
) -> Result<Started, String> {
    let file = trial_dir.join(format!("mcp-{}.json", sanitize(name)));
    std::fs::write(&file, script.to_string()).map_err(|e| format!("write {}: {e}", file.display()))?;
    let file_arg = file.display().to_string();
    match transport {
        McpTransport::Stdio => {
            let (env, env_passthrough) = match original {
                TransportSpec::Stdio { env, env_passthrough, .. } => (env.clone(), env_passthrough.clone()),
                TransportSpec::Http { .. } => Default::default(),
            };
            let command = vec![exe.display().to_string(), SERVE_SUBCOMMAND.to_string(), file_arg];
            Ok(Started { transport: TransportSpec::Stdio { command, env, env_passthrough }, child: None })
        }
        McpTransport::Http => {
            let headers = match original {
                TransportSpec::Http { headers, .. } => headers.clone(),
                TransportSpec::Stdio { .. } => Default::default(),
            };
            let (url, child) = spawn_http(exe, &file_arg).await?;
            Ok(Started { transport: TransportSpec::Http { url, headers }, child: Some(child) })
        }
    }
}

fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

async fn spawn_http(exe: &Path, script: &str) -> Result<(String, tokio::process::Child), String> {
    let mut child = tokio::process::Command::new(exe)
        .args([SERVE_SUBCOMMAND, script, "--http", "127.0.0.1:0"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("scripted MCP server: spawn {}: {e}", exe.display()))?;
    let stdout = child.stdout.take().ok_or("scripted MCP server: no stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let first = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await;
    let line = match first {
        Ok(Ok(Some(line))) => line,
        Ok(Ok(None)) => return Err("scripted MCP server exited before listening".into()),
        Ok(Err(e)) => return Err(format!("scripted MCP server: {e}")),
        Err(_) => return Err("scripted MCP server did not start listening within 10 s".into()),
    };
    let url = line.strip_prefix("listening on ").ok_or_else(|| format!("scripted MCP server said `{line}`"))?;
    Ok((url.to_string(), child))
}

/// Runs the hidden sub-command; returns the exit code.
pub fn serve_main(arguments: &[String]) -> i32 {
    let (script, http) = match arguments {
        [script] => (PathBuf::from(script), None),
        [script, flag, address] if flag == "--http" => (PathBuf::from(script), Some(address.clone())),
        _ => {
            eprintln!("agentd-conformance: usage: {SERVE_SUBCOMMAND} SCRIPT [--http ADDR]");
            return 2;
        }
    };
    let loaded = agentd_mcp::scripted::Script::load(&script)
        .map_err(|e| e.to_string())
        .and_then(|s| agentd_mcp::scripted::Responder::new(s, None).map_err(|e| e.to_string()));
    let responder = match loaded {
        Ok(r) => Arc::new(r),
        Err(e) => {
            eprintln!("agentd-conformance: {e}");
            return 2;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("agentd-conformance: runtime: {e}");
            return 2;
        }
    };
    let served = runtime.block_on(async move {
        match http {
            None => agentd_mcp::scripted::serve_stdio(responder).await,
            Some(address) => {
                let listener = tokio::net::TcpListener::bind(&address).await?;
                let bound = listener.local_addr()?;
                println!("listening on http://{bound}/mcp");
                agentd_mcp::scripted::serve_http(responder, listener).await
            }
        }
    });
    match served {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("agentd-conformance: {e}");
            1
        }
    }
}
