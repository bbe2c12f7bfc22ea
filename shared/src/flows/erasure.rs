//! Erasing a customer on request: every piece of personal data goes, the
//! anonymous counts stay. Idempotent: erasing twice is the same as once.

use serde::Serialize;

use crate::contact::month_of_birthday;
use crate::keys;
use crate::model::CallbackTask;
use crate::model::Contact;
use crate::model::{Answer, History};
use crate::storage::{Storage, StorageExt, StoreResult, Update};

/// What an erasure touched.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Erasure {
    pub customer_id: String,
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
    if let Some(contact) = store.get_json::<Contact>(&keys::contact(customer_id))? {
        if let Some(month) = contact.birthday.as_deref().and_then(month_of_birthday) {
            store.remove_from_list(&keys::birthdays(month), customer_id)?;
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
    for survey_id in &surveys {
        if store.get(&keys::outbox(survey_id))?.is_some() {
            store.delete(&keys::outbox(survey_id))?;
            store.remove_from_list(keys::OUTBOX_INDEX, survey_id)?;
        }
    }
    let tasks: Vec<String> = store
        .get_json(&keys::customer_tasks(customer_id))?
        .unwrap_or_default();
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
        s.add_to_list(&keys::birthdays(12), "c1").unwrap();
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
        };
        let mut history = History::default();
        history.record(answer);
        s.put_json(&keys::history("c1"), &history).unwrap();
        s.increment(
            &keys::summary_counter("20261204", "all", "all", "answers"),
            1,
        )
        .unwrap();

        let r = erase_customer(&s, "c1").unwrap();
        assert_eq!(r.answers_scrubbed, 1);
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
