//! Turns `[[intelligence.backends]]` entries and the CLI transport flags into validated backend
//! definitions (06 §2, §3.1, §4.3). No IO happens here except reading the bearer file named by
//! `--intel-http-bearer-file`; secrets are only *probed*, never kept.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use agentd_workflow::model::BackendConfig;
use url::Url;

use crate::secrets::{HeaderTemplate, SecretSource};

/// A backend definition could not be built: `<subject>: <reason>` (the binary prints it after
/// `agentd: ` and exits 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{subject}: {reason}")]
pub struct StartupError {
    /// `intelligence.backends.<name>`, or the CLI flag at fault.
    pub subject: String,
    /// What is wrong, naming the field.
    pub reason: String,
}

impl StartupError {
    fn backend(name: &str, reason: impl Into<String>) -> StartupError {
        StartupError { subject: format!("intelligence.backends.{name}"), reason: reason.into() }
    }
}

/// The four HTTP providers of 06 §3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    /// Anthropic Messages API.
    Anthropic,
    /// OpenAI Chat Completions.
    OpenAi,
    /// Google Gemini `generateContent`.
    Gemini,
    /// Any server speaking OpenAI Chat Completions (vLLM, llama.cpp, gateways).
    OpenAiCompatible,
}

impl Provider {
    /// The `provider` spelling, also used as the prefix of error texts.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Anthropic => "anthropic",
            Provider::OpenAi => "openai",
            Provider::Gemini => "gemini",
            Provider::OpenAiCompatible => "openai-compatible",
        }
    }

    /// Header that carries the key; users may not override it through `headers`.
    pub(crate) fn auth_header(self) -> &'static str {
        match self {
            Provider::Anthropic => "x-api-key",
            Provider::Gemini => "x-goog-api-key",
            Provider::OpenAi | Provider::OpenAiCompatible => "authorization",
        }
    }

    fn default_key_env(self) -> Option<&'static str> {
        match self {
            Provider::Anthropic => Some("ANTHROPIC_API_KEY"),
            Provider::OpenAi => Some("OPENAI_API_KEY"),
            Provider::Gemini => Some("GEMINI_API_KEY"),
            Provider::OpenAiCompatible => None,
        }
    }

    fn default_base(self) -> Option<&'static str> {
        match self {
            Provider::Anthropic => Some("https://api.anthropic.com"),
            Provider::OpenAi => Some("https://api.openai.com"),
            Provider::Gemini => Some("https://generativelanguage.googleapis.com"),
            Provider::OpenAiCompatible => None,
        }
    }
}

/// Settings every transport shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Settings {
    /// Default output cap (`max_tokens`).
    pub max_tokens: Option<u32>,
    /// Per-request timeout (`timeout_secs`); the run deadline always bounds it too.
    pub timeout: Option<Duration>,
    /// TCP + TLS (or Unix socket) connect timeout.
    pub connect_timeout: Duration,
    /// Transport retries after the first attempt.
    pub max_retries: u32,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings { max_tokens: None, timeout: None, connect_timeout: Duration::from_secs(10), max_retries: 2 }
    }
}

/// A validated extra header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExtraHeader {
    pub name: String,
    pub value: HeaderTemplate,
}

/// What a backend talks to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// One of the HTTP providers.
    Provider {
        provider: Provider,
        model: String,
        endpoint: Url,
        api_key_env: Option<String>,
        headers: Vec<ExtraHeader>,
    },
    /// Framed JSON-RPC over a Unix socket.
    Unix { path: PathBuf, model: Option<String> },
    /// JSON-RPC over HTTP.
    Http { url: Url, model: Option<String>, bearer: Bearer, headers: Vec<ExtraHeader> },
    /// Canned answers from a script file (extension).
    Scripted { path: PathBuf, model: Option<String> },
}

