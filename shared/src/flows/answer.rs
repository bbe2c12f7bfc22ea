//! Recording a customer's answer (`POST /s/:token`, once the link checked out).

use chrono::{DateTime, Utc};

use crate::answer::{validate_answer, InvalidAnswer};

use crate::flows::answer_log;
use crate::keys;
use crate::model::{
    Answer, CallbackTask, Channel, Contact, CustomerCallbacks, History, LoggedAnswer, Survey,
};
use crate::storage::{Storage, StorageExt};
use crate::task::{
    answer_call, answer_reasons, is_thank_you, promised_callback, AnswerCall, EscalationPolicy,
};
use crate::ApiError;

/// What the customer submitted, as parsed from the form or JSON.
pub struct Submission<'a> {
    pub score: Option<&'a str>,
    pub comment: Option<&'a str>,
    pub reasons: &'a [String],
}

/// What became of a submission.
#[derive(Debug)]
pub enum Recording {
    /// Recorded; `before` is the history it was judged against, and
    /// `logged` its entry in the answer log (the call it asks for).
    Recorded {
        answer: Answer,
        before: History,
        logged: LoggedAnswer,
    },
    /// The survey had been answered before this submission was read (perhaps
    /// by this very submission, retried after a failure): the first answer
    /// counts, and its callback comes from its own log entry.
    AlreadyAnswered { existing: Answer },
    /// Another submission recorded its answer while this one was judged.
    LostRace { existing: Answer },
    /// Not an answer on the survey's scale (422, naming what is allowed).
    Invalid(InvalidAnswer),
}

/// Record `submission` as the answer to `survey` if it is the first, in an
/// order that makes every store failure safe to retry (`wasi:keyvalue` has
/// no multi-key transaction):
/// 1. the customer's history is read for a compare-and-swap (it is where the
///    answer goes) — an answer there already ends the flow;
/// 2. the answer is logged under the next number (`flows::answer_log`);
/// 3. the answer, carrying that number, is swapped into the history: the
///    first answer wins, and this write is what makes it count.
///
/// Nothing is counted here, and no task made: the escalator's tick folds the
/// log into the reports, counting an entry only when the history carries its
/// number, and makes the callback the entry asks for (a repair or a
/// thank-you call). A failure or a lost race leaves an entry nobody
/// confirms, skipped by the fold, so counts and tasks are exact across any
/// crash.
pub fn record_answer<S: Storage + ?Sized>(
    store: &S,
    survey: &Survey,
    channel: Channel,
    submission: &Submission,
    device: &str,
    now: DateTime<Utc>,
) -> Result<Recording, ApiError> {
    let customer = keys::pseudonym(&survey.customer_id);
    let history_key = keys::history_of(&customer);
    let (current, mut cas) = store.cas_begin(&history_key)?;
    let mut history = parse_history(current.as_deref())?;
    if let Some(existing) = history.answer_to(&survey.survey_id) {
        return Ok(Recording::AlreadyAnswered {
            existing: existing.clone(),
        });
    }
    let (score, comment, reasons) = match validate_answer(
        survey.scale,
        submission.score,
        submission.comment,
        submission.reasons,
    ) {
        Ok(v) => v,
        Err(e) => return Ok(Recording::Invalid(e)),
    };
    let mut answer = Answer {
        survey_id: survey.survey_id.clone(),
        channel,
        kind: survey.kind,
        scale: survey.scale,
        score,
        comment,
        reasons,
        answered_at: now,
        log_seq: None,
    };
    let (call, reopens) = answer_reasons(survey, &history, &answer);
    let mut entry = LoggedAnswer {
        survey_id: survey.survey_id.clone(),
        customer,
        agent: survey.agent_id.clone(),
        resurvey: survey.resurvey_of.is_some(),
        device: device.to_string(),
        work_order_id: survey.work_order_id.clone(),
        call,
        reopens,
        logged_at: now,
    };
    let seq = answer_log::append(store, &entry)?;
    answer.log_seq = Some(seq);
    for _ in 0..64 {
        if let Some(existing) = history.answer_to(&answer.survey_id) {
            return Ok(Recording::LostRace {
                existing: existing.clone(),
            });
        }
        let before = history.clone();
        history.record(answer.clone());
        let bytes = serde_json::to_vec(&history).expect("histories serialize");
        if store.cas_swap(cas, &bytes)? {
            return Ok(Recording::Recorded {
                answer,
                before,
                logged: entry,
            });
        }
        // Someone else wrote the history meanwhile: read it again, and
        // judge the call against what is now before the answer.
        let (current, next) = store.cas_begin(&history_key)?;
        (history, cas) = (parse_history(current.as_deref())?, next);
        let (call, reopens) = answer_reasons(survey, &history, &answer);
        if call != entry.call || reopens != entry.reopens {
            (entry.call, entry.reopens) = (call, reopens);
            store.put_json(&keys::answer_log(seq), &entry)?;
        }
    }
    Err(ApiError::unavailable(
        "the customer's history kept changing; try again",
    ))
}

