//! The backend registry (06 §1): name → client, built once at startup (and again on reload),
//! and the one entry point for model calls, [`Backends::complete`].

use std::collections::BTreeMap;
use std::sync::Arc;

use agentd_workflow::model::BackendConfig;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::{self, CliIntel, Definition, Settings, StartupError, Target};
use crate::error::Error;
use crate::http;
use crate::jsonrpc::{HttpRpc, Ids, UnixRpc};
use crate::providers::{Answer, ProviderClient};
use crate::retry::{CallObserver, Failure, NoObserver, RandomSource, RetryPlan, ThreadRandom};
use crate::scripted::ScriptedModel;
use crate::secrets::SecretSource;
use crate::types::{Completion, CompletionRequest};

/// How a backend is reached.
enum Transport {
    Provider(ProviderClient),
    Unix(UnixRpc),
    Http(HttpRpc),
    Scripted(Arc<ScriptedModel>),
}

/// One registered backend.
struct Backend {
    transport: Transport,
    settings: Settings,
    /// Configured model (reported when the answer names none).
    model: Option<String>,
}

impl Backend {
    fn build(definition: Definition) -> Result<Backend, String> {
        let settings = definition.settings;
        let (transport, model) = match definition.target {
            Target::Provider { provider, model, endpoint, api_key_env, headers } => {
                let client = ProviderClient::new(provider, model.clone(), endpoint, api_key_env, headers, &settings)?;
                (Transport::Provider(client), Some(model))
            }
            Target::Unix { path, model } => {
                let rpc = UnixRpc {
                    path,
                    model: model.clone(),
                    max_tokens: settings.max_tokens,
                    connect_timeout: settings.connect_timeout,
                    ids: Ids::new(),
                };
                (Transport::Unix(rpc), model)
            }
            Target::Http { url, model, bearer, headers } => {
                let client = http::client(&settings)?;
                let rpc = HttpRpc {
                    url,
                    model: model.clone(),
                    bearer,
                    headers,
                    max_tokens: settings.max_tokens,
                    client,
                    ids: Ids::new(),
                };
                (Transport::Http(rpc), model)
            }
            Target::Scripted { path, model } => {
                let scripted = ScriptedModel::load(&path).map_err(|e| e.to_string())?;
                (Transport::Scripted(Arc::new(scripted)), model)
            }
        };
        Ok(Backend { transport, settings, model })
    }

    /// Prefix of transport error texts.
    fn label(&self) -> &'static str {
        match &self.transport {
            Transport::Provider(client) => client.provider.as_str(),
            Transport::Unix(_) => "unix",
            Transport::Http(_) => "http",
            Transport::Scripted(_) => "scripted",
        }
    }

    async fn attempt(&self, request: &CompletionRequest, secrets: &dyn SecretSource) -> Result<Answer, Failure> {
        match &self.transport {
            Transport::Provider(client) => client.attempt(request, secrets).await,
            Transport::Unix(rpc) => rpc.attempt(request).await,
            Transport::Http(rpc) => rpc.attempt(request, secrets).await,
            Transport::Scripted(model) => model.attempt(request).await,
        }
    }
}

/// Every backend of a runtime, by name.
pub struct Backends {
    map: BTreeMap<String, Backend>,
    secrets: Arc<dyn SecretSource>,
    random: Arc<dyn RandomSource>,
    insecure: Vec<String>,
}

impl std::fmt::Debug for Backends {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backends").field("names", &self.names()).finish_non_exhaustive()
    }
}

impl Backends {
    /// A registry with no backends (`llm_infer` and `agent_loop` are then unavailable).
    pub fn empty(secrets: Arc<dyn SecretSource>) -> Backends {
        Backends { map: BTreeMap::new(), secrets, random: Arc::new(ThreadRandom), insecure: Vec::new() }
    }

    /// Builds the registry from `[[intelligence.backends]]` and the CLI transport flags.
    ///
    /// Fails on the first bad definition, unresolvable secret, bad URL, or unreadable script
    /// or bearer file. A transport that cannot be reached is *not* an error: it is contacted
    /// only when a node runs.
    pub fn build(
        configs: &[BackendConfig],
        cli: &CliIntel,
        secrets: Arc<dyn SecretSource>,
    ) -> Result<Backends, StartupError> {
        let mut definitions = config::definitions(configs, secrets.as_ref())?;
        definitions.extend(cli.definition()?);
        let mut backends = Backends::empty(secrets);
        for definition in definitions {
            let name = definition.name.clone();
            if definition.is_insecure() {
                tracing::warn!(backend = %name, "intelligence backend sends a secret over plain http:// to a non-loopback host");
                backends.insecure.push(name.clone());
            }
            let backend = Backend::build(definition).map_err(|reason| subject_error(&name, cli, reason))?;
            backends.map.insert(name, backend);
        }
        Ok(backends)
    }

    /// A registry where `default` and every name in `configs` answer from `model` (one shared
    /// turn queue), keeping each backend's timeout and retry settings: the conformance harness's
    /// stand-in for real providers (10 §3.1). Definitions are validated but no secret is probed.
    pub fn scripted_stand_in(configs: &[BackendConfig], model: Arc<ScriptedModel>) -> Result<Backends, StartupError> {
        struct NoSecrets;
        impl SecretSource for NoSecrets {
            fn get(&self, _name: &str) -> Option<String> {
                Some(String::from("unused"))
            }
        }
        let definitions = config::definitions(configs, &NoSecrets)?;
        let mut backends = Backends::empty(Arc::new(NoSecrets));
        for definition in definitions {
            let backend =
                Backend { transport: Transport::Scripted(model.clone()), settings: definition.settings, model: None };
            backends.map.insert(definition.name, backend);
        }
        backends.insert_scripted("default", model);
        Ok(backends)
    }

