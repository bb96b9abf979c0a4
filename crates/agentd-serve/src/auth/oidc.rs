//! OIDC / JWT bearer verification (07 §4.4): static or live JWKS, the algorithm allowlist, and
//! the normative check order whose first failure names the deny code.
//!
//! Algorithm confusion is closed three ways: the allowlist never contains `none` or `HS*`, the
//! JWK's own `alg` must equal the token's, and the key type must fit the algorithm family before
//! any signature check runs, so a public key can never be used as an HMAC secret.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use agentd_engine::audit::{AuditSink, Level};
use agentd_workflow::OidcAuth;
use base64::Engine as _;
use http::HeaderMap;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use super::Denied;
use crate::error::{Error, Result};

/// Largest JWKS document accepted from a `jwks_url`.
const JWKS_BODY_CAP: usize = 1024 * 1024;

/// The key families a JWK can carry, as far as algorithm fit is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyType {
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
}

impl KeyType {
    fn fits(self, algorithm: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            KeyType::Rsa => matches!(algorithm, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            KeyType::EcP256 => algorithm == ES256,
            KeyType::EcP384 => algorithm == ES384,
            KeyType::Ed25519 => algorithm == EdDSA,
        }
    }
}

/// One usable verification key.
struct StoredKey {
    key: DecodingKey,
    /// The JWK's own `alg`, when it declares one.
    algorithm: Option<String>,
    key_type: KeyType,
}

/// Keys by `kid` (`default` for keys without one).
struct KeySet {
    keys: HashMap<String, Arc<StoredKey>>,
}

/// Where the keys come from.
enum KeySource {
    /// `jwks_file` / `jwks_json`: read at build (and reload) time.
    Static,
    /// `jwks_url`: fetched at startup, refreshed in the background and on unknown `kid`.
    Url { url: String, client: reqwest::Client, refresh: Duration, min_refresh: Duration, timeout: Duration },
}

/// A compiled `[auth.oidc.NAME]` binding.
pub struct OidcBinding {
    name: String,
    issuer: String,
    audience: Vec<String>,
    subject_allowlist: Vec<String>,
    skew_secs: u64,
    algorithms: Vec<(String, Algorithm)>,
    expose_claims: Vec<String>,
    source: KeySource,
    keys: RwLock<Arc<KeySet>>,
    /// Held while a fetch runs (one in flight per binding); holds when the last one started.
    fetch: tokio::sync::Mutex<Option<Instant>>,
    audit: Arc<dyn AuditSink>,
    stop: CancellationToken,
}

impl OidcBinding {
    /// Checks the binding and loads its keys (fetching a `jwks_url` now).
    pub async fn build(
        name: &str,
        config: &OidcAuth,
        base_dir: &Path,
        audit: Arc<dyn AuditSink>,
    ) -> Result<OidcBinding> {
        let fail = |why: String| Error::Auth(format!("auth.oidc.{name}: {why}"));
        let issuer =
            config.issuer.clone().filter(|i| !i.is_empty()).ok_or_else(|| fail("`issuer` is required".into()))?;
        let algorithms = parse_algorithms(&config.algorithms).map_err(fail)?;
        let sources = [config.jwks_file.is_some(), config.jwks_json.is_some(), config.jwks_url.is_some()]
            .iter()
            .filter(|s| **s)
            .count();
        if sources != 1 {
            return Err(fail("exactly one of `jwks_file`, `jwks_json` and `jwks_url` must be set".into()));
        }
        let mut source = KeySource::Static;
        let initial = if let Some(json) = &config.jwks_json {
            parse_jwks(json.as_bytes()).map_err(fail)?
        } else if let Some(file) = &config.jwks_file {
            let path = base_dir.join(file);
            let bytes =
                std::fs::read(&path).map_err(|e| fail(format!("cannot read jwks_file {}: {e}", path.display())))?;
            parse_jwks(&bytes).map_err(fail)?
        } else {
            let url = config.jwks_url.clone().unwrap_or_default();
            check_jwks_url(&url).map_err(fail)?;
            let timeout = Duration::from_secs(config.jwks_timeout_secs.unwrap_or(5).max(1));
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(timeout)
                .build()
                .map_err(|e| fail(format!("cannot build the JWKS client: {e}")))?;
            let keys =
                fetch_jwks(&client, &url).await.map_err(|why| fail(format!("JWKS fetch from {url} failed: {why}")))?;
            source = KeySource::Url {
                url,
                client,
                refresh: Duration::from_secs(config.jwks_refresh_secs.unwrap_or(3600).max(1)),
                min_refresh: Duration::from_secs(config.jwks_min_refresh_secs.unwrap_or(60)),
                timeout,
            };
            keys
        };
        let fetched_at = matches!(source, KeySource::Url { .. }).then(Instant::now);
        Ok(OidcBinding {
            name: name.to_string(),
            issuer,
            audience: config.audience.clone(),
            subject_allowlist: config.subject_allowlist.clone(),
            skew_secs: config.clock_skew_secs.unwrap_or(60),
            algorithms,
            expose_claims: config.expose_claims.clone(),
            source,
            keys: RwLock::new(Arc::new(initial)),
            fetch: tokio::sync::Mutex::new(fetched_at),
            audit,
            stop: CancellationToken::new(),
        })
    }

