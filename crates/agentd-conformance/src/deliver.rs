//! `[trigger.request]` (10 §2.3): the workflow's real HTTP server on `127.0.0.1:0` (routes, auth,
//! rate limits, idempotency, `respond`; state in the trial store) and `repeat` sequential
//! deliveries with a real HTTP/1.1 client. Expectations see the last response and the last run
//! any delivery started (read back from the trial store's history); no run → `rejected`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use agentd_engine::RunRecord;
use agentd_serve::{CancellationToken, ServeConfig, Server};
use agentd_workflow::Workflow;
use serde_json::Value;

use crate::expect::{HttpResponse, Observed};
use crate::prepare::Placeholders;
use crate::runtime::Runtime;
use crate::scenario::{RequestSpec, Scenario};

/// Serves the workflow, sends the deliveries, and reads back the last run.
pub async fn deliver(
    scenario: &Scenario,
    workflow: &Arc<Workflow>,
    runtime: &Runtime,
    request: &RequestSpec,
    start: &str,
    timeout: Duration,
    placeholders: &Placeholders,
) -> Result<(Observed, Option<HttpResponse>), String> {
    let store = runtime.store.clone().ok_or("[trigger.request] needs the trial store")?;
    let mut config = ServeConfig::new(workflow.clone(), runtime.engine.clone());
    config.store = Some(store.clone());
    config.bind = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.run_timeout = timeout;
    config.dry_run = scenario.file.dry_run;
    config.drain_timeout = Duration::from_secs(1);
    config.audit = runtime.audit.clone();
    if let Some(dir) = scenario.workflow_path.as_deref().and_then(std::path::Path::parent) {
        config.base_dir = dir.to_path_buf();
    }
    let server = Server::start(config).await.map_err(|e| format!("serve: {e}"))?;
    let address = server.local_addr().ok_or("serve: the server opened no listener")?;
    let path = match &request.path {
        Some(path) => placeholders.apply(path),
        None => workflow
            .environment
            .http_routes
            .iter()
            .find(|r| r.start_node.get_ref() == start)
            .map(|r| r.path.clone())
            .ok_or_else(|| format!("[trigger.request]: no [[http_routes]] entry starts `{start}`"))?,
    };
    let shutdown = CancellationToken::new();
    let client = async {
        let result = send_all(request, &format!("http://{address}{path}"), placeholders).await;
        shutdown.cancel();
        result
    };
    let (_, sent) = tokio::join!(server.run(shutdown.clone()), client);
    let (response, run_id) = sent?;
    let observed = match run_id {
        None => Observed { status: "rejected".into(), ..Observed::default() },
        Some(id) => read_run(store.as_ref(), &id)?,
    };
    Ok((observed, Some(response)))
}

/// Sends `repeat` deliveries one after the other; the last response and the last run id seen.
async fn send_all(
    request: &RequestSpec,
    url: &str,
    placeholders: &Placeholders,
) -> Result<(HttpResponse, Option<String>), String> {
    let client = reqwest::Client::builder().no_proxy().http1_only().build().map_err(|e| format!("http client: {e}"))?;
    let method = request.method.as_deref().unwrap_or("POST").to_ascii_uppercase();
    let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|_| format!("bad method `{method}`"))?;
    let mut last = HttpResponse::default();
    let mut run_id = None;
    for _ in 0..request.repeat.unwrap_or(1).max(1) {
        let mut builder = client.request(method.clone(), url);
        let mut has_content_type = false;
        for (name, value) in &request.headers {
            has_content_type |= name.eq_ignore_ascii_case("content-type");
            builder = builder.header(name.as_str(), placeholders.apply(value));
        }
        if let Some(body) = &request.body {
            builder = builder.body(placeholders.apply(body));
        } else if let Some(json) = &request.json {
            let mut json = json.clone();
            placeholders.apply_json(&mut json);
            if !has_content_type {
                builder = builder.header("content-type", "application/json");
            }
            builder = builder.body(json.to_string());
        }
        let response = builder.send().await.map_err(|e| format!("delivery to {url}: {e}"))?;
        let status = response.status().as_u16();
        let headers: BTreeMap<String, String> = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        if let Some(id) = headers.get("x-agentd-execution-id") {
            run_id = Some(id.clone());
        }
        let body = response.text().await.map_err(|e| format!("delivery to {url}: {e}"))?;
        last = HttpResponse { status, headers, body };
    }
    Ok((last, run_id))
}

/// The run record of a finished run from the history.
fn read_run(store: &dyn agentd_store::Store, id: &str) -> Result<Observed, String> {
    let row = store.run(id).map_err(|e| e.to_string())?.ok_or_else(|| format!("run {id} is not in the history"))?;
    let record: RunRecord =
        serde_json::from_value(row.record.clone()).map_err(|e| format!("run {id}: unreadable record: {e}"))?;
    let detail = &record.detail;
    let reason = match record.status.as_str() {
        "failed" => detail.get("reason").and_then(Value::as_str).map(str::to_string),
        "errored" => detail.get("error").and_then(Value::as_str).map(str::to_string),
        _ => None,
    };
    let final_value = (record.status == "completed").then(|| {
        match detail.as_object() {
            Some(map) if map.len() == 2 && map.contains_key("http_response") => map.get("final_value").cloned(),
            _ => None,
        }
        .unwrap_or_else(|| detail.clone())
    });
    let status = record.status.clone();
    let last_node = record.last_node.clone();
    Ok(crate::trial::observed_from_record(&record, &status, last_node.as_deref(), reason, final_value))
}
