//! Secret lookup for auth bindings (07 §4.2): names are resolved on every request so that a
//! rotated secret takes effect without a reload.

use std::collections::HashMap;
use std::sync::RwLock;

/// Resolves a secret NAME (`tokens_env`, `credentials_env`, `secret_env`) to its value.
///
/// The CLI passes one backed by the workflow's `[[secrets]]` registry and the environment. A
/// name that does not resolve contributes nothing to the binding.
pub trait SecretLookup: Send + Sync {
    /// The value of `name`, or `None` when it does not resolve (unset or empty counts as unset).
    fn resolve(&self, name: &str) -> Option<String>;
}

/// Reads secrets from process environment variables of the same name.
#[derive(Debug, Default, Clone, Copy)]
pub struct EnvSecrets;

impl SecretLookup for EnvSecrets {
    fn resolve(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|value| !value.is_empty())
    }
}

/// An in-memory secret table (tests, embedding); values can be replaced to simulate rotation.
#[derive(Debug, Default)]
pub struct MapSecrets {
    values: RwLock<HashMap<String, String>>,
}

impl MapSecrets {
    /// An empty table.
    pub fn new() -> MapSecrets {
        MapSecrets::default()
    }

    /// Sets (or replaces) one secret.
    pub fn set(&self, name: &str, value: &str) {
        if let Ok(mut values) = self.values.write() {
            values.insert(name.to_string(), value.to_string());
        }
    }
}

impl SecretLookup for MapSecrets {
    fn resolve(&self, name: &str) -> Option<String> {
        let values = self.values.read().ok()?;
        values.get(name).filter(|value| !value.is_empty()).cloned()
    }
}
