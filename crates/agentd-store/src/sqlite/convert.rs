//! Conversions between Rust values and what SQLite stores: JSON documents as text, unsigned
//! counters as signed 64-bit integers, timestamps and durations as milliseconds.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Attempt, Fail};
use crate::error::Error;

/// JSON text of a value to store.
pub(crate) fn encode(value: &impl Serialize, what: &'static str) -> Attempt<String> {
    serde_json::to_string(value).map_err(|source| Fail::Store(Error::Encode { what, source }))
}

/// JSON text of an optional value; `None` stays SQL `NULL`.
pub(crate) fn encode_optional(value: Option<&impl Serialize>, what: &'static str) -> Attempt<Option<String>> {
    value.map(|value| encode(value, what)).transpose()
}

/// Decodes stored JSON text; text that does not decode means the database content is damaged.
pub(crate) fn decode<T: DeserializeOwned>(text: &str, what: &str) -> Attempt<T> {
    serde_json::from_str(text).map_err(|error| Fail::Decode(format!("stored {what} does not decode: {error}")))
}

/// Decodes optional stored JSON text.
pub(crate) fn decode_optional<T: DeserializeOwned>(text: Option<String>, what: &str) -> Attempt<Option<T>> {
    text.map(|text| decode(&text, what)).transpose()
}

/// An unsigned counter as SQLite's signed integer.
pub(crate) fn to_sql_integer(value: u64, what: &'static str) -> Attempt<i64> {
    i64::try_from(value)
        .map_err(|_| Fail::Store(Error::InvalidInput { what, detail: format!("{value} is larger than {}", i64::MAX) }))
}

/// A stored integer as an unsigned counter.
pub(crate) fn from_sql_integer(value: i64, what: &str) -> Attempt<u64> {
    u64::try_from(value).map_err(|_| Fail::Decode(format!("stored {what} is negative ({value})")))
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn duration_millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Decodes a stored word with `parse`, reporting damage when it is not one of the known words.
pub(crate) fn decode_word<T>(word: &str, what: &str, parse: impl FnOnce(&str) -> Option<T>) -> Attempt<T> {
    parse(word).ok_or_else(|| Fail::Decode(format!("stored {what} `{word}` is not a known value")))
}

/// RFC 3339 UTC with milliseconds, the timestamp format of every stored document (02-data.md).
pub(crate) fn format_timestamp(at: jiff::Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}
