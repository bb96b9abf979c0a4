//! Authentication of HTTP requests (07 §4): the route reference grammar, the binding tables
//! compiled once per configuration, and verification that yields a principal or a deny reason.
//!
//! Credentials are compared in constant time; deny reasons never contain presented credentials.

mod oidc;
mod simple;
pub mod x509;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use agentd_engine::audit::AuditSink;
use agentd_workflow::{AuthConfig, BasicAuth, BearerAuth, HmacAuth};
use http::HeaderMap;
use serde_json::{Value, json};

use crate::error::Result;
use crate::secrets::SecretLookup;
pub use oidc::OidcBinding;
pub use x509::PeerCertificate;

/// A parsed route `auth` reference (07 §4.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AuthRef {
    /// No authentication.
    Anonymous,
    /// `[auth.bearer.NAME]`.
    Bearer(String),
    /// `[auth.basic.NAME]`.
    Basic(String),
    /// `[auth.hmac.NAME]`.
    Hmac(String),
    /// `[auth.oidc.NAME]`.
    Oidc(String),
    /// A client certificate verified at the TLS layer.
    Mtls,
}

impl AuthRef {
    /// Parses a reference; `None` for an unparseable one (the validator reports `auth_bad_ref`).
    pub fn parse(text: Option<&str>) -> Option<AuthRef> {
        let text = text.unwrap_or("").trim();
        if text.is_empty() || text.eq_ignore_ascii_case("none") {
            return Some(AuthRef::Anonymous);
        }
        let (kind, name) = match text.split_once(':') {
            Some((kind, name)) => {
                let name = name.trim();
                if name.is_empty() {
                    return None;
                }
                (kind, name)
            }
            None => (text, "default"),
        };
        let name = name.to_string();
        match kind {
            "bearer" => Some(AuthRef::Bearer(name)),
            "basic" => Some(AuthRef::Basic(name)),
            "hmac" => Some(AuthRef::Hmac(name)),
            "oidc" => Some(AuthRef::Oidc(name)),
            "mtls" if name == "default" => Some(AuthRef::Mtls),
            _ => None,
        }
    }

    /// The kind word (`bearer`, `mtls`, …) used in audit events and metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            AuthRef::Anonymous => "anonymous",
            AuthRef::Bearer(_) => "bearer",
            AuthRef::Basic(_) => "basic",
            AuthRef::Hmac(_) => "hmac",
            AuthRef::Oidc(_) => "oidc",
            AuthRef::Mtls => "mtls",
        }
    }

    /// The binding name (`""` for anonymous, `default` for mTLS).
    pub fn binding(&self) -> &str {
        match self {
            AuthRef::Anonymous => "",
            AuthRef::Mtls => "default",
            AuthRef::Bearer(name) | AuthRef::Basic(name) | AuthRef::Hmac(name) | AuthRef::Oidc(name) => name,
        }
    }
}

/// Why a request was refused (401).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// The exact reason text of 07 §4.3.
    pub reason: String,
    /// The `www-authenticate` challenge, when the kind has one.
    pub challenge: Option<&'static str>,
}

impl Denied {
    fn bearer(reason: impl Into<String>) -> Denied {
        Denied { reason: reason.into(), challenge: Some("Bearer") }
    }

    fn basic(reason: impl Into<String>) -> Denied {
        Denied { reason: reason.into(), challenge: Some("Basic realm=\"agentd\"") }
    }

    fn plain(reason: impl Into<String>) -> Denied {
        Denied { reason: reason.into(), challenge: None }
    }
}

/// What the request carries that authentication may look at.
pub struct Presented<'a> {
    /// Request headers.
    pub headers: &'a HeaderMap,
    /// Raw body bytes (HMAC).
    pub body: &'a [u8],
    /// The verified client certificate of the connection, when there is one.
    pub peer: Option<&'a PeerCertificate>,
}

/// The auth bindings of one configuration, compiled.
pub struct AuthBindings {
    bearer: HashMap<String, BearerAuth>,
    basic: HashMap<String, BasicAuth>,
    hmac: HashMap<String, HmacAuth>,
    oidc: HashMap<String, Arc<OidcBinding>>,
    secrets: Arc<dyn SecretLookup>,
}

