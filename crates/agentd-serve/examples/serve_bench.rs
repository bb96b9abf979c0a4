//! Serves one workflow file for benchmarking, until Ctrl-C.
//!
//! `cargo run --release -p agentd-serve --example serve_bench -- WORKFLOW.toml 127.0.0.1:18080`
//! (see `benches/README.md` for the wrk commands).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agentd_engine::{Engine, EngineOptions};
use agentd_serve::{CancellationToken, ServeConfig, Server};
use agentd_workflow::{NoFiles, SourceFile, ValidateOptions};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(file), Some(bind)) = (args.next(), args.next()) else {
        eprintln!("usage: serve_bench WORKFLOW.toml HOST:PORT");
        std::process::exit(2);
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(serve(PathBuf::from(file), bind.parse().expect("HOST:PORT")));
}

async fn serve(file: PathBuf, bind: std::net::SocketAddr) {
    let text = std::fs::read_to_string(&file).expect("readable workflow");
    let cwd = std::env::current_dir().expect("cwd");
    let source = SourceFile::new(file.display().to_string(), Some(file.clone()), text);
    let options = ValidateOptions { mcp_stdio: false, cwd: cwd.clone(), files: &NoFiles };
    let workflow = Arc::new(agentd_workflow::load(&source, &options).expect("valid workflow"));
    // An audit sink that discards: the benchmark measures the server, not log formatting.
    let audit = Arc::new(Discard);
    let engine =
        Engine::build(workflow.clone(), EngineOptions { cwd, audit: audit.clone(), durable: Default::default() })
            .expect("engine");
    let mut config = ServeConfig::new(workflow, Arc::new(engine));
    config.bind = Some(bind);
    config.audit = audit;
    config.base_dir = file.parent().map(PathBuf::from).unwrap_or_default();
    config.drain_timeout = Duration::from_secs(5);
    let server = Server::start(config).await.expect("server starts");
    eprintln!("serve_bench: listening on http://{}/", server.local_addr().expect("bound"));
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        trigger.cancel();
    });
    let exit = server.run(shutdown).await;
    eprintln!("serve_bench: {exit:?}");
}

struct Discard;

impl agentd_engine::audit::AuditSink for Discard {
    fn emit(&self, _: agentd_engine::audit::Level, _: &str, _: serde_json::Value) {}
}
