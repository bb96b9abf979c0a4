//! The `scripted` backend (extension): canned answers read from a file, for examples, tests and
//! the conformance suite.
//!
//! # File format
//!
//! TOML (or JSON when the file name ends in `.json`) with the keys of a conformance scenario's
//! `[[intel.turns]]` (10 §2.4), so turns can be copied between the two:
//!
//! ```toml
//! seed = 7                 # optional: seeds the variant choice (default 0)
//! fault_on_calls = [3]     # optional: these 1-based requests fail with an injected,
//!                          # non-retryable transport fault and consume no turn
//! cycle = false            # optional: after the last turn start again (default: error)
//!
//! [[turns]]                # one entry per successive request, in order
//! content = '{"label": "bug"}'
//! prompt_tokens = 12
//! completion_tokens = 5
//! expect_prompt_contains = ["widget"]   # recorded as a mismatch when absent
//!
//! [[turns]]
//! status = 429             # answer with this status instead of content
//! retry_after_secs = 1     # sent as Retry-After with `status`
//! delay_ms = 50            # wait before answering (meets the real timeouts)
//!
//! [[turns]]
//! variants = [{ content = "yes", completion_tokens = 1 }, { content = "no", completion_tokens = 1 }]
//! ```
//!
//! Every request that reaches the backend takes the next turn, retries and repair rounds
//! included. Variants are picked once, when the script is loaded: one SplitMix64 draw per turn
//! in order (even single-answer turns), index = draw mod variant count (10 §3.3). When no turn is
//! left the request fails, not retryably, with `no canned response enqueued`.
//!
//! The backend sits below the retry layer: `status` answers are retried exactly like provider
//! statuses (06 §6).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::providers::Answer;
use crate::retry::{self, Failure, RandomSource, Retry};
use crate::types::{CompletionRequest, Usage};

/// A script file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// Seed of the variant draws.
    #[serde(default)]
    pub seed: u64,
    /// 1-based request numbers that fail with an injected transport fault.
    #[serde(default)]
    pub fault_on_calls: Vec<u32>,
    /// Start again at the first turn after the last one (instead of failing).
    #[serde(default)]
    pub cycle: bool,
    /// Answers, one per request.
    #[serde(default)]
    pub turns: Vec<Turn>,
}

/// One request's answer (10 §2.4).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Turn {
    /// Answer text (shorthand for a single variant).
    #[serde(default)]
    pub content: String,
    /// Prompt tokens reported with `content`.
    #[serde(default)]
    pub prompt_tokens: u32,
    /// Completion tokens reported with `content`.
    #[serde(default)]
    pub completion_tokens: u32,
    /// Alternatives; non-empty overrides `content`.
    #[serde(default)]
    pub variants: Vec<Variant>,
    /// Answer with this HTTP status instead of content.
    pub status: Option<u16>,
    /// `Retry-After` seconds sent with `status`.
    pub retry_after_secs: Option<u32>,
    /// Delay before answering, in milliseconds.
    pub delay_ms: Option<u64>,
    /// Strings the concatenated request messages must contain.
    pub expect_prompt_contains: Option<OneOrMany>,
}

/// One alternative answer of a turn; `status`, `retry_after_secs` and `delay_ms` override the
/// turn's.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    /// Answer text.
    pub content: String,
    /// Prompt tokens.
    #[serde(default)]
    pub prompt_tokens: u32,
    /// Completion tokens.
    #[serde(default)]
    pub completion_tokens: u32,
    /// Status instead of content.
    pub status: Option<u16>,
    /// `Retry-After` seconds.
    pub retry_after_secs: Option<u32>,
    /// Delay in milliseconds.
    pub delay_ms: Option<u64>,
}

/// A string or a list of strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One string.
    One(String),
    /// Several strings.
    Many(Vec<String>),
}

