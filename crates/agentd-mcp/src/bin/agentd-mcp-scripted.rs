//! `agentd-mcp-scripted SCRIPT [--http ADDR] [--call-log PATH]`: a scriptable MCP server for
//! tests (format: `agentd_mcp::scripted`). Exit status 2 on a bad command line or script.

use std::path::PathBuf;
use std::sync::Arc;

use agentd_mcp::scripted::{Responder, Script, serve_http, serve_stdio};

const USAGE: &str = "usage: agentd-mcp-scripted SCRIPT [--http 127.0.0.1:PORT] [--call-log PATH]";

struct Arguments {
    script: PathBuf,
    http: Option<String>,
    call_log: Option<PathBuf>,
}

fn parse_arguments() -> Result<Arguments, String> {
    let mut script = None;
    let mut http = None;
    let mut call_log = None;
    let mut arguments = std::env::args_os().skip(1);
    while let Some(argument) = arguments.next() {
        match argument.to_str() {
            Some("--http") => http = Some(value(&mut arguments, "--http")?.to_string_lossy().into_owned()),
            Some("--call-log") => call_log = Some(PathBuf::from(value(&mut arguments, "--call-log")?)),
            Some("-h" | "--help") => return Err(USAGE.to_owned()),
            Some(flag) if flag.starts_with("--") => return Err(format!("unknown flag `{flag}`\n{USAGE}")),
            _ if script.is_none() => script = Some(PathBuf::from(argument)),
            _ => return Err(format!("more than one script given\n{USAGE}")),
        }
    }
    let script = script.ok_or_else(|| format!("no script given\n{USAGE}"))?;
    Ok(Arguments { script, http, call_log })
}

fn value(arguments: &mut impl Iterator<Item = std::ffi::OsString>, flag: &str) -> Result<std::ffi::OsString, String> {
    arguments.next().ok_or_else(|| format!("`{flag}` needs a value\n{USAGE}"))
}

fn fail(message: &str) -> ! {
    eprintln!("agentd-mcp-scripted: {message}");
    std::process::exit(2);
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let arguments = parse_arguments().unwrap_or_else(|message| fail(&message));
    let script = Script::load(&arguments.script).unwrap_or_else(|error| fail(&error.to_string()));
    let responder = Responder::new(script, arguments.call_log.as_deref())
        .unwrap_or_else(|error| fail(&format!("cannot open the call log: {error}")));
    let responder = Arc::new(responder);
    let served = match arguments.http {
        None => serve_stdio(responder).await,
        Some(address) => {
            let listener = tokio::net::TcpListener::bind(&address)
                .await
                .unwrap_or_else(|error| fail(&format!("cannot listen on {address}: {error}")));
            let bound = listener.local_addr().map(|bound| bound.to_string()).unwrap_or(address);
            println!("listening on http://{bound}/mcp");
            serve_http(responder, listener).await
        }
    };
    if let Err(error) = served {
        fail(&error.to_string());
    }
}
