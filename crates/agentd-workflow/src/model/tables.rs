//! Environment tables of a workflow document owned by later subsystems (serve mode, auth,
//! logging, signing, budgets, MCP, intelligence, secrets, control plane, fleet store).
//!
//! They are parsed strictly now (unknown keys are load errors) so that every agentd 1.3 file
//! loads; each subsystem enforces its own startup rules when it lands. Defaults named in the
//! field docs are applied by the consuming subsystem, not here.

use std::collections::BTreeMap;

use serde::Deserialize;

/// A string or an inline table (route `input_schema`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum SchemaRef {
    /// Path of a JSON Schema file.
    File(String),
    /// Inline JSON Schema.
    Inline(serde_json::Map<String, serde_json::Value>),
}

/// `[[start_nodes]]` `source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StartSource {
    /// Started from the CLI.
    Manual,
    /// Started by an HTTP route.
    Http,
    /// Started by an event.
    Event,
}

/// A token bucket (`rate_limit` of a route, 05 §8). Fields stay loose so that every bad value
/// reaches the validator as `rate_limit_out_of_range` instead of a load error.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Bucket size (> 0).
    pub capacity: Option<i64>,
    /// Refill rate per second (finite, > 0).
    pub per_second: Option<f64>,
    /// `route` (default) or `client_ip` (extension).
    pub per: Option<String>,
}

/// `[[http_routes]]` (07 §3).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpRouteConfig {
    /// Method, matched case-insensitively.
    pub method: String,
    /// Exact request path.
    pub path: String,
    /// Start name to run.
    pub start_node: toml::Spanned<String>,
    /// JSON Schema for the decoded body.
    pub input_schema: Option<SchemaRef>,
    /// Auth reference (`bearer:ops`, `hmac`, `mtls`, …).
    pub auth: Option<toml::Spanned<String>>,
    /// Per-route rate limit.
    pub rate_limit: Option<toml::Spanned<RateLimitConfig>>,
    /// Idempotency key source.
    pub idempotency_key: Option<String>,
    /// Seconds a stored reply is replayed (default 86400).
    pub idempotency_ttl_secs: Option<u64>,
    /// Body cap in bytes (extension).
    pub max_body_bytes: Option<u64>,
    /// Request headers copied into `trigger.headers` (extension).
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// `local` (default) or `queue` (extension, fleet).
    pub dispatch: Option<String>,
    /// With `dispatch = "queue"`: ms to wait for the outcome (extension).
    pub wait_ms: Option<u64>,
}

/// `[[triggers]]` of type `cron`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CronTrigger {
    /// Cron expression (5, 6 or 7 fields, or an `@` shorthand).
    pub schedule: toml::Spanned<String>,
    /// Start name.
    pub start_node: toml::Spanned<String>,
    /// IANA time zone (extension).
    pub timezone: Option<toml::Spanned<String>>,
}

/// `[[triggers]]` of type `interval`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntervalTrigger {
    /// `<digits><unit>`.
    pub every: toml::Spanned<String>,
    /// Start name.
    pub start_node: toml::Spanned<String>,
}

/// `[[triggers]]` of type `fs_watch`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FsWatchTrigger {
    /// File or directory to watch.
    pub path: String,
    /// Start name.
    pub start_node: toml::Spanned<String>,
    /// Watch subdirectories (default false).
    #[serde(default)]
    pub recursive: bool,
    /// `create`, `modify`, `remove`/`delete`, `rename`; empty = all.
    #[serde(default)]
    pub events: Vec<String>,
    /// Quiet period per path in ms (default 250).
    pub debounce_ms: Option<u64>,
}

/// `[[triggers]]` of type `mcp.resource.updated` (extension).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpResourceTrigger {
    /// MCP server name.
    pub server: toml::Spanned<String>,
    /// Exact resource URI.
    pub resource: String,
    /// Start name.
    pub start_node: toml::Spanned<String>,
}