impl OneOrMany {
    fn to_vec(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// A script that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scripted responses `{path}`: {reason}")]
pub struct ScriptError {
    /// The file.
    pub path: String,
    /// What is wrong (single line).
    pub reason: String,
}

impl Script {
    /// Reads a script file: JSON when the name ends in `.json`, TOML otherwise.
    pub fn load(path: &Path) -> Result<Script, ScriptError> {
        let error = |reason: String| ScriptError { path: path.display().to_string(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        let is_json = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("json"));
        if is_json { Script::from_json(&text) } else { Script::from_toml(&text) }.map_err(error)
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Script, String> {
        toml::from_str(text).map_err(|e| {
            let at = e.span().map(|s| line_column(text, s.start)).unwrap_or_default();
            format!("{at}{}", e.message().replace('\n', " "))
        })
    }

    /// Parses JSON text.
    pub fn from_json(text: &str) -> Result<Script, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }
}

fn line_column(text: &str, offset: usize) -> String {
    // Spans are byte offsets; fall back to the whole text rather than slice inside a character.
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}, column {column}: ")
}

/// The SplitMix64 generator of 10 §3.3 (all arithmetic wrapping).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose state is `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// The next output.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A [`SplitMix64`] shared by the variant draws and the retry jitter of one trial, so the
/// whole trial replays from its seed.
#[derive(Debug)]
pub struct SharedSplitMix64(Mutex<SplitMix64>);

impl SharedSplitMix64 {
    /// Wraps a generator (usually the one the variants were drawn from).
    pub fn new(generator: SplitMix64) -> SharedSplitMix64 {
        SharedSplitMix64(Mutex::new(generator))
    }
}

impl RandomSource for SharedSplitMix64 {
    fn next_u64(&self) -> u64 {
        self.0.lock().map_or_else(|poisoned| poisoned.into_inner().next_u64(), |mut g| g.next_u64())
    }
}

/// FNV-1a 64-bit over bytes.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// Trial seed of trial `index` (0-based) of scenario `name` under suite seed `suite` (10 §3.3).
pub fn trial_seed(suite: u64, name: &str, index: u64) -> u64 {
    let mixed = index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    SplitMix64::new(suite ^ fnv1a64(name.as_bytes()) ^ mixed).next_u64()
}

/// A turn after its variant was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Resolved {
    content: String,
    usage: Usage,
    status: Option<u16>,
    retry_after: Option<Duration>,
    delay: Duration,
    expect: Vec<String>,
}

#[derive(Debug, Default)]
struct State {
    calls: u32,
    next_turn: usize,
    mismatches: Vec<String>,
}

/// A loaded script answering requests. Share it (`Arc`) between backend names to make them
/// consume one turn queue, as the conformance harness does.
#[derive(Debug)]
pub struct ScriptedModel {
    turns: Vec<Resolved>,
    faults: BTreeSet<u32>,
    cycle: bool,
    source: Option<PathBuf>,
    state: Mutex<State>,
}

impl ScriptedModel {
    /// Resolves a script with its own seed.
    pub fn from_script(script: &Script) -> Result<ScriptedModel, String> {
        let mut generator = SplitMix64::new(script.seed);
        ScriptedModel::new(&script.turns, &script.fault_on_calls, script.cycle, &mut generator)
    }

    /// Loads and resolves a script file.
    pub fn load(path: &Path) -> Result<ScriptedModel, ScriptError> {
        let script = Script::load(path)?;
        let mut model = ScriptedModel::from_script(&script)
            .map_err(|reason| ScriptError { path: path.display().to_string(), reason })?;
        model.source = Some(path.to_path_buf());
        Ok(model)
    }

    /// Resolves `turns`, drawing one value per turn from `generator` (10 §3.3). The generator
    /// is left positioned after the draws, ready to serve as retry jitter.
    pub fn new(
        turns: &[Turn],
        faults: &[u32],
        cycle: bool,
        generator: &mut SplitMix64,
    ) -> Result<ScriptedModel, String> {
        if let Some(bad) = faults.iter().find(|n| **n == 0) {
            return Err(format!("fault_on_calls: request numbers start at 1, found {bad}"));
        }
        let mut resolved = Vec::with_capacity(turns.len());
        for (index, turn) in turns.iter().enumerate() {
            let draw = generator.next_u64();
            resolved.push(resolve(turn, draw).map_err(|reason| format!("turn {}: {reason}", index + 1))?);
        }
        Ok(ScriptedModel {
            turns: resolved,
            faults: faults.iter().copied().collect(),
            cycle,
            source: None,
            state: Mutex::new(State::default()),
        })
    }

    /// Requests received so far (faulted ones included).
    pub fn calls(&self) -> u32 {
        self.lock().calls
    }

    /// Turns consumed so far.
    pub fn turns_consumed(&self) -> usize {
        self.lock().next_turn
    }

    /// ``turn <i>: prompt does not contain `<s>` `` lines, in request order.
    pub fn prompt_mismatches(&self) -> Vec<String> {
        self.lock().mismatches.clone()
    }

