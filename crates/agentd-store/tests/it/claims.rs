//! Claims (01-cli.md §7.1): exclusive across handles, threads and processes; stale claims taken over.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use agentd_store::{Claim, Store, host_name, process_owner};

use crate::{full_checkpoint, open, state_dir};

const LONG: Duration = Duration::from_secs(3600);

#[test]
fn a_claim_is_exclusive_until_released() {
    let (_temp, dir) = state_dir();
    let store = open(&dir);
    assert_eq!(store.claim("exec-1", "1@a", LONG).expect("claim"), Claim::NotFound);
    store.put_checkpoint(&full_checkpoint("exec-1")).expect("put");

    assert_eq!(store.claim("exec-1", "owner-a", LONG).expect("claim"), Claim::Claimed);
    assert_eq!(store.claim("exec-1", "owner-b", LONG).expect("claim"), Claim::AlreadyClaimed { by: "owner-a".into() });
    assert_eq!(store.claim("exec-1", "owner-a", LONG).expect("claim"), Claim::AlreadyClaimed { by: "owner-a".into() });

    // A progress write keeps the claim.
    store.put_checkpoint(&full_checkpoint("exec-1")).expect("put");
    let summary = store.checkpoint_summaries().expect("summaries").remove(0);
    assert_eq!(summary.claimed_by.as_deref(), Some("owner-a"));

    store.release("exec-1", "owner-b").expect("release by a non-holder does nothing");
    assert_eq!(store.claim("exec-1", "owner-b", LONG).expect("claim"), Claim::AlreadyClaimed { by: "owner-a".into() });
    store.release("exec-1", "owner-a").expect("release");
    assert_eq!(store.claim("exec-1", "owner-b", LONG).expect("claim"), Claim::Claimed);
}

#[test]
fn only_one_of_many_threads_on_two_handles_wins() {
    let (_temp, dir) = state_dir();
    let first = Arc::new(open(&dir));
    let second = Arc::new(open(&dir));
    first.put_checkpoint(&full_checkpoint("exec-race")).expect("put");
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|index| {
            let store = if index % 2 == 0 { Arc::clone(&first) } else { Arc::clone(&second) };
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                store.claim("exec-race", &format!("worker-{index}"), LONG).expect("claim")
            })
        })
        .collect();
    let results: Vec<Claim> = handles.into_iter().map(|handle| handle.join().expect("thread")).collect();
    assert_eq!(results.iter().filter(|claim| **claim == Claim::Claimed).count(), 1, "{results:?}");
}

/// The pid of a process that has exited.
fn dead_pid() -> u32 {
    let mut child = Command::new("true").spawn().expect("spawn true");
    let pid = child.id();
    child.wait().expect("wait");
    pid
}

#[test]
fn a_claim_of_a_dead_process_on_this_host_is_taken_over() {
    let (_temp, dir) = state_dir();
    let store = open(&dir);
    store.put_checkpoint(&full_checkpoint("exec-1")).expect("put");
    let dead = format!("{}@{}", dead_pid(), host_name());
    assert_eq!(store.claim("exec-1", &dead, LONG).expect("claim"), Claim::Claimed);
    assert_eq!(store.claim("exec-1", &process_owner(), LONG).expect("claim"), Claim::Claimed);
    // The new holder is alive: no more take-overs.
    assert_eq!(store.claim("exec-1", "someone", LONG).expect("claim"), Claim::AlreadyClaimed { by: process_owner() });
}

#[test]
fn a_claim_of_another_host_is_only_taken_over_when_old() {
    let (_temp, dir) = state_dir();
    let store = open(&dir);
    store.put_checkpoint(&full_checkpoint("exec-1")).expect("put");
    let remote = format!("{}@not-{}", dead_pid(), host_name());
    assert_eq!(store.claim("exec-1", &remote, LONG).expect("claim"), Claim::Claimed);
    assert_eq!(store.claim("exec-1", "local", LONG).expect("claim"), Claim::AlreadyClaimed { by: remote.clone() });
    assert_eq!(store.claim("exec-1", "local", Duration::ZERO).expect("claim"), Claim::Claimed);
}

const CHILD_DIR: &str = "AGENTD_STORE_IT_CLAIM_DIR";
const RESULT_PREFIX: &str = "claim-result: ";

/// Runs only as a child process of `only_one_process_wins_and_a_dead_one_loses_its_claim`: claims the
/// run as this process, reports the result on stdout, and keeps the claim alive until stdin closes.
#[test]
fn child_process_claims() {
    let Ok(dir) = std::env::var(CHILD_DIR) else { return };
    let store = open(std::path::Path::new(&dir));
    let result = match store.claim("exec-shared", &process_owner(), LONG).expect("claim") {
        Claim::Claimed => "claimed".to_owned(),
        Claim::AlreadyClaimed { by } => format!("already {by}"),
        Claim::NotFound => "not-found".to_owned(),
    };
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{RESULT_PREFIX}{result}").expect("stdout");
    stdout.flush().expect("flush");
    let mut rest = Vec::new();
    std::io::stdin().read_to_end(&mut rest).expect("stdin");
}

#[test]
fn only_one_process_wins_and_a_dead_one_loses_its_claim() {
    let (_temp, dir) = state_dir();
    let store = open(&dir);
    store.put_checkpoint(&full_checkpoint("exec-shared")).expect("put");
    let executable = std::env::current_exe().expect("test executable");

    let mut children: Vec<_> = (0..3)
        .map(|_| {
            Command::new(&executable)
                .args(["--exact", "claims::child_process_claims", "--nocapture", "--test-threads=1"])
                .env(CHILD_DIR, &dir)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn child")
        })
        .collect();
    let mut results = Vec::new();
    let mut readers = Vec::new();
    for child in &mut children {
        let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
        // The test harness may print `test … ... ` on the same line before the result.
        let mut line = String::new();
        let result = loop {
            line.clear();
            assert!(reader.read_line(&mut line).expect("read") > 0, "child exited without reporting");
            if let Some((_, result)) = line.split_once(RESULT_PREFIX) {
                break result.trim_end().to_owned();
            }
        };
        results.push((child.id(), result));
        readers.push(reader);
    }
    // Every child has reported while all of them were alive; now let them exit (reading the rest of
    // their output so that the test harness in them can finish writing it).
    for (child, mut reader) in children.iter_mut().zip(readers) {
        drop(child.stdin.take());
        let mut rest = String::new();
        reader.read_to_string(&mut rest).expect("read");
        assert!(child.wait().expect("wait").success(), "{rest}");
    }
    let winners: Vec<u32> = results.iter().filter(|(_, result)| result == "claimed").map(|(pid, _)| *pid).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    let winner = format!("{}@{}", winners[0], host_name());
    for (_, result) in results.iter().filter(|(_, result)| result != "claimed") {
        assert_eq!(result, &format!("already {winner}"));
    }

    // The winner has exited: its claim is stale and this process takes it over.
    assert_eq!(store.claim("exec-shared", &process_owner(), LONG).expect("claim"), Claim::Claimed);
}
