//! Which environment variables back secrets (04 §4): `read_env` must refuse them whatever the
//! policy says, so secret values never reach node outputs or records.

use std::collections::BTreeSet;

use agentd_workflow::{NodeKind, SecretSource, Workflow};

/// Every environment variable name the workflow consumes as a secret.
pub fn secret_backed_env_names(workflow: &Workflow) -> BTreeSet<String> {
    let env = &workflow.environment;
    let mut names = BTreeSet::new();
    let add = |names: &mut BTreeSet<String>, name: &Option<String>| {
        if let Some(name) = name {
            names.insert(name.clone());
        }
    };
    for secret in &env.secrets {
        match &secret.source {
            SecretSource::Env(s) => add(&mut names, &Some(s.var.clone())),
            SecretSource::OAuth2(s) => {
                add(&mut names, &Some(s.client_id_env.clone()));
                add(&mut names, &Some(s.client_secret_env.clone()));
            }
            SecretSource::File(_) | SecretSource::Command(_) => {}
        }
    }
    for backend in env.intelligence.iter().flat_map(|i| i.backends.iter()) {
        let default_key = match backend.provider.as_str() {
            "anthropic" => Some("ANTHROPIC_API_KEY".to_string()),
            "openai" => Some("OPENAI_API_KEY".to_string()),
            "gemini" => Some("GEMINI_API_KEY".to_string()),
            _ => None,
        };
        add(&mut names, &backend.api_key_env.clone().or(default_key));
        add(&mut names, &backend.bearer_env);
        placeholders(backend.headers.values(), &mut names);
    }
    if let Some(auth) = &env.auth {
        auth.bearer.values().for_each(|b| add(&mut names, &b.tokens_env));
        auth.basic.values().for_each(|b| add(&mut names, &b.credentials_env));
        auth.hmac.values().for_each(|b| add(&mut names, &b.secret_env));
    }
    for server in &env.mcp_servers {
        names.extend(server.env.values().cloned());
        placeholders(server.headers.values(), &mut names);
    }
    if let Some(otel) = env.logging.as_ref().and_then(|l| l.otel.as_ref()) {
        placeholders(otel.headers.values(), &mut names);
    }
    if let Some(store) = &env.store {
        names.extend(store.url_secret.clone());
        names.extend(store.password_secret.clone());
    }
    for node in &workflow.nodes {
        if let NodeKind::HttpRequest(http) = &node.kind {
            placeholders(http.headers.values(), &mut names);
        }
    }
    names
}

/// Adds the NAMEs of `{{secret:NAME}}` placeholders.
fn placeholders<'a>(values: impl Iterator<Item = &'a String>, names: &mut BTreeSet<String>) {
    for value in values {
        let mut rest = value.as_str();
        while let Some(open) = rest.find("{{") {
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else { break };
            if let Some(name) = after[..close].trim().strip_prefix("secret:") {
                names.insert(name.trim().to_string());
            }
            rest = &after[close + 2..];
        }
    }
}
