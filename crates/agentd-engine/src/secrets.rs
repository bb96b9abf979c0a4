//! Secrets (08 §3, §6): the registry that resolves `NAME` to a value at request time, the
//! scrubber that removes every known secret value from text before it leaves the process, and the
//! set of environment variables that back secrets (`read_env` must refuse them, 04 §4).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

#[cfg(test)]
use agentd_workflow::EnvSecret;
use agentd_workflow::{CommandSecret, FileSecret, NodeKind, OAuth2Secret, SecretConfig, SecretSource, Workflow};
use serde_json::Value;

/// Values shorter than this cannot be scrubbed reliably (08 §6).
pub const MIN_SCRUB_LEN: usize = 4;
/// The replacement text of a scrubbed value.
pub const REDACTED: &str = "<redacted>";
/// Nesting limit of `client_id_env` / `client_secret_env` references.
const MAX_DEPTH: u32 = 8;
/// Cap on a command secret's stdout.
const MAX_COMMAND_OUTPUT: usize = 65_536;

/// Every secret value seen so far (≥ 4 bytes), shared by all sinks. Cloning shares the set.
#[derive(Clone, Default)]
pub struct Scrubber {
    known: Arc<RwLock<Vec<String>>>,
}

impl Scrubber {
    /// Remembers a value to scrub (values shorter than [`MIN_SCRUB_LEN`] are ignored).
    pub fn add(&self, value: &str) {
        if value.len() < MIN_SCRUB_LEN {
            return;
        }
        let mut known = self.known.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !known.iter().any(|k| k == value) {
            known.push(value.to_string());
            // Longest first, so a value containing another is replaced whole.
            known.sort_by_key(|k| std::cmp::Reverse(k.len()));
        }
    }

    /// Whether any value is known (sinks skip work when not).
    pub fn is_empty(&self) -> bool {
        self.known.read().map_or(true, |k| k.is_empty())
    }

    /// `text` with every known value replaced by `<redacted>`.
    pub fn scrub<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let known = self.known.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out = Cow::Borrowed(text);
        for value in known.iter() {
            if out.contains(value.as_str()) {
                out = Cow::Owned(out.replace(value.as_str(), REDACTED));
            }
        }
        out
    }

    /// Scrubs every string (keys included) inside a JSON value, in place.
    pub fn scrub_value(&self, value: &mut Value) {
        if self.is_empty() {
            return;
        }
        match value {
            Value::String(s) => {
                if let Cow::Owned(clean) = self.scrub(s) {
                    *s = clean;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.scrub_value(v)),
            Value::Object(map) => {
                let dirty: Vec<String> =
                    map.keys().filter(|k| matches!(self.scrub(k), Cow::Owned(_))).cloned().collect();
                for key in dirty {
                    if let Some(v) = map.remove(&key) {
                        map.insert(self.scrub(&key).into_owned(), v);
                    }
                }
                map.values_mut().for_each(|v| self.scrub_value(v));
            }
            _ => {}
        }
    }
}

/// Scrubs a serialisable document (outcome, record) through its JSON form; a no-op while no
/// secret value is known.
pub fn scrub_doc<T: serde::Serialize + serde::de::DeserializeOwned>(scrubber: &Scrubber, doc: &mut T) {
    if scrubber.is_empty() {
        return;
    }
    let Ok(mut value) = serde_json::to_value(&*doc) else { return };
    scrubber.scrub_value(&mut value);
    if let Ok(clean) = serde_json::from_value(value) {
        *doc = clean;
    }
}

/// An audit sink that scrubs every field before forwarding (08 §4.3 rule 2).
pub struct ScrubbingAudit {
    /// Where events go.
    pub inner: Arc<dyn crate::audit::AuditSink>,
    /// Known secret values.
    pub scrubber: Scrubber,
}

impl crate::audit::AuditSink for ScrubbingAudit {
    fn emit(&self, level: crate::audit::Level, event: &str, mut fields: Value) {
        self.scrubber.scrub_value(&mut fields);
        self.inner.emit(level, event, fields);
    }