/// `[[triggers]]` of a type the runtime rejects (`internal.event`, `mcp.resource.created`);
/// parsed leniently so the validator can explain why.
#[derive(Debug, Clone, Deserialize)]
pub struct RejectedTrigger {
    /// Start name, when given.
    pub start_node: Option<toml::Spanned<String>>,
}

/// One `[[triggers]]` entry, tagged by `type`.
#[derive(Debug, Clone)]
pub enum TriggerConfig {
    /// `cron`
    Cron(CronTrigger),
    /// `interval`
    Interval(IntervalTrigger),
    /// `fs_watch`
    FsWatch(FsWatchTrigger),
    /// `mcp.resource.updated`
    McpResourceUpdated(McpResourceTrigger),
    /// `internal.event` / `mcp.resource.created` (always a validation error).
    Rejected {
        /// The rejected type name.
        type_name: String,
        /// Its lenient fields.
        config: RejectedTrigger,
    },
}

impl TriggerConfig {
    /// The `start_node` of the trigger, when present.
    pub fn start_node(&self) -> Option<&toml::Spanned<String>> {
        match self {
            TriggerConfig::Cron(t) => Some(&t.start_node),
            TriggerConfig::Interval(t) => Some(&t.start_node),
            TriggerConfig::FsWatch(t) => Some(&t.start_node),
            TriggerConfig::McpResourceUpdated(t) => Some(&t.start_node),
            TriggerConfig::Rejected { config, .. } => config.start_node.as_ref(),
        }
    }

    /// True for triggers that keep a serve-mode process busy (01 §4).
    pub fn is_long_lived(&self) -> bool {
        !matches!(self, TriggerConfig::Rejected { .. })
    }
}

/// `[auth.bearer.<name>]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BearerAuth {
    /// Secret name holding newline-separated tokens.
    pub tokens_env: Option<String>,
    /// Literal tokens (tests).
    #[serde(default)]
    pub tokens: Vec<String>,
}

/// `[auth.basic.<name>]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// Secret name holding newline-separated `user:pass` entries.
    pub credentials_env: Option<String>,
    /// Literal entries (tests).
    #[serde(default)]
    pub credentials: Vec<String>,
}

/// `[auth.hmac.<name>]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HmacAuth {
    /// Secret name of the shared secret.
    pub secret_env: Option<String>,
    /// Literal secret fallback (tests).
    pub secret: Option<String>,
    /// Signature header (default `X-Agent-Signature`).
    pub header: Option<String>,
    /// Prefix before the hex digest (default `sha256=`).
    pub prefix: Option<String>,
}

/// `[auth.oidc.<name>]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcAuth {
    /// Required issuer (exact `iss`).
    pub issuer: Option<String>,
    /// Accepted audiences (any-of; empty = unchecked).
    #[serde(default)]
    pub audience: Vec<String>,
    /// JWKS file.
    pub jwks_file: Option<String>,
    /// Inline JWKS JSON.
    pub jwks_json: Option<String>,
    /// Live JWKS URL (extension).
    pub jwks_url: Option<String>,
    /// Accepted `sub` values (empty = any).
    #[serde(default)]
    pub subject_allowlist: Vec<String>,
    /// Clock skew in seconds (default 60).
    pub clock_skew_secs: Option<u64>,
    /// Accepted algorithms (default RS256).
    #[serde(default)]
    pub algorithms: Vec<String>,
    /// Periodic refresh of `jwks_url` (extension, default 3600).
    pub jwks_refresh_secs: Option<u64>,
    /// Minimum gap between fetches (extension, default 60).
    pub jwks_min_refresh_secs: Option<u64>,
    /// Fetch timeout (extension, default 5).
    pub jwks_timeout_secs: Option<u64>,
    /// Claims copied into the principal (extension).
    #[serde(default)]
    pub expose_claims: Vec<String>,
}

