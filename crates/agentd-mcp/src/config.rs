//! What the hub needs to know about one server (`08` §1.1, §1.2), checked once at startup.
//!
//! A [`ServerSpec`] is built from a workflow's `[[mcp_servers]]` entry or from the legacy
//! `--mcp-stdio` value; the hub never looks at the raw TOML types again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use agentd_policy::{Decision, NamePattern, Policy, check_mcp_resource, check_mcp_tool};
use agentd_workflow::model::McpServerConfig;

use crate::error::StartupError;

/// The name of the legacy `--mcp-stdio` server.
pub const LEGACY_SERVER_NAME: &str = "default";
/// Default per-request timeout (`timeout_secs`).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Default spawn + handshake + `tools/list` budget (`startup_timeout_secs`).
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// How the hub reaches a server.
#[derive(Debug, Clone)]
pub enum TransportSpec {
    /// A child process speaking newline-delimited JSON-RPC on stdin/stdout.
    Stdio {
        /// Program and arguments; `command[0]` without `/` is looked up in `PATH`.
        command: Vec<String>,
        /// Child variable → secret name, resolved at every spawn.
        env: BTreeMap<String, String>,
        /// Variables copied from the runtime's environment when set.
        env_passthrough: Vec<String>,
    },
    /// Streamable HTTP: every client message is a `POST` to `url`.
    Http {
        /// The endpoint, `http://` or `https://`.
        url: String,
        /// Header name → literal value with `{{secret:NAME}}` placeholders.
        headers: BTreeMap<String, String>,
    },
}

impl TransportSpec {
    /// `stdio` or `streamable_http` (the `transport` field of `mcp.server_started`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Stdio { .. } => "stdio",
            Self::Http { .. } => "streamable_http",
        }
    }
}

/// Which tools and resources a server may be asked for (`05` §1, §3.4).
#[derive(Debug, Clone)]
pub enum Allowlist {
    /// A `[[mcp_servers]]` entry's own `allow_tools` / `allow_resources` (empty = deny all).
    Patterns {
        /// `allow_tools`.
        tools: Vec<NamePattern>,
        /// `allow_resources`.
        resources: Vec<NamePattern>,
    },
    /// The legacy server `default`: `[policy.mcp]`, allow-all without `[policy]`.
    LegacyPolicy(Arc<Policy>),
}

impl Allowlist {
    /// The decision for `tools/call` of `tool` on `server`.
    pub fn check_tool(&self, server: &str, tool: &str) -> Decision {
        match self {
            Self::Patterns { tools, .. } => check_mcp_tool(server, tools, tool),
            Self::LegacyPolicy(policy) => policy.check_mcp_legacy_tool(tool),
        }
    }

    /// The decision for `resources/read` of `uri` on `server`.
    pub fn check_resource(&self, server: &str, uri: &str) -> Decision {
        match self {
            Self::Patterns { resources, .. } => check_mcp_resource(server, resources, uri),
            Self::LegacyPolicy(policy) => policy.check_mcp_legacy_resource(uri),
        }
    }

    /// The wildcard-free `allow_tools` entries (checked against `tools/list`, `08` §2.4).
    pub fn exact_tools(&self) -> Vec<String> {
        match self {
            Self::Patterns { tools, .. } => {
                tools.iter().map(NamePattern::as_str).filter(|p| !p.contains('*')).map(str::to_owned).collect()
            }
            Self::LegacyPolicy(_) => Vec::new(),
        }
    }
}

/// One server as the hub runs it.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    /// Unique, non-blank name.
    pub name: String,
    /// stdio or streamable HTTP.
    pub transport: TransportSpec,
    /// Tool and resource allowlists.
    pub allowlist: Allowlist,
    /// Per-request limit (`timeout_secs`).
    pub request_timeout: Duration,
    /// Spawn + handshake + `tools/list` limit (`startup_timeout_secs`).
    pub startup_timeout: Duration,
    /// Tool name → `sha256:<64 lower-case hex>` (`08` §2.4).
    pub tool_pins: BTreeMap<String, String>,
}

impl ServerSpec {
    /// Checks a `[[mcp_servers]]` entry (`08` §1.1): blank name or command, both or neither of
    /// `command` / `url`, a URL that is not `http(s)://`, bad allowlist patterns, zero timeouts
    /// and malformed pins are startup errors.
    pub fn from_config(config: &McpServerConfig) -> Result<Self, StartupError> {
        let name = config.name.get_ref().trim().to_owned();
        let fail = |reason: String| StartupError::new(config.name.get_ref().clone(), reason);
        if name.is_empty() {
            return Err(fail("name is blank".into()));
        }
        let transport = match (&config.command, &config.url) {
            (Some(command), None) => stdio_transport(command, config).map_err(fail)?,
            (None, Some(url)) => http_transport(url, config).map_err(fail)?,
            (Some(_), Some(_)) => return Err(fail("set exactly one of `command` and `url`, not both".into())),
            (None, None) => return Err(fail("set one of `command` (stdio) or `url` (streamable HTTP)".into())),
        };
        let allowlist = Allowlist::Patterns {
            tools: patterns("allow_tools", &config.allow_tools).map_err(fail)?,
            resources: patterns("allow_resources", &config.allow_resources).map_err(fail)?,
        };
        Ok(Self {
            name,
            transport,
            allowlist,
            request_timeout: seconds("timeout_secs", config.timeout_secs, DEFAULT_REQUEST_TIMEOUT).map_err(fail)?,
            startup_timeout: seconds("startup_timeout_secs", config.startup_timeout_secs, DEFAULT_STARTUP_TIMEOUT)
                .map_err(fail)?,
            tool_pins: pins(&config.tool_pins).map_err(fail)?,
        })
    }