/// Where an HTTP JSON-RPC bearer token comes from.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Bearer {
    /// No token.
    None,
    /// Read at startup / reload (`--intel-http-bearer-file`, `AGENTD_INTEL_HTTP_BEARER`).
    Fixed(String),
    /// A secret name resolved per request (`bearer_env`).
    Secret(String),
}

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bearer::None => f.write_str("None"),
            Bearer::Fixed(_) => f.write_str("Fixed(***)"),
            Bearer::Secret(name) => write!(f, "Secret({name})"),
        }
    }
}

/// A validated backend definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Definition {
    pub name: String,
    pub target: Target,
    pub settings: Settings,
}

impl Definition {
    /// Whether a secret travels over plain `http://` to a host that is not loopback (06 §3.1.4).
    pub(crate) fn is_insecure(&self) -> bool {
        let (url, sends_secret) = match &self.target {
            Target::Provider { endpoint, api_key_env, .. } => (endpoint, api_key_env.is_some()),
            Target::Http { url, bearer, .. } => (url, *bearer != Bearer::None),
            Target::Unix { .. } | Target::Scripted { .. } => return false,
        };
        sends_secret && url.scheme() == "http" && !is_loopback(url)
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The CLI transport flags (01 §2.4). `--intel-unix` wins over `--intel-http`.
#[derive(Debug, Clone, Default)]
pub struct CliIntel {
    /// `--intel-unix PATH`.
    pub unix: Option<PathBuf>,
    /// `--intel-http URL`.
    pub http: Option<String>,
    /// `--intel-http-bearer-file PATH` (trimmed content is the token).
    pub http_bearer_file: Option<PathBuf>,
    /// Value of `AGENTD_INTEL_HTTP_BEARER`, used when no bearer file is given. The caller reads
    /// the environment so this crate never does so behind its back.
    pub http_bearer_env: Option<String>,
}

impl CliIntel {
    /// The `default` backend these flags register, if any.
    pub(crate) fn definition(&self) -> Result<Option<Definition>, StartupError> {
        let settings = Settings::default();
        if let Some(path) = &self.unix {
            let target = Target::Unix { path: path.clone(), model: None };
            return Ok(Some(Definition { name: "default".into(), target, settings }));
        }
        let Some(raw) = &self.http else { return Ok(None) };
        let flag_error = |reason: String| StartupError { subject: "--intel-http".into(), reason };
        let url = parse_rpc_url(raw).map_err(flag_error)?;
        let bearer = self.bearer()?.map_or(Bearer::None, Bearer::Fixed);
        let target = Target::Http { url, model: None, bearer, headers: Vec::new() };
        Ok(Some(Definition { name: "default".into(), target, settings }))
    }

    fn bearer(&self) -> Result<Option<String>, StartupError> {
        if let Some(path) = &self.http_bearer_file {
            let text = std::fs::read_to_string(path).map_err(|e| StartupError {
                subject: "--intel-http-bearer-file".into(),
                reason: format!("{}: {e}", path.display()),
            })?;
            let token = text.trim().to_string();
            return Ok(Some(token).filter(|t| !t.is_empty()));
        }
        Ok(self.http_bearer_env.as_ref().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()))
    }
}

/// Validates every TOML backend (names unique, not `default`, fields meaningful for the
/// provider, URLs well formed, secrets resolvable now).
pub(crate) fn definitions(
    configs: &[BackendConfig],
    secrets: &dyn SecretSource,
) -> Result<Vec<Definition>, StartupError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(configs.len());
    for config in configs {
        let name = config.name.get_ref().as_str();
        if name.trim().is_empty() {
            return Err(StartupError::backend(name, "`name` must not be blank"));
        }
        if name == "default" {
            return Err(StartupError::backend(
                name,
                "the name `default` is reserved for the CLI transport (--intel-unix / --intel-http)",
            ));
        }
        if !seen.insert(name) {
            return Err(StartupError::backend(name, "duplicate backend name"));
        }
        let definition = definition(config).map_err(|reason| StartupError::backend(name, reason))?;
        probe_secrets(&definition, secrets).map_err(|reason| StartupError::backend(name, reason))?;
        out.push(definition);
    }
    Ok(out)
}

