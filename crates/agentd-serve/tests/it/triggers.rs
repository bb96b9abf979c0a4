//! Scheduled and file-watch triggers.

use std::time::Duration;

use agentd_workflow::schedule::{CronSchedule, parse_timezone};
use serde_json::Value;

use crate::support::{Setup, eventually, start_in};

const GRAPH: &str = r#"
[[start_nodes]]
name = "tick"
source = "event"
entry_node = "echo"

[[nodes]]
id = "echo"
type = "json_select"
input_from = "trigger"
path = ""
"#;

fn fires(server: &crate::support::TestServer, event: &str) -> Vec<Value> {
    server.audit.events().into_iter().filter(|(_, name, _)| name == event).map(|(_, _, fields)| fields).collect()
}

#[tokio::test]
async fn interval_fires_serially_with_ticks() {
    let setup = Setup { listen: false, ..Setup::default() };
    let text = format!(
        "name = \"interval_wf\"\n{GRAPH}\n[[triggers]]\ntype = \"interval\"\nevery = \"1s\"\nstart_node = \"tick\"\n"
    );
    let server = start_in(move |_| text, setup).await.expect("start");
    eventually(|| fires(&server, "cron.completed").len() >= 2).await;
    let completed = fires(&server, "cron.completed");
    assert_eq!(completed[0]["kind"], "interval");
    assert_eq!(completed[0]["tick"], 1);
    assert_eq!(completed[0]["status"], "completed");
    assert_eq!(completed[1]["tick"], 2);
    let started: Vec<Value> = server
        .audit
        .events()
        .into_iter()
        .filter(|(_, name, _)| name == "workflow.started")
        .map(|(_, _, fields)| fields)
        .collect();
    assert_eq!(started[0]["trigger_kind"], "manual");
    assert_eq!(server.stop().await, agentd_serve::ServeExit::Drained);
}

#[test]
fn cron_next_fire_computation() {
    let schedule = CronSchedule::parse("0 8 * * 1").expect("cron");
    let zone = parse_timezone("Europe/Berlin").expect("zone");
    let after: jiff::Timestamp = "2025-05-01T00:00:00Z".parse().expect("ts");
    let next = schedule.next_after(after, &zone).expect("next");
    assert_eq!(next.to_string(), "2025-05-05T06:00:00Z");
    let six = CronSchedule::parse("0 0 8 * * 2").expect("cron");
    assert_eq!(six.next_after(after, &zone), Some(next));
}

#[tokio::test]
async fn cron_trigger_starts_and_stops() {
    let setup = Setup { listen: false, ..Setup::default() };
    let text = format!(
        "name = \"cron_wf\"\n{GRAPH}\n[[triggers]]\ntype = \"cron\"\nschedule = \"* * * * * *\"\nstart_node = \"tick\"\ntimezone = \"UTC\"\n"
    );
    let server = start_in(move |_| text, setup).await.expect("start");
    eventually(|| !fires(&server, "cron.completed").is_empty()).await;
    let fired = fires(&server, "cron.fire");
    assert_eq!(fired[0]["kind"], "cron");
    assert_eq!(server.stop().await, agentd_serve::ServeExit::Drained);
}

#[tokio::test]
async fn fs_watch_debounces_a_burst_into_one_run() {
    let setup = Setup { listen: false, ..Setup::default() };
    let server = start_in(
        |dir| {
            std::fs::create_dir(dir.join("inbox")).expect("dir");
            format!(
                "name = \"watch_wf\"\n{GRAPH}\n[[triggers]]\ntype = \"fs_watch\"\npath = \"inbox\"\nstart_node = \"tick\"\ndebounce_ms = 300\n"
            )
        },
        setup,
    )
    .await
    .expect("start");
    let file = server.dir.path().join("inbox").join("a.txt");
    for round in 0..5 {
        std::fs::write(&file, format!("burst {round}")).expect("write");
    }
    eventually(|| !fires(&server, "fs_watch.completed").is_empty()).await;
    // Quiet for a few debounce windows: the burst must not fire again.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let fired = fires(&server, "fs_watch.fire");
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert!(fired[0]["path"].as_str().expect("path").ends_with("inbox/a.txt"));
    assert_eq!(fired[0]["tick"], 1);
    assert_eq!(server.stop().await, agentd_serve::ServeExit::Drained);
}

#[tokio::test]
async fn fs_watch_missing_path_fails_startup() {
    let setup = Setup { listen: false, ..Setup::default() };
    let text = format!(
        "name = \"watch_missing\"\n{GRAPH}\n[[triggers]]\ntype = \"fs_watch\"\npath = \"nope\"\nstart_node = \"tick\"\n"
    );
    let error = start_in(move |_| text, setup).await.err().expect("refused");
    assert!(error.to_string().contains("fs_watch path"), "{error}");
}
