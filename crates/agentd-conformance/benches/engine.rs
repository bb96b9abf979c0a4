//! Criterion benchmarks of 10-conformance.md §9. Every bench builds the runtime through the same
//! public API the harness uses (no stub handlers); names are stable for saved baselines.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agentd_engine::audit::CollectingAudit;
use agentd_engine::{Cancel, Engine, EngineOptions, RunRequest};
use agentd_workflow::{NoFiles, SourceFile, ValidateOptions, Workflow};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;

/// A chain of `count` nodes of `kind_toml` ending in `terminate`.
fn chain(count: usize, node: impl Fn(usize) -> String) -> String {
    let mut text =
        String::from("name = \"bench\"\n[[start_nodes]]\nname = \"main\"\nsource = \"manual\"\nentry_node = \"n0\"\n");
    for i in 0..count {
        text.push_str(&format!("[[nodes]]\nid = \"n{i}\"\n{}\n", node(i)));
    }
    text.push_str(&format!("[[nodes]]\nid = \"n{count}\"\ntype = \"terminate\"\n"));
    for i in 0..count {
        text.push_str(&format!("[[edges]]\nfrom = \"n{i}\"\nto = \"n{}\"\n", i + 1));
    }
    text
}

fn merge_chain(count: usize) -> String {
    chain(count, |_| "type = \"merge\"".to_string())
}

fn template_chain(count: usize) -> String {
    chain(count, |_| "type = \"template_render\"\ninput_from = \"trigger\"\ntemplate = \"hello {{name}}\"".to_string())
}

fn load(text: &str) -> Workflow {
    let source = SourceFile::new("bench.toml", None, text.to_string());
    let options = ValidateOptions { mcp_stdio: false, cwd: PathBuf::from("/"), files: &NoFiles };
    match agentd_workflow::load(&source, &options) {
        Ok(workflow) => workflow,
        Err(e) => panic!("bench workflow invalid: {e:?}"),
    }
}

fn engine(workflow: Workflow) -> Engine {
    let options = EngineOptions {
        cwd: PathBuf::from("/"),
        audit: Arc::new(CollectingAudit::default()),
        durable: Default::default(),
    };
    match Engine::build(Arc::new(workflow), options) {
        Ok(engine) => engine,
        Err(e) => panic!("engine: {e}"),
    }
}

fn request() -> RunRequest {
    RunRequest {
        start: "main".into(),
        input: json!({"name": "bench"}),
        trigger_kind: "manual".into(),
        timeout: Duration::from_secs(60),
        dry_run: false,
        cancel: Cancel::default(),
        resume: None,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => panic!("runtime: {e}"),
    }
}

fn engine_throughput(c: &mut Criterion) {
    let rt = runtime();
    let engine = engine(load(&merge_chain(19)));
    c.bench_function("engine_throughput_20_nodes", |b| {
        b.iter(|| {
            let result = rt.block_on(engine.run(request()));
            assert_eq!(result.outcome.status(), "completed");
        });
    });
}

fn cold_start(c: &mut Criterion) {
    let rt = runtime();
    let workflow = load(&merge_chain(0));
    c.bench_function("cold_start_to_first_node", |b| {
        b.iter(|| {
            let engine = engine(workflow.clone());
            let backends = agentd_intel::Backends::empty(Arc::new(agentd_intel::StaticSecrets::default()));
            let engine = engine.with_intel(Arc::new(backends));
            let result = rt.block_on(engine.run(request()));
            assert_eq!(result.outcome.status(), "completed");
        });
    });
}

fn chain_template(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("engine_chain_template");
    group.sample_size(20);
    for count in [100usize, 1000, 5000] {
        let engine = engine(load(&template_chain(count)));
        group.throughput(Throughput::Elements(count as u64));
        group.bench_with_input(BenchmarkId::from_parameter(count), &count, |b, _| {
            b.iter(|| {
                let result = rt.block_on(engine.run(request()));
                assert_eq!(result.outcome.status(), "completed");
            });
        });
    }
    group.finish();
}

fn validate(c: &mut Criterion) {
    let text = template_chain(1000);
    let mut group = c.benchmark_group("validate");
    group.sample_size(20);
    group.bench_function("1000_nodes", |b| b.iter(|| load(&text)));
    group.finish();
}

fn conformance_trial(c: &mut Criterion) {
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => panic!("runtime: {e}"),
    };
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance/suite/intel/llm-route.toml");
    let scenario = match agentd_conformance::scenario::load(&root) {
        Ok(s) => s,
        Err(e) => panic!("scenario: {}", e.message),
    };
    let options = agentd_conformance::trial::TrialOptions { exe: PathBuf::from("unused"), keep_dirs: false };
    let mut group = c.benchmark_group("conformance_trial");
    group.bench_function("llm_route", |b| {
        b.iter(|| {
            let result = rt.block_on(agentd_conformance::trial::run(&scenario, 0, 1, &options));
            assert!(result.passed, "{:?}", result.failures);
        });
    });
    group.finish();
}

criterion_group!(benches, engine_throughput, cold_start, chain_template, validate, conformance_trial);
criterion_main!(benches);