    fn is_operational_log(&self) -> bool {
        self.inner.is_operational_log()
    }
}

/// A secret resolution failure; `Display` is ``secret `NAME`: <reason>`` and never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("secret `{name}`: {reason}")]
pub struct SecretError {
    /// The secret name.
    pub name: String,
    /// Why.
    pub reason: String,
}

struct Cached {
    value: String,
    until: Option<Instant>,
}

/// The secrets registry (08 §3.2): `[[secrets]]` entries, else the environment variable NAME.
pub struct Registry {
    entries: BTreeMap<String, SecretSource>,
    cache: tokio::sync::Mutex<BTreeMap<String, Cached>>,
    scrubber: Scrubber,
}

impl Registry {
    /// A registry over the declared entries; duplicate names are an error (startup, exit 5).
    pub fn new(secrets: &[SecretConfig], scrubber: Scrubber) -> Result<Registry, SecretError> {
        let mut entries = BTreeMap::new();
        for secret in secrets {
            if entries.insert(secret.name.clone(), secret.source.clone()).is_some() {
                return Err(SecretError { name: secret.name.clone(), reason: "declared more than once".into() });
            }
        }
        Ok(Registry { entries, cache: tokio::sync::Mutex::new(BTreeMap::new()), scrubber })
    }

    /// The scrubber every resolved value is added to.
    pub fn scrubber(&self) -> &Scrubber {
        &self.scrubber
    }

    /// Resolves every declared entry once (08 §3.3 startup check).
    pub async fn check_all(&self) -> Result<(), SecretError> {
        for name in self.entries.keys() {
            self.resolve(name).await?;
        }
        Ok(())
    }

    /// Names of declared values shorter than [`MIN_SCRUB_LEN`] (startup warning).
    pub async fn short_values(&self) -> Vec<String> {
        let mut short = Vec::new();
        for name in self.entries.keys() {
            if self.resolve(name).await.is_ok_and(|v| v.len() < MIN_SCRUB_LEN) {
                short.push(name.clone());
            }
        }
        short
    }

    /// [`Registry::resolve`] for synchronous callers: `env` and `file` sources (and the
    /// environment fallback) are read directly; `command` and `oauth2` block the calling thread
    /// on the current multi-threaded runtime.
    pub fn resolve_blocking(&self, name: &str) -> Result<String, SecretError> {
        let direct = self.resolve_direct(name);
        let value = match direct {
            Some(result) => result?,
            None => match tokio::runtime::Handle::try_current() {
                Ok(handle) => tokio::task::block_in_place(|| handle.block_on(self.resolve_at(name, 0)))?,
                Err(_) => {
                    return Err(SecretError {
                        name: name.into(),
                        reason: "cannot be resolved outside the runtime".into(),
                    });
                }
            },
        };
        self.scrubber.add(&value);
        Ok(value)
    }