    /// Starts the periodic refresh of a `jwks_url` binding (no-op for static keys).
    pub fn start_refresh(self: &Arc<Self>) {
        let KeySource::Url { refresh, min_refresh, .. } = &self.source else { return };
        let (refresh, min_refresh) = (*refresh, *min_refresh);
        let weak = Arc::downgrade(self);
        let stop = self.stop.clone();
        tokio::spawn(async move {
            let mut wait = refresh;
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(wait) => {}
                }
                let Some(binding) = weak.upgrade() else { return };
                let mut last = binding.fetch.lock().await;
                wait = if binding.refresh_locked(&mut last).await {
                    refresh
                } else {
                    min_refresh.max(Duration::from_secs(1))
                };
            }
        });
    }

    /// Stops the refresh task.
    pub fn shutdown(&self) {
        self.stop.cancel();
    }

    /// Fetches the JWKS while holding the fetch lock; keeps the current keys on failure.
    async fn refresh_locked(&self, last: &mut Option<Instant>) -> bool {
        let KeySource::Url { url, client, timeout, .. } = &self.source else { return false };
        *last = Some(Instant::now());
        let result = match tokio::time::timeout(*timeout, fetch_jwks(client, url)).await {
            Ok(result) => result,
            Err(_) => Err("timed out".to_string()),
        };
        match result {
            Ok(keys) => {
                let count = keys.keys.len();
                if let Ok(mut slot) = self.keys.write() {
                    *slot = Arc::new(keys);
                }
                self.audit.emit(Level::Info, "oidc.jwks_refreshed", json!({"binding": self.name, "keys": count}));
                true
            }
            Err(reason) => {
                self.audit.emit(
                    Level::Warn,
                    "oidc.jwks_refresh_failed",
                    json!({"binding": self.name, "reason": reason}),
                );
                false
            }
        }
    }

    fn current_keys(&self) -> Arc<KeySet> {
        match self.keys.read() {
            Ok(keys) => keys.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Verifies the request's bearer JWT; the principal on success.
    pub async fn verify(&self, headers: &HeaderMap) -> Result<Value, Denied> {
        match self.check(headers).await {
            Ok((claims, subject)) => {
                self.audit.emit(
                    Level::Info,
                    "oidc.verified",
                    json!({"binding": self.name, "issuer": self.issuer, "subject": subject}),
                );
                Ok(self.principal(&claims, subject))
            }
            Err(code) => {
                self.audit.emit(Level::Warn, "oidc.denied", json!({"binding": self.name, "code": code}));
                Err(Denied { reason: format!("oidc.{code}"), challenge: Some("Bearer") })
            }
        }
    }

    fn principal(&self, claims: &Map<String, Value>, subject: Option<String>) -> Value {
        let name = subject.unwrap_or_else(|| self.issuer.clone());
        let mut principal = json!({"kind": "oidc", "name": name});
        if !self.expose_claims.is_empty() {
            let exposed: Map<String, Value> =
                self.expose_claims.iter().filter_map(|c| claims.get(c).map(|v| (c.clone(), v.clone()))).collect();
            principal["claims"] = Value::Object(exposed);
        }
        principal
    }

    /// The check order of 07 §4.4; `Err` carries the deny code.
    async fn check(&self, headers: &HeaderMap) -> Result<(Map<String, Value>, Option<String>), &'static str> {
        let token = bearer_token(headers).ok_or("missing-bearer")?;
        let (alg_name, kid) = token_header(token).ok_or("malformed")?;
        let algorithm = self
            .algorithms
            .iter()
            .find(|(name, _)| *name == alg_name)
            .map(|(_, a)| *a)
            .ok_or("algorithm-not-allowed")?;
        let key = self.key_for(kid.as_deref()).await.ok_or("unknown-kid")?;
        if key.algorithm.as_deref().is_some_and(|a| a != alg_name) || !key.key_type.fits(algorithm) {
            return Err("bad-algorithm");
        }
        let claims = verify_signature(token, &key.key, algorithm)?;
        self.check_claims(claims)
    }

    fn check_claims(&self, claims: Value) -> Result<(Map<String, Value>, Option<String>), &'static str> {
        let Value::Object(claims) = claims else { return Err("invalid") };
        let now = jiff::Timestamp::now().as_second() as f64;
        let skew = self.skew_secs as f64;
        let exp = claims.get("exp").ok_or("invalid")?.as_f64().ok_or("invalid")?;
        if exp + skew <= now {
            return Err("expired");
        }
        if let Some(nbf) = claims.get("nbf")
            && nbf.as_f64().ok_or("invalid")? - skew > now
        {
            return Err("not-yet-valid");
        }
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err("bad-issuer");
        }
        if !self.audience.is_empty() && !audience_matches(claims.get("aud"), &self.audience) {
            return Err("bad-audience");
        }
        let subject = match claims.get("sub") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err("invalid"),
        };
        if !self.subject_allowlist.is_empty() && !subject.as_ref().is_some_and(|s| self.subject_allowlist.contains(s)) {
            return Err("subject-not-allowed");
        }
        Ok((claims, subject))
    }

    /// The key for `kid`, refreshing a live JWKS once when the kid is unknown (07 §4.4).
    async fn key_for(&self, kid: Option<&str>) -> Option<Arc<StoredKey>> {
        if let Some(key) = lookup(&self.current_keys(), kid) {
            return Some(key);
        }
        let KeySource::Url { min_refresh, .. } = &self.source else { return None };
        let mut last = self.fetch.lock().await;
        // A fetch that finished while we waited for the lock may already have the key.
        if let Some(key) = lookup(&self.current_keys(), kid) {
            return Some(key);
        }
        if last.is_some_and(|started| started.elapsed() < *min_refresh) {
            return None;
        }
        self.refresh_locked(&mut last).await;
        lookup(&self.current_keys(), kid)
    }
}

