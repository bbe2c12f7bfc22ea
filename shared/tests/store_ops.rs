//! What an answer costs in store operations, counted as a host counts them
//! (every `wasi:keyvalue` call, a compare-and-swap's `Cas::new` included):
//! the same flow calls the score-receiver and the low-score-escalator make,
//! natively, on a store holding what intake leaves for a new customer (the
//! contact, the empty answer history, the event log) and the survey as sent;
//! no task yet. The bench
//! counts the same on the real host.

use chrono::{DateTime, Utc};
use revisit_shared::event::Event;
use revisit_shared::flows::answer::{
    follow_up, may_need_repair, record_answer, FollowUp, Recording, Submission,
};
use revisit_shared::flows::escalation::receive;
use revisit_shared::flows::intake::{begin, Begun, IntakeContext};
use revisit_shared::flows::link::{open_link, LinkOpen};
use revisit_shared::keys;
use revisit_shared::model::{Channel, Contact, Survey};
use revisit_shared::policy::SurveyPolicy;
use revisit_shared::signing::LinkToken;
use revisit_shared::storage::{MemoryStorage, StorageExt};
use revisit_shared::task::EscalationPolicy;
use revisit_shared::webhooks::NOBODY;

/// The budgets (#13): a satisfied answer, and a low one with the
/// escalator's work on it.
const SATISFIED_BUDGET: usize = 6;
const LOW_BUDGET: usize = 15;

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

/// `POST /s/:token` with `score`, then (for a low one) the escalator's
/// `POST /internal/escalations`: the operations each made.
fn answer(store: &MemoryStorage, survey: &Survey, score: &str) -> (Vec<String>, Vec<String>) {
    let token = LinkToken {
        survey_id: survey.survey_id.clone(),
        channel: Channel::Email,
    };
    let LinkOpen::Open { survey, .. } = open_link(store, Some(&token), "net", now()).unwrap()
    else {
        panic!("the link opens");
    };
    let submission = Submission {
        score: Some(score),
        comment: Some("late"),
        reasons: &[],
    };
    let recorded = record_answer(store, &survey, Channel::Email, &submission, "dev", now());
    let Ok(Recording::Recorded { answer, before }) = recorded else {
        panic!("recorded: {recorded:?}");
    };
    let policy = EscalationPolicy::default();
    let mut request = None;
    if may_need_repair(&survey, &before, &answer) {
        let contact: Contact = store
            .get_json(&keys::contact(&survey.customer_id))
            .unwrap()
            .unwrap();
        let next = follow_up(
            &survey,
            &contact,
            (&before, &answer),
            "How was it?".into(),
            &policy,
        );
        if let FollowUp::HandOff(r) = next {
            request = Some(r);
        }
    }
    let receiver = store.host().take_trace();
    if let Some(request) = request {
        let task = receive(store, &request, (&policy, &NOBODY), now()).unwrap();
        assert!(task.is_some(), "a low answer makes a task");
    }
    (receiver, store.host().take_trace())
}

#[test]
fn a_satisfied_answer_stays_within_its_budget() {
    let (store, survey) = store_with_survey();
    let (receiver, escalator) = answer(&store, &survey, "9");
    assert!(escalator.is_empty(), "nothing handed over: {escalator:#?}");
    assert!(
        receiver.len() <= SATISFIED_BUDGET,
        "{} operations (budget {SATISFIED_BUDGET}): {receiver:#?}",
        receiver.len()
    );
    // Each write is a commit, the answer's dearest part: the log's number,
    // its entry, and the swap into the history intake made (no creation
    // claim on the answer path).
    let writes: Vec<&String> = receiver
        .iter()
        .filter(|op| {
            ["increment", "set", "cas_swap"]
                .iter()
                .any(|w| op.starts_with(&format!("{w} ")))
        })
        .collect();
    assert_eq!(writes.len(), 3, "{receiver:#?}");
}

#[test]
fn a_low_answer_with_its_task_stays_within_its_budget() {
    let (store, survey) = store_with_survey();
    let (receiver, escalator) = answer(&store, &survey, "3");
    assert!(!escalator.is_empty(), "handed over");
    let total = receiver.len() + escalator.len();
    eprintln!("receiver {receiver:#?}\nescalator {escalator:#?}");
    assert!(
        total <= LOW_BUDGET,
        "{total} operations (budget {LOW_BUDGET}): receiver {receiver:#?} escalator {escalator:#?}"
    );
}