    /// The legacy `--mcp-stdio "CMD ARGS"` server `default` (`08` §1.2): the value split on
    /// whitespace (no quoting), allowlists from `policy`.
    pub fn legacy_stdio(command_line: &str, policy: Arc<Policy>) -> Result<Self, StartupError> {
        let command: Vec<String> = command_line.split_whitespace().map(str::to_owned).collect();
        if command.is_empty() {
            return Err(StartupError::new(LEGACY_SERVER_NAME, "`--mcp-stdio` needs a command"));
        }
        Ok(Self {
            name: LEGACY_SERVER_NAME.to_owned(),
            transport: TransportSpec::Stdio { command, env: BTreeMap::new(), env_passthrough: Vec::new() },
            allowlist: Allowlist::LegacyPolicy(policy),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            startup_timeout: DEFAULT_STARTUP_TIMEOUT,
            tool_pins: BTreeMap::new(),
        })
    }
}

fn stdio_transport(command: &[String], config: &McpServerConfig) -> Result<TransportSpec, String> {
    match command.first() {
        None => return Err("`command` is empty".into()),
        Some(program) if program.trim().is_empty() => return Err("`command[0]` is blank".into()),
        Some(_) => {}
    }
    if !config.headers.is_empty() {
        return Err("`headers` applies to the streamable HTTP transport only (`url`)".into());
    }
    Ok(TransportSpec::Stdio {
        command: command.to_vec(),
        env: config.env.clone(),
        env_passthrough: config.env_passthrough.clone(),
    })
}

fn http_transport(url: &str, config: &McpServerConfig) -> Result<TransportSpec, String> {
    let lower = url.to_ascii_lowercase();
    let has_host = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'));
    if !has_host {
        return Err(format!("`url` must be an absolute http:// or https:// URL; got `{}`", crate::error::bounded(url)));
    }
    if !config.env.is_empty() || !config.env_passthrough.is_empty() {
        return Err("`env` and `env_passthrough` apply to the stdio transport only (`command`)".into());
    }
    for (name, value) in &config.headers {
        reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("header name `{}` is not a valid HTTP header name", crate::error::bounded(name)))?;
        if value.contains(['\r', '\n']) {
            return Err(format!("header `{name}` contains a line break"));
        }
    }
    Ok(TransportSpec::Http { url: url.to_owned(), headers: config.headers.clone() })
}

fn patterns(list: &str, entries: &[String]) -> Result<Vec<NamePattern>, String> {
    entries
        .iter()
        .map(|entry| NamePattern::parse(entry).map_err(|reason| format!("{list}: `{entry}`: {reason}")))
        .collect()
}

fn seconds(field: &str, value: Option<u64>, default: Duration) -> Result<Duration, String> {
    match value {
        None => Ok(default),
        Some(0) => Err(format!("`{field}` must be at least 1")),
        Some(secs) => Ok(Duration::from_secs(secs)),
    }
}

fn pins(entries: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, String> {
    let mut checked = BTreeMap::new();
    for (tool, pin) in entries {
        let hex = pin.strip_prefix("sha256:").unwrap_or("");
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("tool_pins.{tool}: expected `sha256:<64 hex digits>`"));
        }
        checked.insert(tool.clone(), format!("sha256:{}", hex.to_ascii_lowercase()));
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> McpServerConfig {
        match toml::from_str(toml_text) {
            Ok(config) => config,
            Err(error) => panic!("test config does not parse: {error}"),
        }
    }

    #[test]
    fn a_stdio_entry_becomes_a_spec() {
        let spec = ServerSpec::from_config(&parse(
            "name = \"docs\"\ncommand = [\"srv\", \"--x\"]\nallow_tools = [\"search_*\"]\ntimeout_secs = 5",
        ));
        let spec = spec.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(spec.name, "docs");
        assert_eq!(spec.request_timeout, Duration::from_secs(5));
        assert!(spec.allowlist.check_tool("docs", "search_docs").allowed);
        assert!(!spec.allowlist.check_tool("docs", "delete").allowed);
        assert!(!spec.allowlist.check_resource("docs", "docs://a").allowed);
    }

    #[test]
    fn bad_entries_are_startup_errors() {
        let cases = [
            ("name = \"a\"", "set one of"),
            ("name = \"a\"\ncommand = []", "empty"),
            ("name = \"a\"\ncommand = [\" \"]", "blank"),
            ("name = \"a\"\ncommand = [\"x\"]\nurl = \"http://h/mcp\"", "not both"),
            ("name = \"a\"\nurl = \"ftp://h\"", "absolute http"),
            ("name = \"a\"\ncommand = [\"x\"]\nallow_tools = [\"a*b\"]", "allow_tools"),
            ("name = \"a\"\ncommand = [\"x\"]\ntimeout_secs = 0", "at least 1"),
            ("name = \"a\"\ncommand = [\"x\"]\ntool_pins = { t = \"md5:00\" }", "tool_pins.t"),
            ("name = \" \"\ncommand = [\"x\"]", "blank"),
        ];
        for (text, expected) in cases {
            match ServerSpec::from_config(&parse(text)) {
                Ok(_) => panic!("accepted: {text}"),
                Err(error) => assert!(error.reason.contains(expected), "{text}: {error}"),
            }
        }
    }

    #[test]
    fn the_legacy_server_uses_the_policy() {
        let spec = ServerSpec::legacy_stdio("node  server.js stdio", Arc::new(Policy::allow_all()));
        let spec = spec.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(spec.name, "default");
        assert!(matches!(&spec.transport, TransportSpec::Stdio { command, .. } if command.len() == 3));
        assert!(spec.allowlist.check_tool("default", "anything").allowed);
        assert!(ServerSpec::legacy_stdio("   ", Arc::new(Policy::allow_all())).is_err());
    }
}
