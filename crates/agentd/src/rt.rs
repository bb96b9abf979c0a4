//! The process's async runtime: one multi-threaded tokio runtime, created on first use and never
//! dropped, so MCP server connections, runs and (later) the HTTP server share it, and a node cut
//! short by the deadline (a blocking read on a FIFO) never delays the process exit.

use std::sync::OnceLock;

use tokio::runtime::Runtime;

/// The runtime; `None` when the OS refused to start it (the caller reports the error).
pub fn runtime() -> Result<&'static Runtime, String> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 16);
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .thread_name("agentd-worker")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
}