/// `[auth]`: named bindings per kind.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Bearer bindings.
    #[serde(default)]
    pub bearer: BTreeMap<String, BearerAuth>,
    /// Basic bindings.
    #[serde(default)]
    pub basic: BTreeMap<String, BasicAuth>,
    /// HMAC bindings.
    #[serde(default)]
    pub hmac: BTreeMap<String, HmacAuth>,
    /// OIDC bindings.
    #[serde(default)]
    pub oidc: BTreeMap<String, OidcAuth>,
}

/// `[logging.audit]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// `stderr`, `stdout` or `file:PATH`.
    pub target: Option<String>,
    /// Extra field names to redact.
    #[serde(default)]
    pub redact_fields: Vec<String>,
    /// Keep `reason` values (default false).
    pub include_reason: Option<bool>,
}

/// `[logging.otel]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OtelConfig {
    /// OTLP collector URL.
    pub endpoint: Option<String>,
    /// Resource `service.name` (default `agentd`).
    pub service_name: Option<String>,
    /// `grpc` or `http/protobuf`.
    pub protocol: Option<String>,
    /// Extra resource attributes.
    #[serde(default)]
    pub resource_attrs: BTreeMap<String, String>,
    /// Sampling ratio 0..=1 (default 1.0).
    pub sample_ratio: Option<f64>,
    /// Exporter headers (extension).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Export timeout (extension, default 10).
    pub timeout_secs: Option<u64>,
}

/// `[logging]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    /// Filter directive (default `warn`).
    pub level: Option<String>,
    /// `text`/`pretty` or `json`.
    pub format: Option<String>,
    /// `stderr`, `stdout` or `file:PATH`.
    pub target: Option<String>,
    /// Operational logging on/off (default true).
    pub enabled: Option<bool>,
    /// `never`, `daily`, `hourly`, `minutely` (file targets).
    pub rotation: Option<String>,
    /// Audit sink.
    pub audit: Option<AuditConfig>,
    /// OpenTelemetry export.
    pub otel: Option<OtelConfig>,
}

/// `[server.tls.client_auth]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientAuthConfig {
    /// `required`, `optional` or `none`.
    pub mode: Option<String>,
    /// CA bundle for client certificates.
    pub ca_file: Option<String>,
}

/// `[server.tls]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain, leaf first.
    pub cert_file: Option<String>,
    /// PEM private key.
    pub key_file: Option<String>,
    /// mTLS settings.
    pub client_auth: Option<ClientAuthConfig>,
}

/// `[server]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Open connections at most (default 1024).
    pub max_connections: Option<u32>,
    /// Request head cap (default 16384).
    pub max_header_bytes: Option<u32>,
    /// Body cap (default 1 MiB).
    pub max_body_bytes: Option<u64>,
    /// Head read timeout (default 30).
    pub header_timeout_secs: Option<u64>,
    /// Idle keep-alive timeout (default 30).
    pub idle_timeout_secs: Option<u64>,
    /// Auth ref protecting `/metrics`.
    pub metrics_auth: Option<toml::Spanned<String>>,
    /// TLS termination.
    pub tls: Option<TlsConfig>,
}

/// `[signing]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningConfig {
    /// Require a valid signature.
    pub required: Option<bool>,
    /// Key file named by the workflow (never trusted, D8).
    pub public_key_file: Option<String>,
    /// Inline key (never trusted, D8).
    pub public_key_pem: Option<String>,
    /// Only `ed25519`.
    pub algorithm: Option<String>,
}

/// `[budget.process]` (extension).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessBudgetConfig {
    /// Tokens over the process lifetime.
    pub max_llm_tokens: Option<u64>,
    /// MiB written over the process lifetime.
    pub max_fs_write_mb: Option<u64>,
}

/// `[budget.fleet]` (extension, 12 §7).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetBudgetConfig {
    /// Tokens per window across the fleet.
    pub max_llm_tokens: Option<u64>,
    /// Runs admitted per window.
    pub max_runs: Option<u64>,
    /// `hour`, `day`, `month` or `lifetime`.
    pub window: Option<String>,
    /// Tokens reserved per ledger update (default 10000).
    pub allowance_tokens: Option<u64>,
}

