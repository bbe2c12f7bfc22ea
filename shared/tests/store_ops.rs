//! What an answer costs in store operations, counted as a host counts them
//! (every `wasi:keyvalue` call, a compare-and-swap's `Cas::new` included):
//! the same flow calls the score-receiver makes, natively, on a store
//! holding what intake leaves for a new customer (the contact, the empty
//! answer history, the event log) and the survey as sent; no task yet. A
//! low answer's task is made later by the escalator's tick, from the answer
//! log. The bench counts the same on the real host.

use chrono::{DateTime, Utc};
use revisit_shared::event::Event;
use revisit_shared::flows::answer::{
    may_need_repair, promised_call, record_answer, Recording, Submission,
};
use revisit_shared::flows::answer_log::fold;
use revisit_shared::flows::intake::{begin, Begun, IntakeContext};
use revisit_shared::flows::link::{open_link, LinkOpen};
use revisit_shared::keys;
use revisit_shared::model::{Channel, Survey};
use revisit_shared::policy::SurveyPolicy;
use revisit_shared::signing::LinkToken;
use revisit_shared::storage::{MemoryStorage, StorageExt};
use revisit_shared::task::EscalationPolicy;
use revisit_shared::webhooks::NOBODY;

/// The budget (#13) for a satisfied answer; a low one reads the
/// customer's records besides, to promise the call.
const SATISFIED_BUDGET: usize = 6;
const LOW_BUDGET: usize = SATISFIED_BUDGET + 1;

fn now() -> DateTime<Utc> {
    "2026-12-04T10:00:00Z".parse().unwrap()
}

/// A store as intake and the issuer leave it for customer `c1`'s survey.
fn store_with_survey() -> (MemoryStorage, Survey) {
    let store = MemoryStorage::new();
    let survey: Survey = serde_json::from_value(serde_json::json!({
        "survey_id": "sv_1", "event_id": "e1", "kind": "product", "scale": "nps",
        "customer_id": "c1", "agent_id": "agent-1", "order_id": "o1",
        "occurred_at": "2026-12-01T09:00:00Z",
        "due_at": "2026-12-04T09:00:00Z", "send_by": "2026-12-05T09:00:00Z",
        "expires_at": "2026-12-18T09:00:00Z", "next_attempt_at": "2026-12-04T09:00:00Z",
        "state": "sent", "sent_channels": ["email"]
    }))
    .unwrap();
    store.put_json(&keys::survey("sv_1"), &survey).unwrap();
    // The customer's records as intake makes them for a new customer.
    let event: Event = serde_json::from_value(serde_json::json!({
        "event_id": "e1", "type": "order.delivered", "occurred_at": "2026-12-01T09:00:00Z",
        "order_id": "o1", "category": "high_value",
        "customer": {"id": "c1", "name": "Ana", "email": "ana@example.com",
            "phone": "+4915112345678"}
    }))
    .unwrap();
    let policy = SurveyPolicy::default();
    let cx = IntakeContext {
        policy: &policy,
        webhooks: &NOBODY,
        merchant: "Shop",
        now: now(),
    };
    let begun = begin(&store, &event, &cx).unwrap();
    assert!(matches!(begun, Begun::Proceed { .. }), "{begun:?}");
    store.host().take_trace();
    (store, survey)
}

/// `POST /s/:token` with `score`: the operations it made, and when the
/// customer is promised a call.
fn answer(
    store: &MemoryStorage,
    survey: &Survey,
    score: &str,
) -> (Vec<String>, Option<DateTime<Utc>>) {
    let token = LinkToken {
        survey_id: survey.survey_id.clone(),
        channel: Channel::Email,
    };
    let LinkOpen::Open { survey, .. } =
        open_link(store, Some(&token), "10.0.0.1:40000", now()).unwrap()
    else {
        panic!("the link opens");
    };
    let submission = Submission {
        score: Some(score),
        comment: Some("late"),
        reasons: &[],
    };
    let recorded = record_answer(store, &survey, Channel::Email, &submission, "dev", now());
    let Ok(Recording::Recorded {
        answer,
        before,
        logged,
    }) = recorded
    else {
        panic!("recorded: {recorded:?}");
    };
    let policy = EscalationPolicy::default();
    let mut callback_by = None;
    if may_need_repair(&logged) {
        let promise =
            promised_call(store, &survey, (&before, &answer, &logged), &policy, now()).unwrap();
        callback_by = promise.callback_by;
    }
    (store.host().take_trace(), callback_by)
}

/// The writes among `ops`: each a commit, the answer's dearest part.
fn writes(ops: &[String]) -> usize {
    ops.iter()
        .filter(|op| {
            ["increment", "set", "cas_swap"]
                .iter()
                .any(|w| op.starts_with(&format!("{w} ")))
        })
        .count()
}

#[test]
fn a_satisfied_answer_stays_within_its_budget() {
    let (store, survey) = store_with_survey();
    let (ops, callback_by) = answer(&store, &survey, "9");
    assert_eq!(callback_by, None);
    assert!(
        ops.len() <= SATISFIED_BUDGET,
        "{} operations (budget {SATISFIED_BUDGET}): {ops:#?}",
        ops.len()
    );
    // The log's number, its entry, and the swap into the history intake
    // made (no creation claim on the answer path).
    assert_eq!(writes(&ops), 3, "{ops:#?}");
    // Two reads, the survey and the history: no rate counter (only a post
    // that records nothing counts against its link).
    assert_eq!(ops.len() - writes(&ops), 2, "{ops:#?}");
    assert!(!ops.iter().any(|op| op.contains("rate/")), "{ops:#?}");
}

#[test]
fn a_low_answer_writes_no_more_than_a_satisfied_one_and_its_task_comes_from_the_fold() {
    let (store, survey) = store_with_survey();
    let (ops, callback_by) = answer(&store, &survey, "3");
    assert!(
        ops.len() <= LOW_BUDGET,
        "{} operations (budget {LOW_BUDGET}): {ops:#?}",
        ops.len()
    );
    assert_eq!(writes(&ops), 3, "{ops:#?}");
    let promised = callback_by.expect("a low answer is promised a call");
    // The escalator's tick makes the task, due when promised.
    let policy = EscalationPolicy::default();
    let folded = fold(
        &store,
        (&policy, &SurveyPolicy::default(), &NOBODY),
        "Shop",
        now() + chrono::Duration::minutes(1),
    )
    .unwrap();
    assert_eq!((folded.counted, folded.repairs), (1, 1), "{folded:?}");
    let record: serde_json::Value = store
        .get_json(&keys::customer_callbacks("c1"))
        .unwrap()
        .expect("the customer's callbacks record");
    let task_id = record["open"].as_str().expect("an open task");
    let task: serde_json::Value = store.get_json(&keys::task(task_id)).unwrap().unwrap();
    assert_eq!(task["reason"], "low_score");
    assert_eq!(
        task["due_by"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap(),
        promised
    );
}