impl AuthBindings {
    /// Compiles `[auth]`: OIDC algorithm lists and key sets are checked and loaded (a `jwks_url`
    /// is fetched now). Relative `jwks_file` paths are resolved against `base_dir`.
    pub async fn build(
        config: Option<&AuthConfig>,
        base_dir: &Path,
        secrets: Arc<dyn SecretLookup>,
        audit: Arc<dyn AuditSink>,
    ) -> Result<AuthBindings> {
        let config = config.cloned().unwrap_or_default();
        let mut oidc = HashMap::new();
        for (name, binding) in &config.oidc {
            let compiled = OidcBinding::build(name, binding, base_dir, audit.clone()).await?;
            oidc.insert(name.clone(), Arc::new(compiled));
        }
        warn_literals(&config, audit.as_ref());
        Ok(AuthBindings {
            bearer: config.bearer.into_iter().collect(),
            basic: config.basic.into_iter().collect(),
            hmac: config.hmac.into_iter().collect(),
            oidc,
            secrets,
        })
    }

    /// Whether `reference` names a declared binding (mTLS and anonymous always resolve).
    pub fn resolves(&self, reference: &AuthRef) -> bool {
        match reference {
            AuthRef::Anonymous | AuthRef::Mtls => true,
            AuthRef::Bearer(name) => self.bearer.contains_key(name),
            AuthRef::Basic(name) => self.basic.contains_key(name),
            AuthRef::Hmac(name) => self.hmac.contains_key(name),
            AuthRef::Oidc(name) => self.oidc.contains_key(name),
        }
    }

    /// The signature header of an HMAC binding (lower-cased), for the expose_headers check.
    pub fn hmac_header(&self, name: &str) -> Option<String> {
        self.hmac.get(name).map(|h| simple::hmac_header_name(h).to_ascii_lowercase())
    }

    /// Stops background work (JWKS refresh tasks) of these bindings.
    pub fn shutdown(&self) {
        for binding in self.oidc.values() {
            binding.shutdown();
        }
    }

    /// Starts background JWKS refreshes for `jwks_url` bindings.
    pub fn start_refresh(&self) {
        for binding in self.oidc.values() {
            binding.start_refresh();
        }
    }

    /// Verifies a request against `reference`; the principal of 07 §4.3 on success.
    pub async fn verify(&self, reference: &AuthRef, presented: &Presented<'_>) -> Result<Value, Denied> {
        let mut principal = match reference {
            AuthRef::Anonymous => json!({"kind": "anonymous", "name": ""}),
            AuthRef::Bearer(name) => {
                let binding = self.bearer.get(name).ok_or_else(|| missing(name))?;
                simple::verify_bearer(name, binding, self.secrets.as_ref(), presented.headers)?
            }
            AuthRef::Basic(name) => {
                let binding = self.basic.get(name).ok_or_else(|| missing(name))?;
                simple::verify_basic(name, binding, self.secrets.as_ref(), presented.headers)?
            }
            AuthRef::Hmac(name) => {
                let binding = self.hmac.get(name).ok_or_else(|| missing(name))?;
                simple::verify_hmac(name, binding, self.secrets.as_ref(), presented)?
            }
            AuthRef::Oidc(name) => {
                let binding = self.oidc.get(name).ok_or_else(|| missing(name))?;
                binding.verify(presented.headers).await?
            }
            AuthRef::Mtls => match presented.peer {
                Some(peer) => json!({"kind": "mtls", "name": peer.fingerprint}),
                None => return Err(Denied::plain("mtls required but no client cert was presented at the TLS layer")),
            },
        };
        if let (Some(peer), Value::Object(fields)) = (presented.peer, &mut principal) {
            if let Some(cn) = &peer.common_name {
                fields.insert("cn".into(), Value::String(cn.clone()));
            }
            if !peer.dns_names.is_empty() {
                fields.insert("sans".into(), json!(peer.dns_names));
            }
        }
        Ok(principal)
    }
}

fn missing(name: &str) -> Denied {
    Denied::plain(format!("auth binding `{name}` is not declared"))
}

/// One startup warning per binding that uses literal credentials (07 §4.2); never the values.
fn warn_literals(config: &AuthConfig, audit: &dyn AuditSink) {
    let mut literal = Vec::new();
    literal.extend(config.bearer.iter().filter(|(_, b)| !b.tokens.is_empty()).map(|(n, _)| ("bearer", n)));
    literal.extend(config.basic.iter().filter(|(_, b)| !b.credentials.is_empty()).map(|(n, _)| ("basic", n)));
    literal.extend(config.hmac.iter().filter(|(_, b)| b.secret.is_some()).map(|(n, _)| ("hmac", n)));
    for (kind, name) in literal {
        audit.emit(
            agentd_engine::audit::Level::Warn,
            "auth.literal_credentials",
            json!({"kind": kind, "binding": name}),
        );
    }
}
