//! Pure policy decisions for agentd: `(policy, request) -> Decision { allowed, rule, reason }`.
//!
//! This crate implements `05-policy-budgets.md` §1–4 and §6:
//!
//! - [`config`]: the `[policy]` TOML table as strict serde types;
//! - [`syntax`]: the load-time grammar checks behind the `policy_bad_pattern` validation code
//!   (no I/O);
//! - [`path_pattern`], [`name_pattern`], [`url_pattern`]: the three matcher grammars;
//! - [`checked_path`]: turning a requested filesystem path into the *checked path* that is both
//!   matched and used for the I/O (the one place in this crate that touches the filesystem, to
//!   resolve symlinks);
//! - [`policy`] and [`decision`]: the compiled policy and the decisions it hands out, with the
//!   exact rule-reason texts of §6.
//!
//! Nothing here performs the side effect itself, resolves host names or evaluates Rego: callers
//! ask for a [`Decision`] and act on it. No function panics on any input.

pub mod checked_path;
pub mod config;
pub mod decision;
mod glob;
pub mod name_pattern;
mod os_bytes;
pub mod path_pattern;
pub mod policy;
pub mod syntax;
pub mod url_pattern;

pub use checked_path::{CheckedPathError, checked_path, lexical_normalize, resolve_symlinks};
pub use config::{
    EnvPolicyConfig, FsPolicyConfig, HttpPolicyConfig, McpPolicyConfig, PolicyConfig, RegoConfig, ShellPolicyConfig,
};
pub use decision::{Decision, Family, MAX_TARGET_CHARS, truncate_target, violation_text};
pub use name_pattern::NamePattern;
pub use path_pattern::PathPattern;
pub use policy::{Policy, PolicyError, check_mcp_resource, check_mcp_tool};
pub use syntax::{BAD_PATTERN_CODE, PatternError, check_name_patterns, check_policy_syntax};
pub use url_pattern::{NormalizedUrl, UrlPattern, UrlRejection, is_restricted, normalize_url};