/// Fields each provider accepts besides `name` and `provider`.
fn allowed_fields(provider: &str) -> Option<&'static [&'static str]> {
    const HTTP_PROVIDER: &[&str] = &[
        "model",
        "api_key_env",
        "base_url",
        "max_tokens",
        "timeout_secs",
        "connect_timeout_secs",
        "max_retries",
        "headers",
    ];
    Some(match provider {
        "anthropic" | "openai" | "gemini" | "openai-compatible" => HTTP_PROVIDER,
        "unix" => &["model", "path", "max_tokens", "timeout_secs", "connect_timeout_secs", "max_retries"],
        "http" => &[
            "model",
            "url",
            "bearer_env",
            "max_tokens",
            "timeout_secs",
            "connect_timeout_secs",
            "max_retries",
            "headers",
        ],
        "scripted" => &["model", "path", "max_tokens", "timeout_secs", "max_retries"],
        _ => return None,
    })
}

/// Names of the optional fields that are set.
fn set_fields(c: &BackendConfig) -> Vec<&'static str> {
    let flags = [
        ("model", c.model.is_some()),
        ("api_key_env", c.api_key_env.is_some()),
        ("base_url", c.base_url.is_some()),
        ("max_tokens", c.max_tokens.is_some()),
        ("path", c.path.is_some()),
        ("url", c.url.is_some()),
        ("bearer_env", c.bearer_env.is_some()),
        ("timeout_secs", c.timeout_secs.is_some()),
        ("connect_timeout_secs", c.connect_timeout_secs.is_some()),
        ("max_retries", c.max_retries.is_some()),
        ("headers", !c.headers.is_empty()),
    ];
    flags.into_iter().filter(|(_, set)| *set).map(|(name, _)| name).collect()
}

fn definition(c: &BackendConfig) -> Result<Definition, String> {
    let provider = c.provider.as_str();
    let allowed = allowed_fields(provider).ok_or_else(|| {
        format!("unknown provider `{provider}`; expected one of anthropic, openai, gemini, openai-compatible, unix, http, scripted")
    })?;
    if let Some(field) = set_fields(c).into_iter().find(|f| !allowed.contains(f)) {
        return Err(format!("field `{field}` is not meaningful for provider `{provider}`"));
    }
    let settings = settings(c)?;
    let target = match provider {
        "anthropic" => provider_target(c, Provider::Anthropic)?,
        "openai" => provider_target(c, Provider::OpenAi)?,
        "gemini" => provider_target(c, Provider::Gemini)?,
        "openai-compatible" => provider_target(c, Provider::OpenAiCompatible)?,
        "unix" => Target::Unix { path: required_path(c)?, model: c.model.clone() },
        "http" => http_target(c)?,
        _ => Target::Scripted { path: required_path(c)?, model: c.model.clone() },
    };
    Ok(Definition { name: c.name.get_ref().clone(), target, settings })
}

fn settings(c: &BackendConfig) -> Result<Settings, String> {
    let at_least_one = |field: &str, value: Option<u64>| match value {
        Some(0) => Err(format!("`{field}` must be at least 1")),
        other => Ok(other),
    };
    at_least_one("max_tokens", c.max_tokens.map(u64::from))?;
    let timeout = at_least_one("timeout_secs", c.timeout_secs)?.map(Duration::from_secs);
    let connect = at_least_one("connect_timeout_secs", c.connect_timeout_secs)?.map(Duration::from_secs);
    let defaults = Settings::default();
    Ok(Settings {
        max_tokens: c.max_tokens,
        timeout,
        connect_timeout: connect.unwrap_or(defaults.connect_timeout),
        max_retries: c.max_retries.unwrap_or(defaults.max_retries),
    })
}

