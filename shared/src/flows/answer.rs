//! Recording a customer's answer (`POST /s/:token`, once the link checked out).

use chrono::{DateTime, Utc};

use crate::answer::{validate_answer, InvalidAnswer};

use crate::flows::integrity;
use crate::flows::report::count_answer;
use crate::integrity::AnswerSignals;
use crate::keys;
use crate::model::{Answer, Channel, Contact, History, Survey, WorkOrder};
use crate::report::answer_counters;
use crate::storage::{Storage, StorageExt, Tentative};
use crate::task::{
    answer_escalation, answer_reasons, plan_task, wanted_reasons, DeferredEscalation,
    EscalationPolicy, EscalationRequest,
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
    /// Recorded and counted now; `before` is the history it is judged against.
    Recorded { answer: Answer, before: History },
    /// The survey had been answered before this submission was read (perhaps
    /// by this very submission, retried after a failure): the first answer
    /// counts, and its hand-off is due again in case that retry is why.
    AlreadyAnswered { existing: Answer, before: History },
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
/// 2. integrity signals: idempotent, harmless if the answer then loses;
/// 3. the answer is counted (its tally, and the loop's counters for a
///    re-survey) *before* it is recorded;
/// 4. the answer is swapped into the history: first answer wins.
///
/// If step 4 fails or loses, step 3 is taken back, so a failure leaves
/// nothing behind and the retry starts over, and a lost race counts nothing.
pub fn record_answer<S: Storage + ?Sized>(
    store: &S,
    survey: &Survey,
    channel: Channel,
    submission: &Submission,
    device: &str,
    now: DateTime<Utc>,
) -> Result<Recording, ApiError> {
    let history_key = keys::history(&survey.customer_id);
    let (current, mut cas) = store.cas_begin(&history_key)?;
    let mut history = parse_history(current.as_deref())?;
    if let Some(existing) = history.answer_to(&survey.survey_id) {
        return Ok(Recording::AlreadyAnswered {
            existing: existing.clone(),
            before: history.before(&survey.survey_id),
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
    let answer = Answer {
        survey_id: survey.survey_id.clone(),
        channel,
        kind: survey.kind,
        scale: survey.scale,
        score,
        comment,
        reasons,
        answered_at: now,
    };
    let completed_at = match &survey.work_order_id {
        Some(w) => store
            .get_json::<WorkOrder>(&keys::work_order(w))?
            .and_then(|w| w.completed_at),
        None => None,
    };
    integrity::record(
        store,
        &AnswerSignals {
            survey_id: &survey.survey_id,
            customer_id: &survey.customer_id,
            device,
            agent: survey.agent_id.as_deref(),
            completed_at,
            answered_at: now,
        },
    )?;
    let day = now.format("%Y%m%d").to_string();
    let (tally, loop_metrics) = answer_counters(survey, &answer);
    let mut counts = Tentative::new(store);
    let counted = count_answer(&mut counts, store, &day, &tally).and_then(|_| {
        loop_metrics
            .iter()
            .try_for_each(|m| counts.add(&keys::loop_counter(m), 1).map(drop))
    });
    if let Err(e) = counted {
        counts.take_back();
        return Err(e.into());
    }
    for _ in 0..64 {
        if let Some(existing) = history.answer_to(&answer.survey_id) {
            counts.take_back();
            return Ok(Recording::LostRace {
                existing: existing.clone(),
            });
        }
        let before = history.clone();
        history.record(answer.clone());
        let bytes = serde_json::to_vec(&history).expect("histories serialize");
        let swapped = store.cas_swap(cas, &bytes).and_then(|swapped| {
            if swapped {
                return Ok(None);
            }
            // Someone else wrote the history meanwhile: read it again.
            store.cas_begin(&history_key).map(Some)
        });
        match swapped {
            Ok(None) => return Ok(Recording::Recorded { answer, before }),
            Ok(Some((current, next))) => match parse_history(current.as_deref()) {
                Ok(h) => (history, cas) = (h, next),
                Err(e) => {
                    counts.take_back();
                    return Err(e);
                }
            },
            Err(e) => {
                counts.take_back();
                return Err(e.into());
            }
        }
    }
    counts.take_back();
    Err(ApiError::unavailable(
        "the customer's history kept changing; try again",
    ))
}

/// What an answer asks of a human, decided against the history `before` it.
#[derive(Debug)]
pub enum FollowUp {
    /// Nothing: most answers.
    Nothing,
    /// A thank-you call, not urgent: left in the hour's log for the
    /// escalator's tick (`DeferredEscalation`) instead of calling the
    /// escalator while the customer waits.
    Deferred,
    /// A repair: the component hands `request` to the escalator now; a
    /// callback is due by `callback_by`.
    HandOff {
        request: EscalationRequest,
        callback_by: Option<DateTime<Utc>>,
    },
}

/// Decide (and, for a thank-you call, log) what `answer` asks of a human.
/// `question` is the survey's question as the customer saw it, for the caller.
pub fn follow_up<S: Storage + ?Sized>(
    store: &S,
    survey: &Survey,
    contact: &Contact,
    (before, answer): (&History, &Answer),
    question: String,
    policy: &EscalationPolicy,
    now: DateTime<Utc>,
) -> Result<FollowUp, ApiError> {
    let (reasons, reopens) = answer_reasons(survey, before, answer);
    let reasons = wanted_reasons(&reasons, contact, policy);
    if reasons.is_empty() {
        return Ok(FollowUp::Nothing);
    }
    if reopens.is_none() && reasons.iter().all(|r| r.is_delight()) {
        let deferred = DeferredEscalation {
            survey_id: survey.survey_id.clone(),
            reasons,
        };
        store.append_to_log(
            &keys::deferred_escalations(&keys::hour_bucket(now)),
            &serde_json::to_string(&deferred).expect("deferred escalations serialize"),
        )?;
        return Ok(FollowUp::Deferred);
    }
    let request = answer_escalation(
        survey,
        contact,
        before,
        answer,
        (reasons, reopens),
        Some(question),
    );
    let callback_by = plan_task(&request, policy, now).map(|t| t.due_by);
    Ok(FollowUp::HandOff {
        request,
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
    use crate::storage::{Faulty, KvMode, MemoryStorage};

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

    /// Answers counted on the survey's day, over every tally.
    fn counted(store: &MemoryStorage) -> i64 {
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
            assert!(steps >= 5, "{mode:?}: only {steps} operations?");
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
}