fn lookup(keys: &KeySet, kid: Option<&str>) -> Option<Arc<StoredKey>> {
    match kid {
        Some(kid) => keys.keys.get(kid).cloned(),
        None if keys.keys.len() == 1 => keys.keys.values().next().cloned(),
        None => None,
    }
}

fn audience_matches(aud: Option<&Value>, accepted: &[String]) -> bool {
    match aud {
        Some(Value::String(a)) => accepted.contains(a),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).any(|a| accepted.iter().any(|x| x == a)),
        _ => false,
    }
}

/// The token after a case-insensitive `Bearer` scheme.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let text = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = text.split_at_checked(6)?;
    if !scheme.eq_ignore_ascii_case("bearer") || !rest.starts_with(' ') {
        return None;
    }
    Some(rest.trim()).filter(|t| !t.is_empty())
}

/// `alg` and `kid` of the JOSE header, parsed by hand so that any `alg` text (including
/// `none`) reaches the allowlist check instead of failing as malformed.
fn token_header(token: &str) -> Option<(String, Option<String>)> {
    let mut parts = token.split('.');
    let (header, _, _) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).ok()?;
    let Value::Object(fields) = serde_json::from_slice::<Value>(&bytes).ok()? else { return None };
    let alg = fields.get("alg")?.as_str()?.to_string();
    let kid = match fields.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return None,
    };
    Some((alg, kid))
}

/// Signature check with the one allowed algorithm; claims are checked afterwards by hand so
/// each failure gets its own code.
fn verify_signature(token: &str, key: &DecodingKey, algorithm: Algorithm) -> Result<Value, &'static str> {
    let mut validation = Validation::new(algorithm);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    match jsonwebtoken::decode::<Value>(token, key, &validation) {
        Ok(data) => Ok(data.claims),
        Err(error) => Err(match error.kind() {
            ErrorKind::InvalidSignature | ErrorKind::InvalidEcdsaKey | ErrorKind::InvalidRsaKey(_) => "bad-signature",
            ErrorKind::InvalidToken | ErrorKind::Base64(_) => "malformed",
            _ => "invalid",
        }),
    }
}

