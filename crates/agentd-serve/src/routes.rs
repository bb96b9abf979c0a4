//! The compiled route table (07 §3): everything a request needs is resolved once per
//! configuration, so the request path never parses workflow text.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use agentd_workflow::{HttpRouteConfig, SchemaRef, Workflow};
use http::{HeaderName, HeaderValue};
use serde_json::Value;

use crate::auth::{AuthBindings, AuthRef};
use crate::body::KeySource;
use crate::error::{Error, Result};
use crate::ratelimit::RateLimiter;

/// Default `idempotency_ttl_secs`.
const DEFAULT_IDEMPOTENCY_TTL: Duration = Duration::from_secs(86_400);

/// Request headers that may never be exposed to a workflow.
const SECRET_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie"];

/// Idempotency settings of a route.
pub struct Idempotency {
    /// The spec string, quoted in the 400 text.
    pub spec: String,
    /// Where the key comes from.
    pub source: KeySource,
    /// Replay window (`0` = nothing stored).
    pub ttl: Duration,
}

/// The identity of a rate limit: buckets survive a reload when it is unchanged (05 §8).
#[derive(Debug, Clone, PartialEq)]
pub struct LimitKey {
    method: String,
    path: String,
    capacity: u32,
    per_second: f64,
    per_client: bool,
}

/// One compiled `[[http_routes]]` entry.
pub struct Route {
    /// Upper-cased method.
    pub method: String,
    /// Exact path.
    pub path: String,
    /// Start name.
    pub start_node: String,
    /// Authentication.
    pub auth: AuthRef,
    /// Token bucket, with its identity.
    pub limiter: Option<(LimitKey, Arc<RateLimiter>)>,
    /// Idempotency settings.
    pub idempotency: Option<Idempotency>,
    /// Body cap in bytes.
    pub max_body_bytes: u64,
    /// Exposed request headers (lower-case names).
    pub expose_headers: Vec<HeaderName>,
    /// Compiled `input_schema`.
    pub schema: Option<jsonschema::Validator>,
}

/// All routes of one path.
pub struct PathRoutes {
    routes: Vec<Arc<Route>>,
    allow: HeaderValue,
}