/// Whether the answer logged as `logged` may ask for a repair: only then is
/// the customer's contact read (`promised_call` needs it).
pub fn may_need_repair(logged: &LoggedAnswer) -> bool {
    !logged.call.is_empty() && !is_thank_you(&logged.call, logged.reopens.as_deref())
}

/// What the customer is told after an answer that may need a repair, and
/// their record, read for it.
#[derive(Debug)]
pub struct Promise {
    pub contact: Contact,
    /// When they will be called at the latest (none: no repair call).
    pub callback_by: Option<DateTime<Utc>>,
}

/// When the customer who gave `answer` will be called, if a repair is due.
/// The task itself is made by the answer log's fold (`flows::answer_log`)
/// from the answer's entry; so the promise is the task as
/// `task::plan_task` plans it now, or, when the customer already waits for
/// an open task (a missed call), that task's due time if sooner: the
/// repair merges into it (`task::merge_into` keeps the sooner). One batch
/// read (their record and their callbacks record), and the open task's.
/// Thank-you calls are not promised. The call is the one `logged` asks for,
/// as the fold reads it.
pub fn promised_call<S: Storage + ?Sized>(
    store: &S,
    survey: &Survey,
    (before, answer, logged): (&History, &Answer, &LoggedAnswer),
    policy: &EscalationPolicy,
    now: DateTime<Utc>,
) -> Result<Promise, ApiError> {
    let customer = &survey.customer_id;
    let read = store.get_many(&[keys::contact(customer), keys::customer_callbacks(customer)])?;
    let contact: Contact = match read[0].as_deref() {
        Some(bytes) => serde_json::from_slice(bytes).map_err(|e| {
            ApiError::internal(format!("the customer's record does not parse: {e}"))
        })?,
        None => Contact {
            customer_id: customer.clone(),
            ..Default::default()
        },
    };
    let call = answer_call(
        survey,
        &contact,
        (before, answer),
        (&logged.call, logged.reopens.clone()),
        policy,
        None,
    );
    let Some(AnswerCall::Repair(request)) = call else {
        return Ok(Promise {
            contact,
            callback_by: None,
        });
    };
    let mut callback_by = promised_callback(&request, policy, now);
    // (A record that does not parse promises nothing sooner; the fold
    // reports it.)
    let record: Option<CustomerCallbacks> = read[1]
        .as_deref()
        .and_then(|b| serde_json::from_slice(b).ok());
    if let (Some(planned), Some(open)) = (callback_by, record.and_then(|r| r.open)) {
        let waiting = store.get_json::<CallbackTask>(&keys::task(&open))?;
        if let Some(task) = waiting.filter(|t| !t.state.is_closed()) {
            callback_by = Some(planned.min(task.due_by));
        }
    }
    Ok(Promise {
        contact,
        callback_by,
    })
}