    /// The file the script came from, if any.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the counters inconsistent; keep going.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes the next turn (or the injected fault) under the lock.
    fn take(&self, prompt: &str) -> Result<Resolved, Failure> {
        let mut state = self.lock();
        state.calls = state.calls.saturating_add(1);
        let call = state.calls;
        if self.faults.contains(&call) {
            return Err(Failure::fatal(format!("scripted: injected transport fault on call {call}")));
        }
        let mut index = state.next_turn;
        if index >= self.turns.len() {
            if !self.cycle || self.turns.is_empty() {
                let scripted = self.turns.len();
                return Err(Failure::fatal(format!(
                    "scripted: no canned response enqueued (request {call}; {scripted} turn(s) scripted)"
                )));
            }
            index %= self.turns.len();
        }
        state.next_turn += 1;
        let turn = self.turns[index].clone();
        for expected in turn.expect.iter().filter(|s| !prompt.contains(s.as_str())) {
            state.mismatches.push(format!("turn {}: prompt does not contain `{expected}`", index + 1));
        }
        Ok(turn)
    }

    /// Answers one request.
    pub(crate) async fn attempt(&self, request: &CompletionRequest) -> Result<Answer, Failure> {
        let turn = self.take(&request.concatenated_content())?;
        if !turn.delay.is_zero() {
            tokio::time::sleep(turn.delay).await;
        }
        match turn.status {
            Some(status) if !(200..300).contains(&status) => {
                let retry =
                    if retry::is_retryable_status(status) { Retry::After(turn.retry_after) } else { Retry::Never };
                Err(Failure {
                    detail: format!("scripted returned {status}: scripted status answer"),
                    status: Some(status),
                    retry,
                })
            }
            _ => Ok(Answer { text: turn.content, usage: turn.usage, model: None }),
        }
    }
}

fn resolve(turn: &Turn, draw: u64) -> Result<Resolved, String> {
    let (content, prompt, completion, status, retry_after, delay) = if turn.variants.is_empty() {
        (&turn.content, turn.prompt_tokens, turn.completion_tokens, turn.status, turn.retry_after_secs, turn.delay_ms)
    } else {
        let count = turn.variants.len() as u64;
        let index = usize::try_from(draw % count).map_err(|_| "too many variants".to_string())?;
        let v = &turn.variants[index];
        (
            &v.content,
            v.prompt_tokens,
            v.completion_tokens,
            v.status.or(turn.status),
            v.retry_after_secs.or(turn.retry_after_secs),
            v.delay_ms.or(turn.delay_ms),
        )
    };
    if let Some(status) = status.filter(|s| !(100..=599).contains(s)) {
        return Err(format!("status {status} is not an HTTP status"));
    }
    Ok(Resolved {
        content: content.clone(),
        usage: Usage { prompt_tokens: prompt.into(), completion_tokens: completion.into() },
        status,
        retry_after: retry_after.map(|s| Duration::from_secs(s.into())),
        delay: Duration::from_millis(delay.unwrap_or(0)),
        expect: turn.expect_prompt_contains.as_ref().map(OneOrMany::to_vec).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_reference_values() {
        // Reference outputs of SplitMix64 seeded with 1234567 (Vigna's splitmix64.c).
        let mut g = SplitMix64::new(1_234_567);
        assert_eq!(g.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(g.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn fnv1a64_reference_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn toml_errors_are_one_line_with_a_position() {
        let err = Script::from_toml("[[turns]]\ncontent = 1\n").unwrap_err();
        assert!(err.starts_with("line 2, column 11: "), "{err}");
        assert!(!err.contains('\n'));
        assert!(Script::from_toml("[[turns]]\nbogus = 1\n").unwrap_err().contains("bogus"));
    }

    #[test]
    fn one_draw_per_turn_picks_variants() {
        let turn = |n: usize| Turn {
            variants: (0..n).map(|i| Variant { content: i.to_string(), ..Variant::default() }).collect(),
            ..Turn::default()
        };
        let turns = [turn(0), turn(3), turn(2)];
        let mut reference = SplitMix64::new(9);
        let draws: Vec<u64> = (0..3).map(|_| reference.next_u64()).collect();
        let mut generator = SplitMix64::new(9);
        let model = ScriptedModel::new(&turns, &[], false, &mut generator).unwrap();
        assert_eq!(generator, reference, "exactly one draw per turn");
        assert_eq!(model.turns[1].content, (draws[1] % 3).to_string());
        assert_eq!(model.turns[2].content, (draws[2] % 2).to_string());
    }
}
