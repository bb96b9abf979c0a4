//! The compiled policy used at run time (`05-policy-budgets.md` §2, §4, §6).
//!
//! - No `[policy]` table: everything is allowed (1.3 compatibility), including every tool and
//!   resource of the legacy MCP server `default`, and no restricted-address rule applies.
//! - `[policy]` present: each family is fail-closed on its own. A missing sub-table and an empty
//!   list both deny that family; the one exception is `http.methods`, where empty means any
//!   method.
//!
//! A [`Policy`] is immutable and cheap to share between concurrent runs.

use std::net::IpAddr;
use std::path::Path;

use crate::config::{PolicyConfig, RegoConfig};
use crate::decision::{Decision, Family};
use crate::name_pattern::NamePattern;
use crate::path_pattern::PathPattern;
use crate::syntax::{PatternError, collect, escape_controls, parse_method};
use crate::url_pattern::{NormalizedUrl, UrlPattern, is_restricted};

/// The reason of every allow in allow-everything mode.
const ALLOW_ALL_REASON: &str = "no [policy] table: everything is allowed";

/// The name of the legacy `--mcp-stdio` server governed by `[policy.mcp]`.
const LEGACY_MCP_SERVER: &str = "default";

/// Why a `[policy]` table could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Entries outside the matcher grammar (validation code `policy_bad_pattern`), in declaration
    /// order. Never empty.
    #[error("{}", render_pattern_errors(.0))]
    BadPatterns(Vec<PatternError>),
}

impl PolicyError {
    /// The stable error code (`policy_bad_pattern`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadPatterns(_) => crate::syntax::BAD_PATTERN_CODE,
        }
    }
}

fn render_pattern_errors(errors: &[PatternError]) -> String {
    let rendered: Vec<String> = errors.iter().map(ToString::to_string).collect();
    format!("invalid [policy] patterns: {}", rendered.join("; "))
}

/// A compiled policy: either allow-everything or the fail-closed rules of a `[policy]` table.
#[derive(Debug, Clone)]
pub struct Policy {
    /// `None` = no `[policy]` table.
    rules: Option<Box<Rules>>,
}

#[derive(Debug, Clone)]
struct Rules {
    fs_read: Vec<PathPattern>,
    fs_write: Vec<PathPattern>,
    env_read_keys: Vec<NamePattern>,
    http_urls: Vec<UrlPattern>,
    /// Upper-cased; empty = any method.
    http_methods: Vec<String>,
    shell_commands: Vec<PathPattern>,
    mcp_tools: Vec<NamePattern>,
    mcp_resources: Vec<NamePattern>,
    rego: Option<RegoConfig>,
}

impl Policy {
    /// The policy of a workflow without a `[policy]` table: everything is allowed.
    pub fn allow_all() -> Self {
        Self { rules: None }
    }

    /// Compiles a `[policy]` table at startup (`None` = no table = [`Policy::allow_all`]).
    ///
    /// Every pattern is parsed (any grammar error fails the whole policy). Relative fs and shell
    /// patterns are made absolute against `cwd`, and each fs/shell pattern's directory prefix is
    /// normalised once with symlinks resolved (§3.2 step 5) — this reads the filesystem.
    pub fn compile(config: Option<&PolicyConfig>, cwd: &Path) -> Result<Self, PolicyError> {
        let Some(config) = config else {
            return Ok(Self::allow_all());
        };
        let mut errors = Vec::new();
        let fs = config.fs.clone().unwrap_or_default();
        let env = config.env.clone().unwrap_or_default();
        let http = config.http.clone().unwrap_or_default();
        let shell = config.shell.clone().unwrap_or_default();
        let mcp = config.mcp.clone().unwrap_or_default();

        let fs_read = collect(&mut errors, "[policy.fs].read", &fs.read, PathPattern::parse);
        let fs_write = collect(&mut errors, "[policy.fs].write", &fs.write, PathPattern::parse);
        // Unused by every node, but still held to the grammar.
        collect(&mut errors, "[policy.fs].delete", &fs.delete, PathPattern::parse);
        collect(&mut errors, "[policy.fs].list", &fs.list, PathPattern::parse);
        let env_read_keys = collect(&mut errors, "[policy.env].read_keys", &env.read_keys, NamePattern::parse);
        let http_urls = collect(&mut errors, "[policy.http].urls", &http.urls, UrlPattern::parse);
        let http_methods = collect(&mut errors, "[policy.http].methods", &http.methods, parse_method);
        let shell_commands = collect(&mut errors, "[policy.shell].commands", &shell.commands, PathPattern::parse);
        let mcp_tools = collect(&mut errors, "[policy.mcp].tools", &mcp.tools, NamePattern::parse);
        let mcp_resources = collect(&mut errors, "[policy.mcp].resources", &mcp.resources, NamePattern::parse);
        if !errors.is_empty() {
            return Err(PolicyError::BadPatterns(errors));
        }

        let anchor = |patterns: Vec<PathPattern>| -> Vec<PathPattern> {
            patterns.iter().map(|pattern| pattern.anchored(cwd)).collect()
        };
        Ok(Self {
            rules: Some(Box::new(Rules {
                fs_read: anchor(fs_read),
                fs_write: anchor(fs_write),
                env_read_keys,
                http_urls,
                http_methods,
                shell_commands: anchor(shell_commands),
                mcp_tools,
                mcp_resources,
                rego: config.rego.clone(),
            })),
        })
    }

