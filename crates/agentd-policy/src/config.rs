//! The `[policy]` table of a workflow file (`05-policy-budgets.md` §1).
//!
//! Every sub-table and key is optional and unknown keys are parse errors. Whether a sub-table is
//! missing or present with empty lists makes no difference to the decisions (§2: each family is
//! fail-closed on its own), but the distinction is kept so that a configuration round-trips.

use serde::{Deserialize, Serialize};

/// The whole `[policy]` table. Its mere presence switches the runtime from allow-everything to
/// fail-closed mode (§2).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// `[policy.fs]`: filesystem allowlists. Missing = every fs operation is denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs: Option<FsPolicyConfig>,
    /// `[policy.env]`: environment variable allowlist. Missing = every `read_env` is denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<EnvPolicyConfig>,
    /// `[policy.http]`: outbound HTTP allowlist. Missing = every `http_request` is denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpPolicyConfig>,
    /// `[policy.shell]`: command allowlist. Missing = every `shell_run` is denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<ShellPolicyConfig>,
    /// `[policy.mcp]`: allowlists of the legacy `--mcp-stdio` server `default` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mcp: Option<McpPolicyConfig>,
    /// `[policy.rego]`: the optional Rego AND layer (§5). Evaluated outside this crate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rego: Option<RegoConfig>,
}

/// `[policy.fs]`: path patterns (§3.1) per filesystem operation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FsPolicyConfig {
    /// Paths `read_file` may read. Default `[]` (deny).
    #[serde(default)]
    pub read: Vec<String>,
    /// Paths `write_file` and `create_dir` may write. Default `[]` (deny).
    #[serde(default)]
    pub write: Vec<String>,
    /// Accepted for 1.3 files and syntax-checked; no node uses it.
    #[serde(default)]
    pub delete: Vec<String>,
    /// Accepted and syntax-checked; no node uses it (empty means "same as `read`").
    #[serde(default)]
    pub list: Vec<String>,
}

/// `[policy.env]`: name patterns (§3.4) of readable environment variables.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvPolicyConfig {
    /// Keys `read_env` may read. Default `[]` (deny).
    #[serde(default)]
    pub read_keys: Vec<String>,
}

/// `[policy.http]`: URL patterns (§3.5) and HTTP methods.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpPolicyConfig {
    /// URL patterns `http_request` may reach. Default `[]` (deny).
    #[serde(default)]
    pub urls: Vec<String>,
    /// Allowed methods, case-insensitive. Default `[]`, which here means *any* method.
    #[serde(default)]
    pub methods: Vec<String>,
}

/// `[policy.shell]`: path patterns (§3.1) matched on the resolved command path (§3.3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShellPolicyConfig {
    /// Commands `shell_run` may spawn. Default `[]` (deny).
    #[serde(default)]
    pub commands: Vec<String>,
}

/// `[policy.mcp]`: allowlists of the legacy `--mcp-stdio` server `default`. `[[mcp_servers]]`
/// entries use their own `allow_tools` / `allow_resources` instead.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpPolicyConfig {
    /// Accepted and informational only: never checked.
    #[serde(default)]
    pub servers: Vec<String>,
    /// Name patterns (§3.4) of the tools the `default` server may be asked to run.
    #[serde(default)]
    pub tools: Vec<String>,
    /// Name patterns (§3.4) of the resource URIs the `default` server may be asked to read.
    #[serde(default)]
    pub resources: Vec<String>,
}

/// `[policy.rego]`: the optional Rego layer (§5). This crate only carries it; the runtime compiles
/// and evaluates it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegoConfig {
    /// Inline Rego source. Mutually exclusive with `file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<String>,
    /// Path of a Rego file, read at startup and on reload. Mutually exclusive with `inline`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// A TOML table merged at the root of the Rego `data` document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
    /// The query evaluated per check; `None` means [`RegoConfig::DEFAULT_QUERY`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

impl RegoConfig {
    /// The query used when `query` is not set.
    pub const DEFAULT_QUERY: &'static str = "data.agent.allow";

    /// The query to evaluate: `query`, or [`RegoConfig::DEFAULT_QUERY`].
    pub fn effective_query(&self) -> &str {
        self.query.as_deref().unwrap_or(Self::DEFAULT_QUERY)
    }
}
