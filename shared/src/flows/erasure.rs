//! Erasing a customer on request: every piece of personal data goes, the
//! anonymous counts stay. Idempotent: erasing twice is the same as once.

use serde::Serialize;

use crate::contact::birthday_day;
use crate::keys;
use crate::model::CallbackTask;
use crate::model::Contact;
use crate::model::{Answer, History};
use crate::storage::{Storage, StorageExt, StoreResult, Update};

/// What an erasure touched.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Erasure {
    pub customer_id: String,
    /// Whether anything of the customer's was in the store (`404` if not).
    pub found: bool,
    pub tasks_scrubbed: usize,
    pub answers_scrubbed: usize,
    pub records_deleted: usize,
}

/// The placeholder left where personal data was.
pub const ERASED: &str = "[erased]";

fn scrub_answer(a: &mut Answer) -> bool {
    let had = a.comment.is_some() || !a.reasons.is_empty();
    a.comment = None;
    a.reasons.clear();
    had
}

/// Remove the customer's personal data everywhere: the contact record, the
/// birthday index, events timeline, contacts log, the comments and complaint
/// topics in their history, and the copies in callback tasks and the outbox. Scores and
/// counters stay, anonymous.
pub fn erase_customer<S: Storage + ?Sized>(store: &S, customer_id: &str) -> StoreResult<Erasure> {
    let mut report = Erasure {
        customer_id: customer_id.to_string(),
        ..Default::default()
    };
    let contact = store.get_json::<Contact>(&keys::contact(customer_id))?;
    report.found = contact.is_some() || store.get(&keys::history(customer_id))?.is_some();
    if let Some(contact) = contact {
        if let Some((month, day)) = contact.birthday.as_deref().and_then(birthday_day) {
            store.remove_from_list(&keys::birthdays_on(month, day), customer_id)?;
        }
    }
    for key in [
        keys::contact(customer_id),
        keys::event_log(customer_id),
        keys::contacts(customer_id),
    ] {
        if store.get(&key)?.is_some() {
            store.delete(&key)?;
            report.records_deleted += 1;
        }
    }
    let surveys: Vec<String> = store
        .get_json(&keys::customer_surveys(customer_id))?
        .unwrap_or_default();
    // The history holds the answers: they stay (a link cannot be answered
    // twice, and scores stay anonymous), their words and complaint topics go.
    store.update_if::<History, _>(&keys::history(customer_id), |h| {
        for a in h.answers.iter_mut() {
            report.answers_scrubbed += usize::from(scrub_answer(a));
        }
        let topics = h
            .complaints
            .iter_mut()
            .filter_map(|c| c.topic.take())
            .count();
        report.answers_scrubbed > 0 || topics > 0
    })?;
    // The outbox holds whole escalations (with the contact) until the
    // escalator's tick delivers them: the customer's go, answers' and events' alike.
    let waiting: Vec<String> = store.get_json(keys::OUTBOX_INDEX)?.unwrap_or_default();
    for source in &waiting {
        let theirs = surveys.contains(source)
            || store
                .get_json::<crate::task::EscalationRequest>(&keys::outbox(source))?
                .is_some_and(|r| r.contact.customer_id == customer_id);
        if theirs {
            store.delete(&keys::outbox(source))?;
            store.remove_from_list(keys::OUTBOX_INDEX, source)?;
        }
    }
    let tasks = crate::flows::escalation::callbacks_of(store, customer_id)?.task_ids();
    for task_id in &tasks {
        let mut changed = false;
        store.update_json::<CallbackTask, _>(&keys::task(task_id), |cur| match cur {
            Some(mut t) => {
                let c = &mut t.context.customer;
                changed = c.name.is_some()
                    || c.email.is_some()
                    || c.phone.is_some()
                    || c.whatsapp.is_some();
                *c = Contact {
                    customer_id: c.customer_id.clone(),
                    opted_out: true,
                    name: Some(ERASED.into()),
                    ..Default::default()
                };
                if let Some(a) = t.context.answer.as_mut() {
                    changed |= scrub_answer(a);
                }
                for m in t.context.merged.iter_mut() {
                    if let Some(a) = m.answer.as_mut() {
                        changed |= scrub_answer(a);
                    }
                    // A complaint's topic is the customer's matter in words.
                    changed |= m.topic.take().is_some();
                }
                // Copies of earlier words: answers' comments, complaint topics
                // in the timeline, agents' notes on earlier tasks.
                for a in t.context.history.iter_mut() {
                    changed |= scrub_answer(a);
                }
                for e in t
                    .context
                    .events
                    .iter_mut()
                    .chain(t.context.open_cases.iter_mut())
                {
                    changed |= e.topic.take().is_some();
                }
                for e in t.context.earlier_tasks.iter_mut() {
                    changed |= e.resolution.take().is_some();
                }
                for attempt in t.attempts.iter_mut() {
                    changed |= attempt.note.take().is_some();
                }
                changed |= t.resolution.take().is_some();
                t.context.question = None;
                Update::Write(t)
            }
            None => Update::Keep,
        })?;
        report.tasks_scrubbed += usize::from(changed);
    }
    report.found |= !tasks.is_empty() || !surveys.is_empty();
    if !report.found {
        // Never seen: nothing to erase, and no record made for them.
        return Ok(report);
    }
    // Nothing more may be sent or called: the erased customer stays opted out.
    store.put_json(
        &keys::contact(customer_id),
        &Contact {
            customer_id: customer_id.to_string(),
            opted_out: true,
            ..Default::default()
        },
    )?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{HostKv, MemoryStorage};

    /// In every store mode: like the embedded host and like each of Spin's stores.
    #[test]
    fn erases_personal_data_and_keeps_scores() {
        for mode in crate::storage::KvMode::ALL {
            erases_personal_data_and_keeps_scores_in(mode);
        }
    }

    fn erases_personal_data_and_keeps_scores_in(mode: crate::storage::KvMode) {
        let s = MemoryStorage::in_memory_like(mode);
        let contact = Contact {
            customer_id: "c1".into(),
            name: Some("Anna Schmidt".into()),
            email: Some("anna@example.de".into()),
            phone: Some("+4915112345678".into()),
            birthday: Some("1990-12-24".into()),
            ..Default::default()
        };
        s.put_json(&keys::contact("c1"), &contact).unwrap();
        s.add_to_list(&keys::birthdays_on(12, 24), "c1").unwrap();
        s.add_to_list(&keys::customer_surveys("c1"), "sv_1")
            .unwrap();
        let answer = Answer {
            survey_id: "sv_1".into(),
            channel: crate::model::Channel::Email,
            kind: crate::model::SurveyKind::Product,
            scale: crate::model::Scale::Nps,
            score: 2,
            comment: Some("Anna here, call me on +4915112345678".into()),
            reasons: vec![],
            answered_at: "2026-12-04T10:00:00Z".parse().unwrap(),
            log_seq: None,
        };
        let mut history = History::default();
        history.record(answer);
        s.put_json(&keys::history("c1"), &history).unwrap();
        // A complaint's escalation waiting in the outbox for the escalator's
        // tick (which would otherwise make a task of it, contact and all).
        let mut waiting = crate::flows::testing::request(
            "event:complaint-1",
            crate::model::TaskReason::Complaint,
        );
        waiting.contact = Contact {
            customer_id: "c1".into(),
            ..contact.clone()
        };
        s.put_json(&keys::outbox("event:complaint-1"), &waiting)
            .unwrap();
        s.add_to_list(keys::OUTBOX_INDEX, "event:complaint-1")
            .unwrap();
        s.increment(
            &keys::summary_counter("20261204", "all", "all", "answers"),
            1,
        )
        .unwrap();

        let r = erase_customer(&s, "c1").unwrap();
        assert_eq!((r.found, r.answers_scrubbed), (true, 1));
        assert!(s.get(&keys::outbox("event:complaint-1")).unwrap().is_none());
        assert!(!erase_customer(&s, "someone-else").unwrap().found);
        let dump: String = s
            .keys()
            .iter()
            .map(|k| {
                format!(
                    "{k}={}\n",
                    String::from_utf8_lossy(&s.host().get(k).unwrap().unwrap_or_default())
                )
            })
            .collect();
        for pd in ["Anna", "anna@example.de", "+4915112345678", "1990-12-24"] {
            assert!(!dump.contains(pd), "{pd} survived:\n{dump}");
        }
        assert_eq!(
            s.get_json::<History>(&keys::history("c1"))
                .unwrap()
                .unwrap()
                .answer_to("sv_1")
                .unwrap()
                .score,
            2,
            "the score stays"
        );
        assert_eq!(
            s.counter(&keys::summary_counter("20261204", "all", "all", "answers"))
                .unwrap(),
            1
        );
        assert!(
            s.get_json::<Contact>(&keys::contact("c1"))
                .unwrap()
                .unwrap()
                .opted_out
        );
        assert_eq!(
            erase_customer(&s, "c1").unwrap().answers_scrubbed,
            0,
            "idempotent"
        );
    }
}