    /// Whether this is allow-everything mode (no `[policy]` table). The runtime then logs one
    /// warning and emits audit `policy.allow_all` at startup.
    pub fn is_allow_all(&self) -> bool {
        self.rules.is_none()
    }

    /// The `[policy.rego]` table, for the runtime's Rego layer (§5).
    pub fn rego(&self) -> Option<&RegoConfig> {
        self.rules.as_ref().and_then(|rules| rules.rego.as_ref())
    }

    /// `read_file` on a checked path (§3.2) against `[policy.fs].read`.
    pub fn check_fs_read(&self, checked: &Path) -> Decision {
        self.check_paths(Family::Fs, checked, |rules| &rules.fs_read, "[policy.fs].read", "path")
    }

    /// `write_file` / `create_dir` on a checked path (§3.2) against `[policy.fs].write`.
    pub fn check_fs_write(&self, checked: &Path) -> Decision {
        self.check_paths(Family::Fs, checked, |rules| &rules.fs_write, "[policy.fs].write", "path")
    }

    /// `shell_run` on the fully resolved command path (§3.3) against `[policy.shell].commands`.
    pub fn check_shell(&self, resolved: &Path) -> Decision {
        self.check_paths(Family::Shell, resolved, |rules| &rules.shell_commands, "[policy.shell].commands", "command")
    }

    /// `read_env` of `key` against `[policy.env].read_keys`. (Denying a variable that backs a
    /// declared secret is the runtime's job: this crate does not know the secrets.)
    pub fn check_env(&self, key: &str) -> Decision {
        let Some(rules) = &self.rules else {
            return Decision::allow(Family::Env, None, ALLOW_ALL_REASON);
        };
        check_names(
            Family::Env,
            &rules.env_read_keys,
            key,
            "[policy.env].read_keys",
            || "[policy.env].read_keys is empty".to_owned(),
            || "key not in [policy.env].read_keys".to_owned(),
        )
    }

    /// `http_request` with `method` on a normalised URL: `[policy.http].methods` first (empty =
    /// any method), then `[policy.http].urls`. The restricted-address rule is a separate step
    /// after name resolution, see [`Policy::restricted_address_decision`].
    pub fn check_http(&self, method: &str, url: &NormalizedUrl) -> Decision {
        let Some(rules) = &self.rules else {
            return Decision::allow(Family::Http, None, ALLOW_ALL_REASON);
        };
        let method = method.to_ascii_uppercase();
        if !rules.http_methods.is_empty() && !rules.http_methods.contains(&method) {
            return Decision::deny(
                Family::Http,
                format!("method {} not in [policy.http].methods", escape_controls(&method)),
            );
        }
        if rules.http_urls.is_empty() {
            return Decision::deny(Family::Http, "[policy.http].urls is empty");
        }
        match rules.http_urls.iter().find(|pattern| pattern.matches(url)) {
            Some(pattern) => allowed_by(Family::Http, pattern.as_str(), "[policy.http].urls"),
            None => Decision::deny(Family::Http, "URL not in [policy.http].urls"),
        }
    }

