//! The approval queue: pending entries, first committed decision wins.

use std::sync::{Arc, Barrier};

use agentd_store::{
    ApprovalDecision, ApprovalRequest, ApprovalState, CheckpointKind, Decided, DecisionVia, Store, Verdict,
};
use serde_json::json;

use crate::{open, state_dir};

fn request(execution_id: &str) -> ApprovalRequest {
    ApprovalRequest {
        execution_id: execution_id.to_owned(),
        workflow: "deploy".into(),
        kind: CheckpointKind::Node,
        pause_node: "gate".into(),
        reason: Some("ship it?".into()),
        requested_at: "2025-05-01T12:00:03.120Z".into(),
        trigger_principal: Some(json!({"kind": "bearer", "name": "ci"})),
    }
}

fn decision(verdict: Verdict, via: DecisionVia, actor: &str) -> ApprovalDecision {
    ApprovalDecision {
        decision: verdict,
        via,
        note: Some(format!("by {actor}")),
        actor: actor.to_owned(),
        decided_at: "2025-05-01T13:00:00.000Z".into(),
    }
}

#[test]
fn the_first_decision_wins() {
    let (_temp, dir) = state_dir();
    let store = open(&dir);
    store.request_approval(&request("exec-1")).expect("request");
    let pending = store.approval("exec-1").expect("get").expect("present");
    assert_eq!(pending.state, ApprovalState::Pending);
    assert_eq!((pending.decision, pending.via, pending.actor.as_deref()), (None, None, None));
    assert_eq!(pending.trigger_principal, Some(json!({"kind": "bearer", "name": "ci"})));
    assert_eq!(pending.reason.as_deref(), Some("ship it?"));

    let approve = decision(Verdict::Approved, DecisionVia::Approve, "user:alice");
    assert_eq!(store.decide_approval("exec-1", &approve).expect("decide"), Decided::Recorded);
    let reject = decision(Verdict::Rejected, DecisionVia::Api, "bearer:bob");
    let Decided::AlreadyDecided(winner) = store.decide_approval("exec-1", &reject).expect("decide") else {
        panic!("the second decision must lose");
    };
    assert_eq!(winner.state, ApprovalState::Decided);
    assert_eq!(winner.decision, Some(Verdict::Approved));
    assert_eq!(winner.via, Some(DecisionVia::Approve));
    assert_eq!(winner.actor.as_deref(), Some("user:alice"));
    assert_eq!(winner.note.as_deref(), Some("by user:alice"));
    assert_eq!(winner.decided_at.as_deref(), Some("2025-05-01T13:00:00.000Z"));
    assert_eq!(store.approval("exec-1").expect("get"), Some(*winner));

    assert_eq!(store.decide_approval("exec-none", &approve).expect("decide"), Decided::NoApproval);
}

#[test]
fn a_run_that_pauses_again_is_pending_again() {
    let (_temp, dir) = state_dir();
    let store = open(&dir);
    store.request_approval(&request("exec-1")).expect("request");
    store.request_approval(&request("exec-2")).expect("request");
    store.decide_approval("exec-1", &decision(Verdict::Approved, DecisionVia::Resume, "os:root")).expect("decide");
    let pending: Vec<String> =
        store.approvals(Some(ApprovalState::Pending)).expect("list").into_iter().map(|a| a.execution_id).collect();
    assert_eq!(pending, ["exec-2"]);

    let mut again = request("exec-1");
    again.pause_node = "second_gate".into();
    again.kind = CheckpointKind::Plan;
    again.trigger_principal = None;
    store.request_approval(&again).expect("request");
    let entry = store.approval("exec-1").expect("get").expect("present");
    assert_eq!((entry.state, entry.decision, entry.pause_node.as_str()), (ApprovalState::Pending, None, "second_gate"));
    assert_eq!(entry.kind, CheckpointKind::Plan);
    assert_eq!(store.approvals(None).expect("list").len(), 2);
}

#[test]
fn concurrent_decisions_on_two_handles_record_exactly_one() {
    let (_temp, dir) = state_dir();
    let first = Arc::new(open(&dir));
    let second = Arc::new(open(&dir));
    first.request_approval(&request("exec-1")).expect("request");
    let barrier = Arc::new(Barrier::new(6));
    let handles: Vec<_> = (0..6)
        .map(|index| {
            let store = if index % 2 == 0 { Arc::clone(&first) } else { Arc::clone(&second) };
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let verdict = if index % 3 == 0 { Verdict::Rejected } else { Verdict::Approved };
                store.decide_approval("exec-1", &decision(verdict, DecisionVia::Api, &format!("user:{index}")))
            })
        })
        .collect();
    let results: Vec<Decided> =
        handles.into_iter().map(|handle| handle.join().expect("thread").expect("decide")).collect();
    assert_eq!(results.iter().filter(|result| **result == Decided::Recorded).count(), 1, "{results:?}");
}