/// `[budget]` (05 §7).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// Address-space limit in MiB (0 = none).
    pub max_memory_mb: Option<u64>,
    /// CPU-time limit in seconds (0 = none).
    pub max_cpu_secs: Option<u64>,
    /// Per-run wall clock cap in seconds (clamps `--timeout-secs` when > 0).
    pub max_run_time_secs: Option<u64>,
    /// Per-run `write_file` bytes in MiB (0/absent = no cap).
    pub max_fs_write_mb: Option<u64>,
    /// Per-run prompt + completion tokens (0/absent = no cap).
    pub max_llm_tokens: Option<u64>,
    /// Process-wide caps.
    pub process: Option<ProcessBudgetConfig>,
    /// Fleet-wide caps.
    pub fleet: Option<FleetBudgetConfig>,
}

/// `[[mcp_servers]]` (08 §1.1).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServerConfig {
    /// Unique name.
    pub name: toml::Spanned<String>,
    /// stdio transport argv.
    pub command: Option<Vec<String>>,
    /// Streamable HTTP endpoint (extension).
    pub url: Option<String>,
    /// Tool allowlist (name patterns; empty = deny all).
    #[serde(default)]
    pub allow_tools: Vec<String>,
    /// Resource allowlist (name patterns; empty = deny all).
    #[serde(default)]
    pub allow_resources: Vec<String>,
    /// Child env VAR → secret name.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Env vars copied from the runtime (extension).
    #[serde(default)]
    pub env_passthrough: Vec<String>,
    /// HTTP headers (extension).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Per-request timeout (extension, default 60).
    pub timeout_secs: Option<u64>,
    /// Startup timeout (extension, default 30).
    pub startup_timeout_secs: Option<u64>,
    /// Tool → `sha256:<hex>` pins (extension).
    #[serde(default)]
    pub tool_pins: BTreeMap<String, String>,
}

/// `[[intelligence.backends]]` (06 §2).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    /// Unique name, not `default`.
    pub name: toml::Spanned<String>,
    /// `anthropic`, `openai`, `gemini`, `openai-compatible`, `unix`, `http`.
    pub provider: String,
    /// Model id.
    pub model: Option<String>,
    /// Secret name of the API key.
    pub api_key_env: Option<String>,
    /// Base URL.
    pub base_url: Option<String>,
    /// Default output cap.
    pub max_tokens: Option<u32>,
    /// Unix socket path (`unix`).
    pub path: Option<String>,
    /// JSON-RPC endpoint (`http`).
    pub url: Option<String>,
    /// Bearer secret name (`http`).
    pub bearer_env: Option<String>,
    /// Request timeout.
    pub timeout_secs: Option<u64>,
    /// Connect timeout (default 10).
    pub connect_timeout_secs: Option<u64>,
    /// Transport retries (default 2).
    pub max_retries: Option<u32>,
    /// Extra headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// `[intelligence]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntelligenceConfig {
    /// Named backends.
    #[serde(default)]
    pub backends: Vec<BackendConfig>,
}

/// `[[secrets]]` with `source = "env"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvSecret {
    /// Environment variable read on every resolve.
    pub var: String,
}

/// `[[secrets]]` with `source = "file"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSecret {
    /// File read on every resolve.
    pub path: String,
    /// Trim trailing whitespace (default true).
    pub trim: Option<bool>,
}

/// `[[secrets]]` with `source = "command"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandSecret {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Timeout (extension, default 10).
    pub timeout_secs: Option<u64>,
    /// Cache lifetime (extension).
    pub ttl_secs: Option<u64>,
}