    /// The sources read without waiting — `env`, `file` and the environment fallback — or `None`
    /// for `command` and `oauth2`. The one place those sources are read.
    fn resolve_direct(&self, name: &str) -> Option<Result<String, SecretError>> {
        let fail = |reason: String| SecretError { name: name.to_string(), reason };
        let env = |var: &str, absent: String| match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(v),
            Ok(_) => Err(fail(format!("environment variable `{var}` is empty"))),
            Err(_) => Err(fail(absent)),
        };
        match self.entries.get(name) {
            None => {
                Some(env(name, format!("not declared in [[secrets]] and environment variable `{name}` is not set")))
            }
            Some(SecretSource::Env(e)) => Some(env(&e.var, format!("environment variable `{}` is not set", e.var))),
            Some(SecretSource::File(file)) => Some(read_file_secret(file).map_err(fail)),
            Some(SecretSource::Command(_) | SecretSource::OAuth2(_)) => None,
        }
    }

    /// `resolve(NAME)` (08 §3.2). The value is added to the scrubber.
    pub async fn resolve(&self, name: &str) -> Result<String, SecretError> {
        let value = self.resolve_at(name, 0).await?;
        self.scrubber.add(&value);
        Ok(value)
    }

    fn resolve_at<'a>(
        &'a self,
        name: &'a str,
        depth: u32,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, SecretError>> + Send + 'a>> {
        Box::pin(async move {
            let fail = |reason: String| SecretError { name: name.to_string(), reason };
            if depth > MAX_DEPTH {
                return Err(fail("secret reference cycle".into()));
            }
            if let Some(direct) = self.resolve_direct(name) {
                return direct;
            }
            match self.entries.get(name) {
                Some(SecretSource::Command(command)) => self.cached(name, || run_command(command)).await.map_err(fail),
                Some(SecretSource::OAuth2(oauth)) => {
                    let id = self.resolve_at(&oauth.client_id_env, depth + 1).await?;
                    let secret = self.resolve_at(&oauth.client_secret_env, depth + 1).await?;
                    self.scrubber.add(&id);
                    self.scrubber.add(&secret);
                    self.cached(name, || fetch_token(oauth, id, secret)).await.map_err(fail)
                }
                // `resolve_direct` answered for every other source.
                Some(SecretSource::Env(_) | SecretSource::File(_)) | None => {
                    Err(fail("secret source could not be read".into()))
                }
            }
        })
    }

    /// Single-flight cache: the mutex is held across the refresh.
    async fn cached<F, Fut>(&self, name: &str, fetch: F) -> Result<String, String>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(String, Option<Duration>), String>>,
    {
        let mut cache = self.cache.lock().await;
        if let Some(hit) = cache.get(name).filter(|c| c.until.is_none_or(|u| Instant::now() < u)) {
            return Ok(hit.value.clone());
        }
        let (value, ttl) = fetch().await?;
        cache.insert(name.to_string(), Cached { value: value.clone(), until: ttl.map(|t| Instant::now() + t) });
        Ok(value)
    }
}

fn read_file_secret(file: &FileSecret) -> Result<String, String> {
    let bytes = std::fs::read(&file.path).map_err(|e| format!("read {}: {e}", file.path))?;
    let text = String::from_utf8(bytes).map_err(|_| format!("{} is not valid UTF-8", file.path))?;
    let value = if file.trim.unwrap_or(true) { text.trim_end().to_string() } else { text };
    if value.is_empty() {
        return Err(format!("{} is empty", file.path));
    }
    Ok(value)
}

async fn run_command(command: &CommandSecret) -> Result<(String, Option<Duration>), String> {
    let Some((program, args)) = command.argv.split_first() else {
        return Err("argv is empty".into());
    };
    let timeout = command.timeout_secs.unwrap_or(10).max(1);
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let child = cmd.spawn().map_err(|e| format!("spawn {program}: {e}"))?;
    let output = match tokio::time::timeout(Duration::from_secs(timeout), child.wait_with_output()).await {
        Ok(result) => result.map_err(|e| format!("wait {program}: {e}"))?,
        Err(_) => return Err(format!("command timed out after {timeout}s")),
    };
    if !output.status.success() {
        return Err(match output.status.code() {
            Some(code) => format!("command exited with status {code}"),
            None => "command was killed by a signal".to_string(),
        });
    }
    if output.stdout.len() > MAX_COMMAND_OUTPUT {
        return Err(format!("command output exceeds {MAX_COMMAND_OUTPUT} bytes"));
    }
    let text = String::from_utf8(output.stdout).map_err(|_| "command output is not valid UTF-8".to_string())?;
    let value = text.trim().to_string();
    if value.is_empty() {
        return Err("command printed nothing".into());
    }
    Ok((value, command.ttl_secs.map(Duration::from_secs)))
}