    /// Registers (or replaces) `name` as a scripted backend with default settings, or swaps the
    /// transport of an existing backend for `model` keeping its settings.
    pub fn insert_scripted(&mut self, name: &str, model: Arc<ScriptedModel>) {
        match self.map.get_mut(name) {
            Some(existing) => existing.transport = Transport::Scripted(model),
            None => {
                let backend =
                    Backend { transport: Transport::Scripted(model), settings: Settings::default(), model: None };
                self.map.insert(name.to_string(), backend);
            }
        }
    }

    /// Replaces the jitter source of computed backoffs (10 §3.3 seeded trials).
    pub fn set_random(&mut self, random: Arc<dyn RandomSource>) {
        self.random = random;
    }

    /// Registered names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.map.keys().map(String::as_str).collect()
    }

    /// Whether no backend is registered.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Whether `name` is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }

    /// The backend's `max_tokens`, the default output cap of requests without their own.
    pub fn max_tokens(&self, name: &str) -> Option<u32> {
        self.map.get(name).and_then(|b| b.settings.max_tokens)
    }

    /// Backends that send a secret over plain `http://` to a non-loopback host; the runtime
    /// emits audit `intel.insecure_transport {backend}` once for each at startup (06 §3.1).
    pub fn insecure_transports(&self) -> &[String] {
        &self.insecure
    }

    /// The error for an unknown backend name (06 §1).
    pub fn unknown(&self, name: &str) -> Error {
        let known = if self.map.is_empty() { "<none>".to_string() } else { self.names().join(", ") };
        Error::UnknownBackend { name: name.to_string(), known }
    }

    /// One logical model call: attempts, transport retries and timeouts, bounded by `deadline`
    /// and `cancel`. Nothing is billed unless this returns `Ok`.
    pub async fn complete(
        &self,
        backend: &str,
        request: &CompletionRequest,
        deadline: Instant,
        cancel: &CancellationToken,
    ) -> Result<Completion, Error> {
        self.complete_observed(backend, request, deadline, cancel, &NoObserver).await
    }

    /// [`Backends::complete`] reporting each retry to `observer` (audit `intel.retry`, metric
    /// `agentd_llm_retries_total`).
    pub async fn complete_observed(
        &self,
        name: &str,
        request: &CompletionRequest,
        deadline: Instant,
        cancel: &CancellationToken,
        observer: &dyn CallObserver,
    ) -> Result<Completion, Error> {
        let backend = self.map.get(name).ok_or_else(|| self.unknown(name))?;
        let plan = RetryPlan {
            backend: name,
            label: backend.label(),
            timeout: backend.settings.timeout,
            max_retries: backend.settings.max_retries,
            deadline,
            cancel,
            observer,
            random: self.random.as_ref(),
        };
        let started = Instant::now();
        let outcome = plan.run(|| backend.attempt(request, self.secrets.as_ref())).await;
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let answer = match outcome {
            Ok(answer) => answer,
            Err(error) => {
                tracing::debug!(backend = name, elapsed_ms, error = %error, "intel call failed");
                return Err(error);
            }
        };
        tracing::debug!(
            backend = name,
            elapsed_ms,
            prompt_tokens = answer.usage.prompt_tokens,
            completion_tokens = answer.usage.completion_tokens,
            "intel call"
        );
        let model = answer.model.or_else(|| backend.model.clone()).unwrap_or_else(|| default_model(backend, request));
        Ok(Completion { text: answer.text, usage: answer.usage, model, backend: name.to_string() })
    }
}

fn default_model(backend: &Backend, request: &CompletionRequest) -> String {
    match backend.transport {
        Transport::Scripted(_) => "scripted".into(),
        _ => request.model_class.as_str().into(),
    }
}

/// The startup error for a backend that failed to build: TOML backends by their table, the
/// CLI `default` by its flag.
fn subject_error(name: &str, cli: &CliIntel, reason: String) -> StartupError {
    let subject = match (name, &cli.unix) {
        ("default", Some(_)) => "--intel-unix".to_string(),
        ("default", None) => "--intel-http".to_string(),
        _ => format!("intelligence.backends.{name}"),
    };
    StartupError { subject, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    /// The engine shares one registry between runs and awaits calls inside spawned tasks.
    #[test]
    fn registry_and_calls_are_thread_safe() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Backends>();
        let backends = Backends::empty(Arc::new(crate::secrets::StaticSecrets::default()));
        let cancel = CancellationToken::new();
        let request = CompletionRequest::prompt("x");
        let call = backends.complete("x", &request, Instant::now(), &cancel);
        assert_send(&call);
        let infer_request = crate::infer::InferRequest {
            node_id: "n",
            backend: "x",
            prompt: String::new(),
            max_tokens: None,
            temperature: None,
            contract: None,
            output_repairs: 0,
        };
        let execution = crate::infer::infer(&backends, &infer_request, &crate::infer::NoHooks, Instant::now(), &cancel);
        assert_send(&execution);
    }
}