/// `[[secrets]]` with `source = "oauth2"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Secret {
    /// Token endpoint.
    pub token_url: String,
    /// Secret name of the client id.
    pub client_id_env: String,
    /// Secret name of the client secret.
    pub client_secret_env: String,
    /// Scopes.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Extra form parameters.
    #[serde(default)]
    pub extra_params: BTreeMap<String, String>,
    /// `body` (default) or `basic`.
    pub auth_style: Option<String>,
    /// Refresh this many seconds early (default 60).
    pub skew_secs: Option<u64>,
}

/// The source of one secret.
#[derive(Debug, Clone)]
pub enum SecretSource {
    /// `env`
    Env(EnvSecret),
    /// `file`
    File(FileSecret),
    /// `command`
    Command(CommandSecret),
    /// `oauth2`
    OAuth2(OAuth2Secret),
}

/// One `[[secrets]]` entry.
#[derive(Debug, Clone)]
pub struct SecretConfig {
    /// Unique name.
    pub name: String,
    /// Where the value comes from.
    pub source: SecretSource,
}

/// `[control]` rate limit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlRateLimit {
    /// Bucket size.
    pub capacity: Option<i64>,
    /// Refill per second.
    pub per_second: Option<f64>,
}

/// `[control]` (extension, 11 §4.1).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlConfig {
    /// Turn the control plane on.
    pub enabled: Option<bool>,
    /// Own listener.
    pub bind: Option<String>,
    /// Auth ref.
    pub auth: Option<String>,
    /// Permit `auth = "none"` on loopback.
    pub allow_unauthenticated_loopback: Option<bool>,
    /// Viewer matchers.
    pub viewers: Option<Vec<String>>,
    /// Operator matchers.
    pub operators: Option<Vec<String>>,
    /// Approver matchers.
    pub approvers: Option<Vec<String>>,
    /// Publisher matchers.
    pub publishers: Option<Vec<String>>,
    /// Forbid approving one's own run (default true).
    pub forbid_self_approval: Option<bool>,
    /// Omit payloads from the API.
    pub redact_payloads: Option<bool>,
    /// CORS origins.
    #[serde(default)]
    pub cors_origins: Vec<String>,
    /// Event stream clients at most (default 64).
    pub max_sse_clients: Option<u32>,
    /// API rate limit.
    pub rate_limit: Option<ControlRateLimit>,
}

/// `[store]` (extension, 12 §2.2).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Store URL.
    pub url: Option<String>,
    /// Secret holding the full URL.
    pub url_secret: Option<String>,
    /// Secret holding the password.
    pub password_secret: Option<String>,
    /// PostgreSQL schema (default `agentd`).
    pub schema: Option<String>,
    /// Pool size (default 8).
    pub pool_size: Option<u32>,
    /// Connect timeout (default 5).
    pub connect_timeout_secs: Option<u64>,
    /// Statement timeout (default 10000).
    pub statement_timeout_ms: Option<u64>,
    /// libpq sslmode.
    pub tls: Option<String>,
    /// CA for verify-*.
    pub ca_file: Option<String>,
    /// Fleet node id.
    pub node_id: Option<String>,
    /// Lease length (default 30).
    pub lease_secs: Option<u64>,
    /// Heartbeat period.
    pub heartbeat_secs: Option<u64>,
    /// Claim polling (default 1000).
    pub poll_interval_ms: Option<u64>,
    /// Runs per process (default 64).
    pub max_concurrent_runs: Option<u32>,
    /// Claims before abandoning (default 5).
    pub max_attempts: Option<u32>,
    /// Orphan grace (default 300).
    pub orphan_grace_secs: Option<u64>,
    /// Resume across versions (default false).
    pub resume_across_versions: Option<bool>,
    /// Leader lease (default 15).
    pub leader_lease_secs: Option<u64>,
    /// Misfire grace (default 60).
    pub misfire_grace_secs: Option<u64>,
    /// Effect-key header name.
    pub effect_key_header: Option<String>,
    /// Auto-migrate (default true).
    pub auto_migrate: Option<bool>,
    /// One-shot hand-off (default false).
    pub oneshot_handoff: Option<bool>,
}