async fn fetch_token(oauth: &OAuth2Secret, id: String, secret: String) -> Result<(String, Option<Duration>), String> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("token client: {e}"))?;
    let mut form: Vec<(String, String)> = vec![("grant_type".into(), "client_credentials".into())];
    let basic = oauth.auth_style.as_deref() == Some("basic");
    if !basic {
        form.push(("client_id".into(), id.clone()));
        form.push(("client_secret".into(), secret.clone()));
    }
    if !oauth.scopes.is_empty() {
        form.push(("scope".into(), oauth.scopes.join(" ")));
    }
    form.extend(oauth.extra_params.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut request = client.post(&oauth.token_url).header("accept", "application/json").form(&form);
    if basic {
        let encode = |s: &str| url_form_encode(s);
        let pair = format!("{}:{}", encode(&id), encode(&secret));
        request = request.header("authorization", format!("Basic {}", base64_encode(pair.as_bytes())));
    }
    let response = request.send().await.map_err(|e| format!("token endpoint: {}", without_url(&e)))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        let detail = body.get("error").and_then(Value::as_str).map(|e| format!(": {e}")).unwrap_or_default();
        return Err(format!("token endpoint returned {}{detail}", status.as_u16()));
    }
    let token = body.get("access_token").and_then(Value::as_str).filter(|t| !t.is_empty());
    let Some(token) = token else { return Err("token endpoint returned no access_token".into()) };
    let expires = body.get("expires_in").and_then(Value::as_u64).unwrap_or(300);
    let skew = oauth.skew_secs.unwrap_or(60);
    Ok((token.to_string(), Some(Duration::from_secs(expires.saturating_sub(skew).max(1)))))
}

fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), "<token_url>");
    }
    text
}

