//! Bearer, Basic and HMAC verification (07 §4.3).
//!
//! Tokens and credentials are compared through SHA-256 digests with `subtle`, against every
//! configured entry without an early exit, so neither the length nor the position of a match
//! leaks through timing.

use agentd_workflow::{BasicAuth, BearerAuth, HmacAuth};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{Denied, Presented};
use crate::secrets::SecretLookup;

/// Default HMAC signature header.
const DEFAULT_HMAC_HEADER: &str = "X-Agent-Signature";
/// Default HMAC prefix.
const DEFAULT_HMAC_PREFIX: &str = "sha256=";

/// The configured signature header name of an HMAC binding.
pub(super) fn hmac_header_name(binding: &HmacAuth) -> &str {
    binding.header.as_deref().unwrap_or(DEFAULT_HMAC_HEADER)
}

/// The credential after `scheme` in the `authorization` header.
fn credential<'h>(headers: &'h HeaderMap, scheme: &str, wrong_scheme: fn(String) -> Denied) -> Result<&'h str, Denied> {
    let header =
        headers.get(http::header::AUTHORIZATION).ok_or_else(|| wrong_scheme("missing Authorization header".into()))?;
    let text =
        header.to_str().map_err(|_| wrong_scheme(format!("Authorization header does not use {scheme} scheme")))?;
    let not_scheme = || wrong_scheme(format!("Authorization header does not use {scheme} scheme"));
    let (word, rest) = text.split_at_checked(scheme.len()).ok_or_else(not_scheme)?;
    if !word.eq_ignore_ascii_case(scheme) || !rest.starts_with(' ') {
        return Err(not_scheme());
    }
    Ok(rest.trim())
}

/// True when `presented` equals one of `candidates`; every candidate is compared.
fn matches_any<'a>(presented: &str, candidates: impl Iterator<Item = &'a str>) -> bool {
    let digest = Sha256::digest(presented.as_bytes());
    let mut found = subtle::Choice::from(0u8);
    for candidate in candidates {
        found |= digest.ct_eq(&Sha256::digest(candidate.as_bytes()));
    }
    found.into()
}

/// Literal entries plus the newline-separated lines of the secret, blank entries dropped.
fn entries(literals: &[String], secret: Option<String>) -> Vec<String> {
    let mut all: Vec<String> = literals.iter().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect();
    if let Some(value) = secret {
        all.extend(value.lines().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()));
    }
    all
}

/// `authorization: Bearer <token>`.
pub(super) fn verify_bearer(
    name: &str,
    binding: &BearerAuth,
    secrets: &dyn SecretLookup,
    headers: &HeaderMap,
) -> Result<Value, Denied> {
    let token = credential(headers, "Bearer", Denied::bearer)?;
    if token.is_empty() {
        return Err(Denied::bearer("Bearer token is empty"));
    }
    let tokens = entries(&binding.tokens, binding.tokens_env.as_deref().and_then(|n| secrets.resolve(n)));
    if tokens.is_empty() {
        return Err(Denied::bearer(format!("bearer binding `{name}` has no tokens configured")));
    }
    if !matches_any(token, tokens.iter().map(String::as_str)) {
        return Err(Denied::bearer("bearer token does not match"));
    }
    Ok(json!({"kind": "bearer", "name": name}))
}

/// `authorization: Basic <base64(user:pass)>` with strict standard base64.
pub(super) fn verify_basic(
    name: &str,
    binding: &BasicAuth,
    secrets: &dyn SecretLookup,
    headers: &HeaderMap,
) -> Result<Value, Denied> {
    let encoded = credential(headers, "Basic", Denied::basic)?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| Denied::basic("Basic credentials are not valid base64"))?;
    let pair = String::from_utf8(decoded).map_err(|_| Denied::basic("Basic credentials decode to invalid UTF-8"))?;
    let credentials =
        entries(&binding.credentials, binding.credentials_env.as_deref().and_then(|n| secrets.resolve(n)));
    if credentials.is_empty() {
        return Err(Denied::basic(format!("basic binding `{name}` has no credentials configured")));
    }
    if !matches_any(&pair, credentials.iter().map(String::as_str)) {
        return Err(Denied::basic("basic credentials do not match"));
    }
    let user = pair.split_once(':').map_or(pair.as_str(), |(user, _)| user);
    Ok(json!({"kind": "basic", "name": user}))
}

