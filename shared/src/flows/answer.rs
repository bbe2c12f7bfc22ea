//! Recording a customer's answer (`POST /s/:token`, once the link checked out).

use chrono::{DateTime, Utc};

use crate::answer::{may_ask_for_repair, validate_answer, InvalidAnswer};

use crate::flows::answer_log;
use crate::keys;
use crate::model::{
    Answer, CallbackTask, Channel, Contact, CustomerCallbacks, History, LoggedAnswer, Survey,
};
use crate::storage::{Storage, StorageExt};
use crate::task::{answer_call, answer_reasons, promised_callback, AnswerCall, EscalationPolicy};
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
    /// Recorded on the survey; `logged` is its entry in the answer log.
    Recorded {
        answer: Answer,
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
/// no multi-key transaction). `swap` is the compare-and-swap the survey was
/// read for (`flows::link::open_link`): its answer, if any, ends the flow.
/// 1. the answer is logged under the next number (`flows::answer_log`);
/// 2. the answer, carrying that number, is swapped into the survey: the
///    first answer wins, and this write is what makes it count.
///
/// Nothing is counted here, no task made and no history read: the
/// escalator's tick folds the log, counting an entry only when its survey
/// carries its number, adds the answer to the customer's history and makes
/// the callback it asks for (judged against that history, in the log's
/// order). A failure or a lost race leaves an entry nobody confirms,
/// skipped by the fold, so counts and tasks are exact across any crash.
/// Four store operations.
pub fn record_answer<S: Storage + ?Sized>(
    store: &S,
    (survey, swap): (&Survey, S::Cas),
    channel: Channel,
    submission: &Submission,
    device: &str,
    now: DateTime<Utc>,
) -> Result<Recording, ApiError> {
    if let Some(existing) = &survey.answer {
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
    let entry = LoggedAnswer {
        survey_id: survey.survey_id.clone(),
        customer: keys::pseudonym(&survey.customer_id),
        agent: survey.agent_id.clone(),
        resurvey: survey.resurvey_of.is_some(),
        device: device.to_string(),
        work_order_id: survey.work_order_id.clone(),
        logged_at: now,
    };
    answer.log_seq = Some(answer_log::append(store, &entry)?);
    let key = keys::survey(&survey.survey_id);
    let (mut current, mut swap) = (survey.clone(), swap);
    for _ in 0..64 {
        if !current.take_answer(answer.clone()) {
            let existing = current.answer.expect("answered");
            return Ok(Recording::LostRace { existing });
        }
        let bytes = serde_json::to_vec(&current).expect("surveys serialize");
        if store.cas_swap(swap, &bytes)? {
            return Ok(Recording::Recorded {
                answer,
                logged: entry,
            });
        }
        // The survey changed meanwhile (another answer, a reminder sent):
        // read it again.
        let (read, next) = store.cas_begin(&key)?;
        let read = read.ok_or_else(|| ApiError::not_found("the survey is gone"))?;
        current = serde_json::from_slice(&read)
            .map_err(|e| ApiError::internal(format!("the survey does not parse: {e}")))?;
        swap = next;
    }
    Err(ApiError::unavailable("the survey kept changing; try again"))
}

/// Whether `answer` may ask for a repair (`answer::may_ask_for_repair`, or
/// a low "did we fix it?" answer): only then is the customer read
/// (`promised_call` needs their record and history).
pub fn may_need_repair(survey: &Survey, answer: &Answer) -> bool {
    match survey.resurvey_of {
        Some(_) => answer.scale.is_low(answer.score),
        None => may_ask_for_repair(answer.scale, answer.score),
    }
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
/// The task itself is made by the answer log's fold (`flows::answer_log`),
/// which judges the call against the customer's history as it folds it;
/// the promise judges it the same way against the history as folded now
/// (an answer of theirs given within the last tick is not in it yet), and
/// is the task as `task::plan_task` plans it now, or, when the customer
/// already waits for an open task (a missed call), that task's due time if
/// sooner: the repair merges into it (`task::merge_into` keeps the
/// sooner). One batch read (their record, callbacks record and history),
/// and the open task's. Thank-you calls are not promised.
pub fn promised_call<S: Storage + ?Sized>(
    store: &S,
    survey: &Survey,
    answer: &Answer,
    policy: &EscalationPolicy,
    now: DateTime<Utc>,
) -> Result<Promise, ApiError> {
    let customer = &survey.customer_id;
    let read = store.get_many(&[
        keys::contact(customer),
        keys::customer_callbacks(customer),
        keys::history(customer),
    ])?;
    let contact: Contact = match read[0].as_deref() {
        Some(bytes) => serde_json::from_slice(bytes).map_err(|e| {
            ApiError::internal(format!("the customer's record does not parse: {e}"))
        })?,
        None => Contact {
            customer_id: customer.clone(),
            ..Default::default()
        },
    };
    let before = parse_history(read[2].as_deref())?.before(&survey.survey_id);
    let (reasons, reopens) = answer_reasons(survey, &before, answer);
    let call = answer_call(
        survey,
        &contact,
        (&before, answer),
        (&reasons, reopens),
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
    use crate::flows::testing::{answer_survey, sent_survey};
    use crate::storage::{Faulty, KvMode, MemoryStorage, StorageExt};

    fn survey() -> Survey {
        sent_survey("sv_1", "c1")
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
        answer_survey(
            store,
            &survey(),
            (Channel::Email, &submission, "dev-1"),
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
        let s: Survey = store.get_json(&keys::survey("sv_1")).unwrap()?;
        s.answer.map(|a| a.score)
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
                let recorded = answer_survey(&s, &survey, (Channel::Sms, &submission, "d"), now());
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