/// Parses `algorithms` (default `RS256`); `none`, `HS*` and unknown names are refused.
fn parse_algorithms(names: &[String]) -> std::result::Result<Vec<(String, Algorithm)>, String> {
    let names: Vec<String> = if names.is_empty() { vec!["RS256".to_string()] } else { names.to_vec() };
    names
        .into_iter()
        .map(|name| {
            let algorithm = match name.as_str() {
                "RS256" => Algorithm::RS256,
                "RS384" => Algorithm::RS384,
                "RS512" => Algorithm::RS512,
                "PS256" => Algorithm::PS256,
                "PS384" => Algorithm::PS384,
                "PS512" => Algorithm::PS512,
                "ES256" => Algorithm::ES256,
                "ES384" => Algorithm::ES384,
                "EdDSA" => Algorithm::EdDSA,
                other => {
                    return Err(format!(
                        "algorithm `{other}` is not allowed (use RS256/384/512, PS256/384/512, ES256/384 or EdDSA)"
                    ));
                }
            };
            Ok((name, algorithm))
        })
        .collect()
}

/// `https://`, or `http://` to a loopback host.
fn check_jwks_url(url: &str) -> std::result::Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("jwks_url `{url}` is not a URL: {e}"))?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(host)) => host.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    };
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(format!("jwks_url `{url}` must use https:// (http:// only to a loopback address)")),
    }
}

/// GETs a JWKS with a body cap and no redirects.
async fn fetch_jwks(client: &reqwest::Client, url: &str) -> std::result::Result<KeySet, String> {
    let mut response = client
        .get(url)
        .header(http::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP status {}", response.status().as_u16()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| e.without_url().to_string())? {
        if body.len() + chunk.len() > JWKS_BODY_CAP {
            return Err("JWKS document exceeds 1 MiB".to_string());
        }
        body.extend_from_slice(&chunk);
    }
    parse_jwks(&body)
}

/// The usable signature keys of a JWKS document; zero usable keys is an error.
fn parse_jwks(bytes: &[u8]) -> std::result::Result<KeySet, String> {
    let document: Value = serde_json::from_slice(bytes).map_err(|e| format!("JWKS is not valid JSON: {e}"))?;
    let entries = document.get("keys").and_then(Value::as_array).ok_or("JWKS has no `keys` array")?;
    let mut keys = HashMap::new();
    for entry in entries {
        if let Some((kid, key)) = usable_key(entry) {
            keys.insert(kid, Arc::new(key));
        }
    }
    if keys.is_empty() {
        return Err("JWKS has no usable signature keys".to_string());
    }
    Ok(KeySet { keys })
}

fn usable_key(entry: &Value) -> Option<(String, StoredKey)> {
    if entry.get("use").is_some_and(|u| u.as_str() != Some("sig")) {
        return None;
    }
    let curve = entry.get("crv").and_then(Value::as_str);
    let key_type = match (entry.get("kty")?.as_str()?, curve) {
        ("RSA", _) => KeyType::Rsa,
        ("EC", Some("P-256")) => KeyType::EcP256,
        ("EC", Some("P-384")) => KeyType::EcP384,
        ("OKP", Some("Ed25519")) => KeyType::Ed25519,
        _ => return None,
    };
    let jwk: Jwk = serde_json::from_value(entry.clone()).ok()?;
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    let kid = entry.get("kid").and_then(Value::as_str).unwrap_or("default").to_string();
    let algorithm = entry.get("alg").and_then(Value::as_str).map(str::to_string);
    Some((kid, StoredKey { key, algorithm, key_type }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlist_refuses_none_and_hmac() {
        assert!(parse_algorithms(&["none".into()]).is_err());
        assert!(parse_algorithms(&["HS256".into()]).is_err());
        assert_eq!(parse_algorithms(&[]).expect("default")[0].1, Algorithm::RS256);
    }

    #[test]
    fn jwks_urls_need_https_except_loopback() {
        assert!(check_jwks_url("https://idp.example/jwks").is_ok());
        assert!(check_jwks_url("http://localhost:8080/jwks").is_ok());
        assert!(check_jwks_url("http://127.0.0.1:8080/jwks").is_ok());
        assert!(check_jwks_url("http://idp.example/jwks").is_err());
    }

    #[test]
    fn symmetric_keys_are_skipped() {
        let jwks = r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#;
        assert!(parse_jwks(jwks.as_bytes()).is_err());
    }
}