/// HMAC-SHA256 of the raw body, hex in the configured header after the prefix.
pub(super) fn verify_hmac(
    name: &str,
    binding: &HmacAuth,
    secrets: &dyn SecretLookup,
    presented: &Presented<'_>,
) -> Result<Value, Denied> {
    let header_name = hmac_header_name(binding);
    let prefix = binding.prefix.as_deref().unwrap_or(DEFAULT_HMAC_PREFIX);
    let value = presented
        .headers
        .get(header_name)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Denied::plain(format!("missing signature header `{header_name}`")))?;
    let hex_digest = value
        .trim()
        .strip_prefix(prefix)
        .ok_or_else(|| Denied::plain(format!("signature header `{header_name}` missing expected prefix `{prefix}`")))?;
    let signature = hex::decode(hex_digest.trim())
        .map_err(|_| Denied::plain(format!("signature header `{header_name}` is not valid hex")))?;
    let secret = binding
        .secret_env
        .as_deref()
        .and_then(|n| secrets.resolve(n))
        .or_else(|| binding.secret.clone().filter(|s| !s.is_empty()))
        .ok_or_else(|| Denied::plain(format!("hmac binding `{name}` has no secret configured")))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|_| Denied::plain(format!("hmac binding `{name}` has no secret configured")))?;
    mac.update(presented.body);
    mac.verify_slice(&signature).map_err(|_| Denied::plain("signature does not match"))?;
    Ok(json!({"kind": "hmac", "name": name}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: &str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert(http::header::AUTHORIZATION, auth.parse().expect("header"));
        map
    }

    struct NoSecrets;
    impl SecretLookup for NoSecrets {
        fn resolve(&self, _: &str) -> Option<String> {
            None
        }
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_tokens_trimmed() {
        let binding = BearerAuth { tokens_env: None, tokens: vec!["abc".into()] };
        assert!(verify_bearer("ops", &binding, &NoSecrets, &headers("bEaReR   abc ")).is_ok());
        let denied = verify_bearer("ops", &binding, &NoSecrets, &headers("Bearer abd")).unwrap_err();
        assert_eq!(denied.reason, "bearer token does not match");
        let denied = verify_bearer("ops", &binding, &NoSecrets, &headers("Token abc")).unwrap_err();
        assert_eq!(denied.reason, "Authorization header does not use Bearer scheme");
        let denied = verify_bearer("ops", &binding, &NoSecrets, &headers("Bearer  ")).unwrap_err();
        assert_eq!(denied.reason, "Bearer token is empty");
        let empty = BearerAuth::default();
        let denied = verify_bearer("ops", &empty, &NoSecrets, &headers("Bearer x")).unwrap_err();
        assert_eq!(denied.reason, "bearer binding `ops` has no tokens configured");
    }

    #[test]
    fn basic_requires_strict_base64() {
        let binding = BasicAuth { credentials_env: None, credentials: vec!["ada:pw1".into()] };
        let good = base64::engine::general_purpose::STANDARD.encode("ada:pw1");
        let principal = verify_basic("b", &binding, &NoSecrets, &headers(&format!("Basic {good}"))).expect("ok");
        assert_eq!(principal, json!({"kind": "basic", "name": "ada"}));
        let unpadded = good.trim_end_matches('=');
        let denied = verify_basic("b", &binding, &NoSecrets, &headers(&format!("Basic {unpadded}"))).unwrap_err();
        assert_eq!(denied.reason, "Basic credentials are not valid base64");
    }
}
