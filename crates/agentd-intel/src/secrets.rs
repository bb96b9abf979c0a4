//! Secret lookup, header placeholders and scrubbing.
//!
//! Backends hold secret *names* only. Values are looked up through [`SecretSource`] for every
//! request (so rotation needs no restart) and dropped when the request ends. Anything a backend
//! sends back is scrubbed of the values used for that request before it enters an error text.

use std::collections::HashMap;

/// Resolves a secret name to its current value (08 §3). Implemented by the runtime's secrets
/// registry; [`EnvSecrets`] and [`StaticSecrets`] cover the simple cases.
pub trait SecretSource: Send + Sync {
    /// The current value of `name`, or `None` when it cannot be resolved.
    fn get(&self, name: &str) -> Option<String>;
}

/// Secrets read from the process environment (non-empty values only).
#[derive(Debug, Clone, Copy, Default)]
pub struct EnvSecrets;

impl SecretSource for EnvSecrets {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

/// A fixed map of secrets (tests, embedding).
#[derive(Clone, Default)]
pub struct StaticSecrets(HashMap<String, String>);

impl StaticSecrets {
    /// Builds the map from `(name, value)` pairs.
    pub fn new<N: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (N, V)>) -> StaticSecrets {
        StaticSecrets(pairs.into_iter().map(|(n, v)| (n.into(), v.into())).collect())
    }
}

impl std::fmt::Debug for StaticSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&String> = self.0.keys().collect();
        f.debug_struct("StaticSecrets").field("names", &names).finish_non_exhaustive()
    }
}

impl SecretSource for StaticSecrets {
    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).cloned()
    }
}

/// One piece of a header value template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeaderPart {
    /// Sent as written.
    Literal(String),
    /// `{{secret:NAME}}`, resolved per request.
    Secret(String),
}

/// A header value: literals with only `{{secret:NAME}}` placeholders (06 §2 `headers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeaderTemplate(Vec<HeaderPart>);

impl HeaderTemplate {
    /// Parses a value; any placeholder other than `{{secret:NAME}}` is refused.
    pub(crate) fn parse(value: &str) -> Result<HeaderTemplate, String> {
        let mut parts = Vec::new();
        let mut rest = value;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(HeaderPart::Literal(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let close = after.find("}}").ok_or("unclosed `{{` placeholder")?;
            let inner = after[..close].trim();
            let name =
                inner.strip_prefix("secret:").map(str::trim).filter(|n| !n.is_empty()).ok_or_else(|| {
                    format!("only {{{{secret:NAME}}}} placeholders are allowed, found `{{{{{inner}}}}}`")
                })?;
            parts.push(HeaderPart::Secret(name.to_string()));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(HeaderPart::Literal(rest.to_string()));
        }
        Ok(HeaderTemplate(parts))
    }

    /// Secret names the value refers to.
    pub(crate) fn secret_names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|p| match p {
            HeaderPart::Secret(name) => Some(name.as_str()),
            HeaderPart::Literal(_) => None,
        })
    }

    /// Renders the value, recording every secret value used in `scrubber`.
    pub(crate) fn render(&self, secrets: &dyn SecretSource, scrubber: &mut Scrubber) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.0 {
            match part {
                HeaderPart::Literal(text) => out.push_str(text),
                HeaderPart::Secret(name) => {
                    let value = resolve(secrets, name)?;
                    out.push_str(&value);
                    scrubber.add(value);
                }
            }
        }
        Ok(out)
    }
}

/// Resolves `name` or explains why not (no value in the text, only the name).
pub(crate) fn resolve(secrets: &dyn SecretSource, name: &str) -> Result<String, String> {
    secrets.get(name).ok_or_else(|| format!("secret `{name}` could not be resolved"))
}

/// Secret values used by one request; replaces them in any text before it leaves the backend.
#[derive(Default)]
pub(crate) struct Scrubber {
    values: Vec<String>,
}

impl Scrubber {
    /// Remembers a value. Values under 4 bytes cannot be scrubbed reliably (08 §6) and are
    /// skipped, like the rest of the runtime does.
    pub(crate) fn add(&mut self, value: impl Into<String>) {
        let value = value.into();
        if value.len() >= 4 {
            self.values.push(value);
        }
    }

    /// `text` with every remembered value replaced by `<redacted>`.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for value in &self.values {
            if out.contains(value.as_str()) {
                out = out.replace(value.as_str(), "<redacted>");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_template_accepts_only_secret_placeholders() {
        let t = HeaderTemplate::parse("Bearer {{secret:TOKEN}}!").unwrap();
        assert_eq!(t.secret_names().collect::<Vec<_>>(), ["TOKEN"]);
        let secrets = StaticSecrets::new([("TOKEN", "abcd1234")]);
        let mut scrubber = Scrubber::default();
        assert_eq!(t.render(&secrets, &mut scrubber).unwrap(), "Bearer abcd1234!");
        assert_eq!(scrubber.scrub("x abcd1234 y"), "x <redacted> y");
        assert!(HeaderTemplate::parse("{{input.x}}").unwrap_err().contains("only"));
        assert!(HeaderTemplate::parse("a {{secret:X").unwrap_err().contains("unclosed"));
        assert!(HeaderTemplate::parse("{{secret: }}").is_err());
    }

    #[test]
    fn missing_secret_names_the_secret_only() {
        let t = HeaderTemplate::parse("{{secret:NOPE}}").unwrap();
        let err = t.render(&StaticSecrets::default(), &mut Scrubber::default()).unwrap_err();
        assert_eq!(err, "secret `NOPE` could not be resolved");
    }
}