fn required_path(c: &BackendConfig) -> Result<PathBuf, String> {
    match c.path.as_deref() {
        Some(p) if !p.trim().is_empty() => Ok(PathBuf::from(p)),
        _ => Err(format!("`path` is required for provider `{}`", c.provider)),
    }
}

fn provider_target(c: &BackendConfig, provider: Provider) -> Result<Target, String> {
    let model = c.model.clone().filter(|m| !m.trim().is_empty()).ok_or("`model` is required")?;
    let base = match (&c.base_url, provider.default_base()) {
        (Some(base), _) => base.as_str(),
        (None, Some(default)) => default,
        (None, None) => return Err(format!("`base_url` is required for provider `{}`", provider.as_str())),
    };
    let endpoint = endpoint(provider, base, &model).map_err(|reason| format!("`base_url` {reason}"))?;
    let api_key_env = c.api_key_env.clone().or_else(|| provider.default_key_env().map(String::from));
    let headers = extra_headers(c, provider.auth_header())?;
    Ok(Target::Provider { provider, model, endpoint, api_key_env, headers })
}

fn http_target(c: &BackendConfig) -> Result<Target, String> {
    let raw = c.url.as_deref().ok_or("`url` is required for provider `http`")?;
    let url = parse_rpc_url(raw).map_err(|reason| format!("`url` {reason}"))?;
    let bearer = c.bearer_env.clone().map_or(Bearer::None, Bearer::Secret);
    let headers = extra_headers(c, "authorization")?;
    Ok(Target::Http { url, model: c.model.clone(), bearer, headers })
}

fn extra_headers(c: &BackendConfig, auth_header: &str) -> Result<Vec<ExtraHeader>, String> {
    let mut out = Vec::new();
    for (name, value) in &c.headers {
        let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !valid {
            return Err(format!("header name `{name}` must match [A-Za-z0-9-]+"));
        }
        let lower = name.to_ascii_lowercase();
        if ["host", "content-length", "content-type", auth_header].contains(&lower.as_str()) {
            return Err(format!("header `{name}` cannot be set through `headers`"));
        }
        let value = HeaderTemplate::parse(value).map_err(|reason| format!("header `{name}`: {reason}"))?;
        out.push(ExtraHeader { name: lower, value });
    }
    Ok(out)
}

/// Probes every secret the backend will need, so a missing key stops startup (exit 2) instead of
/// the first run. The values are dropped at once.
fn probe_secrets(definition: &Definition, secrets: &dyn SecretSource) -> Result<(), String> {
    let (names, headers): (Vec<&str>, &[ExtraHeader]) = match &definition.target {
        Target::Provider { api_key_env, headers, .. } => (api_key_env.iter().map(String::as_str).collect(), headers),
        Target::Http { bearer: Bearer::Secret(name), headers, .. } => (vec![name.as_str()], headers),
        Target::Http { headers, .. } => (Vec::new(), headers),
        Target::Unix { .. } | Target::Scripted { .. } => return Ok(()),
    };
    let header_names = headers.iter().flat_map(|h| h.value.secret_names());
    for name in names.into_iter().chain(header_names) {
        if secrets.get(name).is_none() {
            return Err(format!("secret `{name}` could not be resolved (set it in [[secrets]] or the environment)"));
        }
    }
    Ok(())
}