/// A customer's answer history as stored (none yet: empty).
pub fn parse_history(bytes: Option<&[u8]>) -> Result<History, ApiError> {
    match bytes.map(serde_json::from_slice) {
        None => Ok(History::default()),
        Some(Ok(h)) => Ok(h),
        Some(Err(e)) => Err(ApiError::internal(format!(
            "the customer's history does not parse: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::report::read_tallies;
    use crate::storage::{Faulty, KvMode, MemoryStorage, StorageExt};

    fn survey() -> Survey {
        serde_json::from_value(serde_json::json!({
            "survey_id": "sv_1", "event_id": "e1", "kind": "product", "scale": "nps",
            "customer_id": "c1", "agent_id": "agent-1",
            "due_at": "2026-12-04T09:00:00Z", "send_by": "2026-12-05T09:00:00Z",
            "expires_at": "2026-12-18T09:00:00Z", "next_attempt_at": "2026-12-04T09:00:00Z",
            "state": "sent"
        }))
        .unwrap()
    }

    fn now() -> DateTime<Utc> {
        "2026-12-04T10:00:00Z".parse().unwrap()
    }

    fn submit<S: Storage + ?Sized>(store: &S, score: &str) -> Result<Recording, ApiError> {
        let submission = Submission {
            score: Some(score),
            comment: Some("fine"),
            reasons: &[],
        };
        record_answer(
            store,
            &survey(),
            Channel::Email,
            &submission,
            "dev-1",
            now(),
        )
    }

    /// Answers counted on the survey's day, over every tally, once the
    /// answer log is folded a minute later: before any entry left by a
    /// failure could be given up on (a void one is skipped at once).
    fn counted(store: &MemoryStorage) -> i64 {
        let later = now() + chrono::Duration::minutes(1);
        crate::flows::answer_log::fold(
            store,
            (
                &EscalationPolicy::default(),
                &crate::policy::SurveyPolicy::default(),
                &crate::webhooks::NOBODY,
            ),
            "Shop",
            later,
        )
        .unwrap();
        let day = now().date_naive();
        read_tallies(store, &[day])
            .unwrap()
            .iter()
            .map(|(_, _, n)| n)
            .sum()
    }

    fn recorded_score(store: &MemoryStorage) -> Option<u8> {
        let h: History = store.get_json(&keys::history("c1")).unwrap()?;
        h.answer_to("sv_1").map(|a| a.score)
    }

    #[test]
    fn the_first_answer_is_recorded_and_counted_once() {
        for mode in KvMode::ALL {
            let s = MemoryStorage::in_memory_like(mode);
            assert!(matches!(
                submit(&s, "9").unwrap(),
                Recording::Recorded { .. }
            ));
            match submit(&s, "3").unwrap() {
                Recording::AlreadyAnswered { existing, .. } => assert_eq!(existing.score, 9),
                other => panic!("{mode:?}: {other:?}"),
            }
            assert!(matches!(
                submit(&s, "eleven").unwrap(),
                Recording::AlreadyAnswered { .. }
            ));
            assert_eq!(counted(&s), 1, "{mode:?}");
        }
    }

    #[test]
    fn a_bad_score_is_invalid_and_records_nothing() {
        let s = MemoryStorage::new();
        assert!(
            matches!(submit(&s, "11").unwrap(), Recording::Invalid(e) if e.0.contains("0 to 10"))
        );
        assert_eq!(recorded_score(&s), None);
        assert_eq!(counted(&s), 0);
    }

    /// A store failure at any step of the flow fails it whole (nothing
    /// counted, nothing recorded) or leaves it done; the retry then finishes
    /// the job with nothing duplicated.
    #[test]
    fn a_store_failure_at_any_step_is_finished_by_the_retry() {
        for mode in KvMode::ALL {
            let steps = Faulty::sweep(mode, |s, step| {
                s.fail_op(step);
                let first = submit(s, "9");
                s.disarm();
                let retry = submit(s, "9").unwrap();
                match (&first, &retry) {
                    (Ok(Recording::Recorded { .. }), Recording::AlreadyAnswered { .. })
                    | (Err(_), Recording::Recorded { .. }) => {}
                    other => panic!("{mode:?} step {step}: {other:?}"),
                }
                assert_eq!(recorded_score(s.inner()), Some(9), "{mode:?} step {step}");
                assert_eq!(counted(s.inner()), 1, "{mode:?} step {step}");
            });
            assert!(steps >= 4, "{mode:?}: only {steps} operations?");
        }
    }

    /// Submissions racing on one survey: exactly one is recorded and counted.
    #[test]
    fn racing_submissions_record_exactly_one() {
        for mode in KvMode::ALL {
            let s = MemoryStorage::in_memory_like(mode);
            let barrier = std::sync::Barrier::new(8);
            let outcomes: Vec<Recording> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..8)
                    .map(|i| {
                        let (s, barrier) = (&s, &barrier);
                        scope.spawn(move || {
                            barrier.wait();
                            submit(s, &(i + 2).to_string()).unwrap()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let recorded: Vec<u8> = outcomes
                .iter()
                .filter_map(|o| match o {
                    Recording::Recorded { answer, .. } => Some(answer.score),
                    _ => None,
                })
                .collect();
            assert_eq!(recorded.len(), 1, "{mode:?}: {outcomes:?}");
            assert_eq!(recorded_score(&s), Some(recorded[0]), "{mode:?}");
            assert_eq!(counted(&s), 1, "{mode:?}");
        }
    }

    /// The reasons of low answers reach the summary by reason once folded:
    /// a row per reason the policy offers, an API client's own tag as
    /// `other`, each answer counted once per reason however often folded.
    #[test]
    fn reasons_reach_the_summary_by_reason() {
        for mode in KvMode::ALL {
            let s = MemoryStorage::in_memory_like(mode);
            let answers: [(&str, &str, &[&str]); 3] = [
                ("c1", "2", &["damaged", "late_delivery"]),
                ("c2", "4", &["damaged", "a tag of my own"]),
                ("c3", "10", &[]),
            ];
            for (customer, score, reasons) in answers {
                let reasons: Vec<String> = reasons.iter().map(|r| r.to_string()).collect();
                let submission = Submission {
                    score: Some(score),
                    comment: None,
                    reasons: &reasons,
                };
                let survey = Survey {
                    survey_id: format!("sv_{customer}"),
                    customer_id: customer.into(),
                    ..survey()
                };
                let recorded = record_answer(&s, &survey, Channel::Sms, &submission, "d", now());
                assert!(
                    matches!(recorded, Ok(Recording::Recorded { .. })),
                    "{mode:?}"
                );
            }
            assert_eq!(counted(&s), 3, "{mode:?}");
            counted(&s);
            let day = now().date_naive();
            let r = crate::flows::report::summary_report(&s, day, day, "reason", 92).unwrap();
            let rows: Vec<(&str, i64)> = r
                .rows
                .iter()
                .map(|r| (r.group.as_str(), r.answers))
                .collect();
            assert_eq!(
                rows,
                [("damaged", 2), ("late_delivery", 1), ("other", 1)],
                "{mode:?}"
            );
            assert_eq!(r.rows[0].nps, Some(-100.0), "two detractors");
            assert_eq!(
                r.total.answers, 3,
                "{mode:?}: every answer, with or without reasons"
            );
        }
    }
}