fn url_form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Resolves `{{secret:NAME}}` placeholders in a header value; any other text is literal.
pub async fn resolve_placeholders(registry: &Registry, template: &str) -> Result<String, SecretError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            out.push_str(&rest[open..]);
            return Ok(out);
        };
        match after[..close].trim().strip_prefix("secret:") {
            Some(name) => out.push_str(&registry.resolve(name.trim()).await?),
            None => out.push_str(&rest[open..open + 2 + close + 2]),
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Every environment variable name the workflow consumes as a secret.
pub fn secret_backed_env_names(workflow: &Workflow) -> BTreeSet<String> {
    let env = &workflow.environment;
    let mut names = BTreeSet::new();
    let add = |names: &mut BTreeSet<String>, name: &Option<String>| {
        if let Some(name) = name {
            names.insert(name.clone());
        }
    };
    for secret in &env.secrets {
        match &secret.source {
            SecretSource::Env(s) => add(&mut names, &Some(s.var.clone())),
            SecretSource::OAuth2(s) => {
                add(&mut names, &Some(s.client_id_env.clone()));
                add(&mut names, &Some(s.client_secret_env.clone()));
            }
            SecretSource::File(_) | SecretSource::Command(_) => {}
        }
    }
    for backend in env.intelligence.iter().flat_map(|i| i.backends.iter()) {
        let default_key = match backend.provider.as_str() {
            "anthropic" => Some("ANTHROPIC_API_KEY".to_string()),
            "openai" => Some("OPENAI_API_KEY".to_string()),
            "gemini" => Some("GEMINI_API_KEY".to_string()),
            _ => None,
        };
        add(&mut names, &backend.api_key_env.clone().or(default_key));
        add(&mut names, &backend.bearer_env);
        placeholders(backend.headers.values(), &mut names);
    }
    if let Some(auth) = &env.auth {
        auth.bearer.values().for_each(|b| add(&mut names, &b.tokens_env));
        auth.basic.values().for_each(|b| add(&mut names, &b.credentials_env));
        auth.hmac.values().for_each(|b| add(&mut names, &b.secret_env));
    }
    for server in &env.mcp_servers {
        names.extend(server.env.values().cloned());
        placeholders(server.headers.values(), &mut names);
    }
    if let Some(otel) = env.logging.as_ref().and_then(|l| l.otel.as_ref()) {
        placeholders(otel.headers.values(), &mut names);
    }
    if let Some(store) = &env.store {
        names.extend(store.url_secret.clone());
        names.extend(store.password_secret.clone());
    }
    for node in &workflow.nodes {
        if let NodeKind::HttpRequest(http) = &node.kind {
            placeholders(http.headers.values(), &mut names);
        }
    }
    names
}

/// Adds the NAMEs of `{{secret:NAME}}` placeholders.
fn placeholders<'a>(values: impl Iterator<Item = &'a String>, names: &mut BTreeSet<String>) {
    for value in values {
        let mut rest = value.as_str();
        while let Some(open) = rest.find("{{") {
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else { break };
            if let Some(name) = after[..close].trim().strip_prefix("secret:") {
                names.insert(name.trim().to_string());
            }
            rest = &after[close + 2..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, source: SecretSource) -> SecretConfig {
        SecretConfig { name: name.to_string(), source }
    }

    fn reason(registry: &Registry, name: &str) -> String {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        runtime.block_on(registry.resolve(name)).expect_err("must fail").to_string()
    }

    #[test]
    fn bad_file_and_command_sources_are_clear_errors_without_values() {
        let dir = tempfile::tempdir().expect("dir");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "  \n").expect("write");
        let binary = dir.path().join("binary");
        std::fs::write(&binary, [0xff, 0xfe, 0x00]).expect("write");
        let file =
            |path: &std::path::Path| SecretSource::File(FileSecret { path: path.display().to_string(), trim: None });
        let command = |argv: &[&str], timeout: Option<u64>| {
            SecretSource::Command(CommandSecret {
                argv: argv.iter().map(|s| s.to_string()).collect(),
                timeout_secs: timeout,
                ttl_secs: None,
            })
        };
        let registry = Registry::new(
            &[
                entry("missing", file(&dir.path().join("nope"))),
                entry("empty", file(&empty)),
                entry("binary", file(&binary)),
                entry("fails", command(&["/bin/sh", "-c", "echo leaked-value; exit 3"], None)),
                entry("silent", command(&["/bin/true"], None)),
                entry("slow", command(&["/bin/sleep", "30"], Some(1))),
                entry("nowhere", command(&["/no/such/program"], None)),
            ],
            Scrubber::default(),
        )
        .expect("registry");
        assert!(
            reason(&registry, "missing").starts_with("secret `missing`: read "),
            "{}",
            reason(&registry, "missing")
        );
        assert!(reason(&registry, "empty").ends_with(" is empty"));
        assert!(reason(&registry, "binary").ends_with(" is not valid UTF-8"));
        assert_eq!(reason(&registry, "fails"), "secret `fails`: command exited with status 3");
        assert_eq!(reason(&registry, "silent"), "secret `silent`: command printed nothing");
        let started = std::time::Instant::now();
        assert_eq!(reason(&registry, "slow"), "secret `slow`: command timed out after 1s");
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "bounded by the timeout");
        assert!(reason(&registry, "nowhere").starts_with("secret `nowhere`: spawn /no/such/program: "));
        assert!(
            reason(&registry, "UNSET_VARIABLE_FOR_TEST")
                .ends_with("environment variable `UNSET_VARIABLE_FOR_TEST` is not set")
        );
    }

    #[test]
    fn duplicate_names_and_reference_cycles_are_refused() {
        let env = || SecretSource::Env(EnvSecret { var: "X".into() });
        assert!(Registry::new(&[entry("a", env()), entry("a", env())], Scrubber::default()).is_err());
        let oauth = |id: &str| {
            SecretSource::OAuth2(OAuth2Secret {
                token_url: "https://127.0.0.1/token".into(),
                client_id_env: id.into(),
                client_secret_env: id.into(),
                scopes: vec![],
                extra_params: Default::default(),
                auth_style: None,
                skew_secs: None,
            })
        };
        let registry =
            Registry::new(&[entry("a", oauth("b")), entry("b", oauth("a"))], Scrubber::default()).expect("registry");
        assert_eq!(reason(&registry, "a"), "secret `b`: secret reference cycle", "named where the cycle closes");
    }

    #[test]
    fn the_scrubber_replaces_known_values_everywhere_in_a_document() {
        let scrubber = Scrubber::default();
        scrubber.add("abc");
        scrubber.add("sekrit-value");
        let mut doc = serde_json::json!({"a": "x sekrit-value y", "sekrit-value": ["abc", {"k": "sekrit-value"}]});
        scrubber.scrub_value(&mut doc);
        assert_eq!(doc, serde_json::json!({"a": "x <redacted> y", "<redacted>": ["abc", {"k": "<redacted>"}]}));
    }
}