/// Parses and checks a provider `base_url` (06 §3.1 rule 1).
fn parse_base(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("`{raw}` is not an absolute URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{raw}` must use http or https"));
    }
    if url.host().is_none() {
        return Err(format!("`{raw}` has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("`{raw}` must not contain user info"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("`{raw}` must not contain a query or fragment"));
    }
    Ok(url)
}

/// The request URL of a provider (06 §3.1 rules 2 and 3).
pub(crate) fn endpoint(provider: Provider, base: &str, model: &str) -> Result<Url, String> {
    let url = parse_base(base)?;
    let trimmed = url.as_str().trim_end_matches('/');
    let path = url.path().trim_end_matches('/');
    let full = match provider {
        Provider::Anthropic if path.ends_with("/v1") => format!("{trimmed}/messages"),
        Provider::Anthropic => format!("{trimmed}/v1/messages"),
        Provider::OpenAi | Provider::OpenAiCompatible if path.ends_with("/v1") => format!("{trimmed}/chat/completions"),
        Provider::OpenAi | Provider::OpenAiCompatible => format!("{trimmed}/v1/chat/completions"),
        Provider::Gemini => {
            let version = if path.ends_with("/v1beta") || path.ends_with("/v1") { "" } else { "/v1beta" };
            format!("{trimmed}{version}/models/{}:generateContent", gemini_model_segment(model))
        }
    };
    Url::parse(&full).map_err(|e| format!("gives an invalid endpoint `{full}`: {e}"))
}

/// The model as one percent-encoded path segment, a leading `models/` removed.
fn gemini_model_segment(model: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
    let bare = model.strip_prefix("models/").unwrap_or(model);
    percent_encoding::utf8_percent_encode(bare, SEGMENT).to_string()
}

/// Parses a JSON-RPC endpoint (06 §4.3): http or https, a host, default path `/`, query kept.
fn parse_rpc_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| format!("`{raw}` is not a valid URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{raw}` must use http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{raw}` has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("`{raw}` must not contain user info (use a bearer token)"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint_of(provider: Provider, base: &str) -> String {
        endpoint(provider, base, "gemini-2.0-flash").unwrap().to_string()
    }

    #[test]
    fn base_url_table_of_06_3_1() {
        let compat = Provider::OpenAiCompatible;
        for base in ["http://127.0.0.1:8000", "http://127.0.0.1:8000/", "http://127.0.0.1:8000/v1"] {
            assert_eq!(endpoint_of(compat, base), "http://127.0.0.1:8000/v1/chat/completions");
        }
        assert_eq!(
            endpoint_of(compat, "https://gw.example.com/openai/v1/"),
            "https://gw.example.com/openai/v1/chat/completions"
        );
        assert_eq!(
            endpoint_of(compat, "https://gw.example.com/openai"),
            "https://gw.example.com/openai/v1/chat/completions"
        );
        assert_eq!(
            endpoint_of(Provider::Gemini, "https://generativelanguage.googleapis.com"),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent"
        );
        assert_eq!(
            endpoint_of(Provider::Gemini, "http://127.0.0.1:9000/v1beta"),
            "http://127.0.0.1:9000/v1beta/models/gemini-2.0-flash:generateContent"
        );
        assert_eq!(
            endpoint_of(Provider::Anthropic, "https://api.anthropic.com/v1/"),
            "https://api.anthropic.com/v1/messages"
        );
    }

    #[test]
    fn gemini_model_is_one_encoded_segment() {
        let url = endpoint(Provider::Gemini, "http://h", "models/a b/c").unwrap();
        assert_eq!(url.as_str(), "http://h/v1beta/models/a%20b%2Fc:generateContent");
    }

    #[test]
    fn bad_base_urls_are_refused() {
        for bad in ["ftp://h", "http://u:p@h", "http://h/?q=1", "http://h/#f", "relative/path", "http://"] {
            assert!(endpoint(Provider::OpenAi, bad, "m").is_err(), "{bad}");
        }
    }

    #[test]
    fn rpc_urls() {
        assert_eq!(parse_rpc_url("http://127.0.0.1:9/rpc?x=1").unwrap().as_str(), "http://127.0.0.1:9/rpc?x=1");
        assert_eq!(parse_rpc_url("http://127.0.0.1:9").unwrap().path(), "/");
        assert!(parse_rpc_url("unix:/x").is_err());
        assert!(parse_rpc_url("http://a:b@h/").is_err());
    }
}