/// What routing found for a request.
pub enum Routed<'a> {
    /// A route.
    Found(&'a Arc<Route>),
    /// The path exists with other methods; the `allow` header value.
    WrongMethod(&'a HeaderValue),
    /// No route has this path.
    NotFound,
}

/// Routes by exact path.
#[derive(Default)]
pub struct RouteTable {
    paths: HashMap<String, PathRoutes>,
    count: usize,
}

impl RouteTable {
    /// Matches method (case-insensitively) and exact path.
    pub fn route(&self, method: &str, path: &str) -> Routed<'_> {
        let Some(entry) = self.paths.get(path) else { return Routed::NotFound };
        match entry.routes.iter().find(|r| r.method.eq_ignore_ascii_case(method)) {
            Some(route) => Routed::Found(route),
            None => Routed::WrongMethod(&entry.allow),
        }
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are no routes.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Every route (for reload bookkeeping).
    pub fn routes(&self) -> impl Iterator<Item = &Arc<Route>> {
        self.paths.values().flat_map(|p| p.routes.iter())
    }

    /// Compiles the routes of `workflow`. `previous` donates rate-limit buckets whose identity is
    /// unchanged; `server_body_cap` is `[server].max_body_bytes`.
    pub fn build(
        workflow: &Workflow,
        auth: &AuthBindings,
        base_dir: &Path,
        server_body_cap: u64,
        previous: Option<&RouteTable>,
    ) -> Result<RouteTable> {
        let mut table = RouteTable::default();
        let mut grouped: HashMap<String, Vec<Arc<Route>>> = HashMap::new();
        for config in &workflow.environment.http_routes {
            let route = compile(config, auth, base_dir, server_body_cap, previous)?;
            grouped.entry(route.path.clone()).or_default().push(Arc::new(route));
            table.count += 1;
        }
        for (path, routes) in grouped {
            let methods: Vec<&str> = routes.iter().map(|r| r.method.as_str()).collect();
            let allow = HeaderValue::from_str(&methods.join(", "))
                .map_err(|_| Error::Route(format!("HTTP route `{path}`: method is not a valid token")))?;
            table.paths.insert(path, PathRoutes { routes, allow });
        }
        Ok(table)
    }

    fn limiter(&self, key: &LimitKey) -> Option<Arc<RateLimiter>> {
        self.routes().filter_map(|r| r.limiter.as_ref()).find(|(k, _)| k == key).map(|(_, l)| l.clone())
    }
}

fn compile(
    config: &HttpRouteConfig,
    auth: &AuthBindings,
    base_dir: &Path,
    server_body_cap: u64,
    previous: Option<&RouteTable>,
) -> Result<Route> {
    let method = config.method.trim().to_ascii_uppercase();
    let name = format!("HTTP route `{method} {}`", config.path);
    let fail = |why: String| Error::Route(format!("{name}: {why}"));
    let auth_ref = AuthRef::parse(config.auth.as_ref().map(|a| a.get_ref().as_str()))
        .filter(|r| auth.resolves(r))
        .ok_or_else(|| fail("auth reference does not name a declared binding".into()))?;
    let limiter = config.rate_limit.as_ref().map(|limit| {
        let limit = limit.get_ref();
        let key = LimitKey {
            method: method.clone(),
            path: config.path.clone(),
            capacity: limit.capacity.unwrap_or(1).clamp(1, i64::from(u32::MAX)) as u32,
            per_second: limit.per_second.unwrap_or(1.0),
            per_client: limit.per.as_deref() == Some("client_ip"),
        };
        let reused = previous.and_then(|p| p.limiter(&key));
        let limiter =
            reused.unwrap_or_else(|| Arc::new(RateLimiter::new(key.capacity, key.per_second, key.per_client)));
        (key, limiter)
    });
    let idempotency = match &config.idempotency_key {
        Some(spec) => Some(Idempotency {
            spec: spec.clone(),
            source: KeySource::parse(spec).map_err(fail)?,
            ttl: config.idempotency_ttl_secs.map_or(DEFAULT_IDEMPOTENCY_TTL, Duration::from_secs),
        }),
        None => None,
    };
    let hmac_header = match &auth_ref {
        AuthRef::Hmac(binding) => auth.hmac_header(binding),
        _ => None,
    };
    let expose_headers = config
        .expose_headers
        .iter()
        .map(|header| expose_header(header, hmac_header.as_deref()).map_err(fail))
        .collect::<Result<Vec<_>>>()?;
    Ok(Route {
        start_node: config.start_node.get_ref().clone(),
        path: config.path.clone(),
        method,
        auth: auth_ref,
        limiter,
        idempotency,
        max_body_bytes: config.max_body_bytes.unwrap_or(server_body_cap).max(1),
        expose_headers,
        schema: config.input_schema.as_ref().map(|s| compile_schema(s, base_dir).map_err(fail)).transpose()?,
    })
}

fn expose_header(name: &str, hmac_header: Option<&str>) -> std::result::Result<HeaderName, String> {
    let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let lower = name.to_ascii_lowercase();
    if !valid {
        return Err(format!("expose_headers: `{name}` is not a header name ([A-Za-z0-9-]+)"));
    }
    if SECRET_HEADERS.contains(&lower.as_str()) || hmac_header == Some(lower.as_str()) {
        return Err(format!("expose_headers: `{name}` carries credentials and cannot be exposed"));
    }
    HeaderName::from_bytes(lower.as_bytes()).map_err(|e| format!("expose_headers: `{name}`: {e}"))
}

fn compile_schema(schema: &SchemaRef, base_dir: &Path) -> std::result::Result<jsonschema::Validator, String> {
    let document: Value = match schema {
        SchemaRef::Inline(map) => Value::Object(map.clone()),
        SchemaRef::File(file) => {
            let path = base_dir.join(file);
            let text = std::fs::read(&path).map_err(|e| format!("input_schema {}: {e}", path.display()))?;
            serde_json::from_slice(&text).map_err(|e| format!("input_schema {}: {e}", path.display()))?
        }
    };
    jsonschema::validator_for(&document).map_err(|e| format!("input_schema does not compile: {e}"))
}