    /// The restricted-address rule (§3.5 "Restricted addresses and DNS" step 2), given every
    /// address the host resolved to. An IP-literal host is always judged as resolving to itself,
    /// even when `resolved` omits it.
    ///
    /// If any address is restricted, the request is allowed only when a pattern that matches the
    /// URL names its host exactly (no `*` in the host, not the pattern `*`). Allow-everything mode
    /// applies no restriction.
    pub fn restricted_address_decision(&self, url: &NormalizedUrl, resolved: &[IpAddr]) -> Decision {
        let Some(rules) = &self.rules else {
            return Decision::allow(Family::Http, None, ALLOW_ALL_REASON);
        };
        // An IP literal resolves to itself, whether or not the caller listed it.
        let Some(restricted) =
            url.ip_literal().into_iter().chain(resolved.iter().copied()).find(|ip| is_restricted(*ip))
        else {
            return Decision::allow(Family::Http, None, "no restricted address");
        };
        let exact =
            rules.http_urls.iter().find(|pattern| pattern.matches(url) && pattern.names_host_exactly(&url.host));
        match exact {
            Some(pattern) => Decision::allow(
                Family::Http,
                Some(pattern.as_str().to_owned()),
                format!("restricted address {restricted} reached through the exact host entry `{}`", pattern.as_str()),
            ),
            None => Decision::deny(
                Family::Http,
                format!(
                    "host {} resolves to restricted address {restricted}; only an exact host entry may reach it",
                    url.host
                ),
            ),
        }
    }

    /// `call_mcp_tool` on the legacy `--mcp-stdio` server `default`, against `[policy.mcp].tools`.
    pub fn check_mcp_legacy_tool(&self, tool: &str) -> Decision {
        match &self.rules {
            None => Decision::allow(Family::Mcp, None, ALLOW_ALL_REASON),
            Some(rules) => check_mcp_tool(LEGACY_MCP_SERVER, &rules.mcp_tools, tool),
        }
    }

    /// `read_mcp_resource` on the legacy server `default`, against `[policy.mcp].resources`.
    pub fn check_mcp_legacy_resource(&self, uri: &str) -> Decision {
        match &self.rules {
            None => Decision::allow(Family::Mcp, None, ALLOW_ALL_REASON),
            Some(rules) => check_mcp_resource(LEGACY_MCP_SERVER, &rules.mcp_resources, uri),
        }
    }

    /// Matches a path against one path list; `noun` starts the "not in" reason.
    fn check_paths(
        &self,
        family: Family,
        candidate: &Path,
        list: impl Fn(&Rules) -> &Vec<PathPattern>,
        list_name: &str,
        noun: &str,
    ) -> Decision {
        let Some(rules) = &self.rules else {
            return Decision::allow(family, None, ALLOW_ALL_REASON);
        };
        let patterns = list(rules);
        if patterns.is_empty() {
            return Decision::deny(family, format!("{list_name} is empty"));
        }
        match patterns.iter().find(|pattern| pattern.matches(candidate)) {
            Some(pattern) => allowed_by(family, pattern.as_str(), list_name),
            None => Decision::deny(family, format!("{noun} not in {list_name}")),
        }
    }
}

/// `call_mcp_tool` against a server's tool allowlist (`[[mcp_servers]].allow_tools`, or
/// `[policy.mcp].tools` for `default`). An empty allowlist denies every tool, with the same
/// reason as an unlisted tool: `tool <t> not in allow_tools of server <s>`.
pub fn check_mcp_tool(server: &str, allow_tools: &[NamePattern], tool: &str) -> Decision {
    let reason = || format!("tool {tool} not in allow_tools of server {server}");
    check_names(Family::Mcp, allow_tools, tool, &format!("allow_tools of server {server}"), reason, reason)
}

/// `read_mcp_resource` against a server's resource allowlist (`[[mcp_servers]].allow_resources`,
/// or `[policy.mcp].resources` for `default`). Empty denies every resource, with the reason
/// `resource <uri> not in allow_resources of server <s>`.
pub fn check_mcp_resource(server: &str, allow_resources: &[NamePattern], uri: &str) -> Decision {
    let reason = || format!("resource {uri} not in allow_resources of server {server}");
    check_names(Family::Mcp, allow_resources, uri, &format!("allow_resources of server {server}"), reason, reason)
}

/// Matches `name` against name patterns; the reasons are built only when needed.
fn check_names(
    family: Family,
    patterns: &[NamePattern],
    name: &str,
    list_name: &str,
    empty_reason: impl FnOnce() -> String,
    not_listed_reason: impl FnOnce() -> String,
) -> Decision {
    if patterns.is_empty() {
        return Decision::deny(family, escape_controls(&empty_reason()));
    }
    match patterns.iter().find(|pattern| pattern.matches(name)) {
        Some(pattern) => allowed_by(family, pattern.as_str(), list_name),
        None => Decision::deny(family, escape_controls(&not_listed_reason())),
    }
}

/// An allow naming the pattern that granted it.
fn allowed_by(family: Family, pattern: &str, list_name: &str) -> Decision {
    Decision::allow(family, Some(pattern.to_owned()), format!("allowed by `{pattern}` in {list_name}"))
}
