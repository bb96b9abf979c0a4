//! `fs_watch` triggers (07 §10.4): OS events filtered by kind, debounced per path (the last
//! kind wins; a path fires once it has been quiet for `debounce_ms`), fired one run at a time
//! in due-time order.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentd_engine::audit::Level;
use agentd_workflow::FsWatchTrigger;
use notify::event::{EventKind, ModifyKind};
use notify::{RecursiveMode, Watcher};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{errored_reason, fire, now_unix_ms};
use crate::error::{Error, Result};
use crate::state::Shared;

/// Event kinds a trigger can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Create,
    Modify,
    Remove,
    Rename,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Create => "create",
            Kind::Modify => "modify",
            Kind::Remove => "remove",
            Kind::Rename => "rename",
        }
    }

    fn parse(text: &str) -> Option<Kind> {
        match text.to_ascii_lowercase().as_str() {
            "create" => Some(Kind::Create),
            "modify" => Some(Kind::Modify),
            "remove" | "delete" => Some(Kind::Remove),
            "rename" => Some(Kind::Rename),
            _ => None,
        }
    }

    /// The spec kind of an OS event; metadata and access events map to nothing.
    fn of(event: &EventKind) -> Option<Kind> {
        match event {
            EventKind::Create(_) => Some(Kind::Create),
            EventKind::Modify(ModifyKind::Name(_)) => Some(Kind::Rename),
            EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any) => Some(Kind::Modify),
            EventKind::Remove(_) => Some(Kind::Remove),
            _ => None,
        }
    }
}

pub(super) fn start(shared: Arc<Shared>, config: &FsWatchTrigger, stop: CancellationToken) -> Result<()> {
    let path = shared.base_dir.join(&config.path);
    let path =
        std::fs::canonicalize(&path).map_err(|e| Error::Trigger(format!("fs_watch path {}: {e}", path.display())))?;
    let mut filter = Vec::new();
    for name in &config.events {
        let kind = Kind::parse(name).ok_or_else(|| {
            Error::Trigger(format!(
                "fs_watch {}: unknown event `{name}` (create, modify, remove, rename)",
                path.display()
            ))
        })?;
        filter.push(kind);
    }
    let (sender, receiver) = mpsc::unbounded_channel();
    let mut watcher = notify::recommended_watcher(move |event| {
        let _ = sender.send(event);
    })
    .map_err(|e| Error::Trigger(format!("fs_watch {}: watcher: {e}", path.display())))?;
    let mode = if config.recursive { RecursiveMode::Recursive } else { RecursiveMode::NonRecursive };
    watcher.watch(&path, mode).map_err(|e| Error::Trigger(format!("fs_watch {}: {e}", path.display())))?;
    shared.audit(
        Level::Info,
        "fs_watch.started",
        json!({"path": path.display().to_string(), "recursive": config.recursive}),
    );
    let debouncer = Debouncer {
        shared,
        start_node: config.start_node.get_ref().clone(),
        filter,
        quiet: Duration::from_millis(config.debounce_ms.unwrap_or(250)),
        pending: HashMap::new(),
        tick: 0,
    };
    tokio::spawn(async move {
        // The watcher lives as long as the task; dropping it stops the OS watch.
        let _watcher = watcher;
        debouncer.run(receiver, stop).await;
    });
    Ok(())
}

type Events = mpsc::UnboundedReceiver<notify::Result<notify::Event>>;

struct Debouncer {
    shared: Arc<Shared>,
    start_node: String,
    filter: Vec<Kind>,
    quiet: Duration,
    /// Path → (last kind, due time).
    pending: HashMap<PathBuf, (Kind, Instant)>,
    tick: u64,
}

impl Debouncer {
    async fn run(mut self, mut events: Events, stop: CancellationToken) {
        loop {
            let next_due = self.pending.values().map(|(_, due)| *due).min();
            tokio::select! {
                () = stop.cancelled() => return,
                event = events.recv() => match event {
                    Some(event) => self.note(event),
                    None => return,
                },
                () = sleep_until(next_due) => {
                    self.fire_due(&mut events, &stop).await;
                }
            }
        }
    }

    fn note(&mut self, event: notify::Result<notify::Event>) {
        let event = match event {
            Ok(event) => event,
            Err(error) => {
                self.shared.audit(Level::Warn, "fs_watch.event_error", json!({"reason": error.to_string()}));
                return;
            }
        };
        let Some(kind) = Kind::of(&event.kind) else { return };
        if !self.filter.is_empty() && !self.filter.contains(&kind) {
            return;
        }
        let due = Instant::now() + self.quiet;
        for path in event.paths {
            self.pending.insert(path, (kind, due));
        }
    }

    /// Fires every due path, earliest first; events that arrive meanwhile keep debouncing.
    async fn fire_due(&mut self, events: &mut Events, stop: &CancellationToken) {
        loop {
            while let Ok(event) = events.try_recv() {
                self.note(event);
            }
            let now = Instant::now();
            let due = self.pending.iter().filter(|(_, (_, due))| *due <= now).min_by_key(|(_, (_, due))| *due);
            let Some((path, (kind, _))) = due.map(|(p, v)| (p.clone(), *v)) else { return };
            self.pending.remove(&path);
            if stop.is_cancelled() {
                return;
            }
            self.tick += 1;
            self.fire_one(path, kind).await;
        }
    }

    async fn fire_one(&self, path: PathBuf, kind: Kind) {
        let shown = path.display().to_string();
        let tick = self.tick;
        self.shared.audit(
            Level::Info,
            "fs_watch.fire",
            json!({"path": shown, "fs_event": kind.word(), "tick": tick, "start_node": self.start_node}),
        );
        let payload = json!({
            "kind": "fs_watch", "path": shown, "event": kind.word(),
            "fired_at_unix_ms": now_unix_ms(), "tick": tick,
        });
        let started = Instant::now();
        let Some(result) = fire(&self.shared, "fs_watch", &self.start_node, payload).await else { return };
        if let Some(reason) = errored_reason(&result) {
            self.shared.audit(Level::Warn, "fs_watch.error", json!({"path": shown, "tick": tick, "reason": reason}));
        }
        let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.shared.audit(
            Level::Info,
            "fs_watch.completed",
            json!({"path": shown, "tick": tick, "status": result.outcome.status(), "elapsed_ms": elapsed_ms}),
        );
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due.into()).await,
        None => std::future::pending().await,
    }
}
