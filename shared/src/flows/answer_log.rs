//! The answer log (see `crate::answer_log`): appended by the answer path,
//! folded into the reports by the escalator's tick.
//!
//! A fold reads the entries after its cursor with the histories they name,
//! judges each in order and stops at the first whose writer may still be at
//! work. What it counts goes into records that remember the last entry they
//! hold (`FoldedCounts`), so a fold that crashes and runs again, or two that
//! overlap, add each answer once; the cursor moves last. It also does the
//! answer's slower work: the integrity signals and the callback each answer
//! asks for (a repair or a thank-you call), so that the customer's click
//! waits for neither.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::answer_log::{judge, taken_by, EntryVerdict, FoldedCounts};
use crate::flows::escalation::receive;
use crate::flows::{integrity, log};
use crate::i18n::{texts, Lang};
use crate::integrity::AnswerSignals;
use crate::keys;
use crate::model::{Answer, Contact, History, LoggedAnswer, Survey, WorkOrder};
use crate::policy::SurveyPolicy;
use crate::report::{answer_counters, ReasonTally};
use crate::storage::{Storage, StorageExt, StoreResult, Update};
use crate::task::{answer_call, AnswerCall, EscalationPolicy};
use crate::webhooks::{AnswerData, WebhookEvent, Webhooks};
use crate::ApiError;

/// The most entries one batch of a fold looks at (one batch read).
pub const FOLD_BATCH: u64 = 1000;
/// The most batches one fold runs: a tick every minute keeps up with
/// 100,000 answers a minute.
pub const FOLD_BATCHES: usize = 100;

/// Log an answer about to be recorded; its number, for the answer to carry.
pub fn append<S: Storage + ?Sized>(store: &S, entry: &LoggedAnswer) -> StoreResult<u64> {
    log::append(store, &log::ANSWERS, entry)
}

/// What one fold did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FoldReport {
    pub counted: usize,
    pub skipped: usize,
    /// Repairs received (tasks made, merged or reopened) for low,
    /// dropping or failed "did we fix it?" answers.
    pub repairs: usize,
    pub thank_you_calls: usize,
    /// Entries logged and not folded yet (in flight, or beyond the batch).
    pub behind: u64,
}

/// An entry the fold counts, with the answer its history holds.
struct Counted {
    seq: u64,
    entry: LoggedAnswer,
    answer: Answer,
    before: History,
}

/// Fold the log at `now`, batch after batch until it is caught up (or
/// [`FOLD_BATCHES`] ran); `merchant` names the seller in a thank-you call's
/// question; the survey policy names the reasons the reports count by name.
pub fn fold<S: Storage + ?Sized>(
    store: &S,
    policies: (&EscalationPolicy, &SurveyPolicy, &Webhooks),
    merchant: &str,
    now: DateTime<Utc>,
) -> Result<FoldReport, ApiError> {
    let mut total = FoldReport::default();
    for _ in 0..FOLD_BATCHES {
        let (report, progressed) = fold_batch(store, policies, merchant, now)?;
        total.counted += report.counted;
        total.skipped += report.skipped;
        total.repairs += report.repairs;
        total.thank_you_calls += report.thank_you_calls;
        total.behind = report.behind;
        if !progressed || report.behind == 0 {
            break;
        }
    }
    Ok(total)
}

/// One batch of a fold; whether it moved the cursor.
fn fold_batch<S: Storage + ?Sized>(
    store: &S,
    (policy, survey_policy, hooks): (&EscalationPolicy, &SurveyPolicy, &Webhooks),
    merchant: &str,
    now: DateTime<Utc>,
) -> Result<(FoldReport, bool), ApiError> {
    let (cursor, head) = log::cursor_and_head(store, &log::ANSWERS)?;
    let (seqs, read): (Vec<u64>, Vec<Option<Option<LoggedAnswer>>>) =
        log::entries_after(store, &log::ANSWERS, (&cursor, head), FOLD_BATCH)?
            .into_iter()
            .unzip();
    let void: Vec<bool> = read.iter().map(|e| matches!(e, Some(None))).collect();
    let entries: Vec<Option<LoggedAnswer>> = read.into_iter().map(Option::flatten).collect();
    let histories: BTreeMap<String, History> = store.get_json_by(
        entries.iter().flatten().map(|e| e.customer.clone()),
        keys::history_of,
    )?;

    let logged_at: Vec<Option<DateTime<Utc>>> = entries
        .iter()
        .map(|e| e.as_ref().map(|e| e.logged_at))
        .collect();
    let taken_by = taken_by(&logged_at);

    let mut report = FoldReport::default();
    let mut counted = Vec::new();
    let mut folded = cursor.folded;
    let mut missing = None;
    for (((seq, entry), taken_by), void) in
        seqs.iter().copied().zip(entries).zip(taken_by).zip(void)
    {
        if void {
            report.skipped += 1;
            folded = seq;
            continue;
        }
        let history = entry.as_ref().and_then(|e| histories.get(&e.customer));
        let recorded = entry
            .as_ref()
            .zip(history)
            .and_then(|(e, h)| h.answer_to(&e.survey_id));
        let since = cursor.missing_since(seq, taken_by);
        let logged_at = entry.as_ref().map(|e| e.logged_at);
        match judge(seq, logged_at, recorded.map(|a| a.log_seq), since, now) {
            EntryVerdict::Wait => {
                if entry.is_none() {
                    missing = Some((seq, since.unwrap_or(now)));
                }
                break;
            }
            EntryVerdict::Skip(_) => report.skipped += 1,
            EntryVerdict::Count => {
                let (entry, history) = (entry.expect("counted"), history.expect("counted"));
                counted.push(Counted {
                    seq,
                    answer: recorded.expect("counted").clone(),
                    before: history.before(&entry.survey_id),
                    entry,
                });
            }
        }
        folded = seq;
    }
    report.counted = counted.len();
    report.behind = head - folded;

    let progressed = folded > cursor.folded;
    if progressed {
        add_counts(store, folded, &counted, survey_policy)?;
        record_signals(store, &counted)?;
        let calls = answer_calls(store, &counted, (policy, hooks), merchant, now)?;
        (report.repairs, report.thank_you_calls) = (calls.repairs, calls.thank_you);
        announce_answers(store, hooks, &counted, now)?;
    }
    log::advance(store, &log::ANSWERS, (cursor.folded, folded), missing, now)?;
    Ok((report, progressed))
}

/// The day tallies and the loop's answer counters, each record once.
fn add_counts<S: Storage + ?Sized>(
    store: &S,
    end: u64,
    counted: &[Counted],
    survey_policy: &SurveyPolicy,
) -> StoreResult<()> {
    let offered = survey_policy.reasons();
    let mut by_day: BTreeMap<String, Vec<(u64, String)>> = BTreeMap::new();
    let mut loop_items = Vec::new();
    for c in counted {
        let (tally, loop_metrics) = answer_counters(&c.entry, &c.answer);
        let day = crate::date_text::compact_day(c.answer.answered_at.date_naive());
        let parts = by_day.entry(day).or_default();
        parts.push((c.seq, tally.encode()));
        for reason in ReasonTally::of(&c.answer, |r| offered.offers_reason(r)) {
            parts.push((c.seq, reason.encode()));
        }
        loop_items.extend(loop_metrics.into_iter().map(|m| (c.seq, m)));
    }
    let add = |key: &str, items: &[(u64, String)]| {
        store
            .update_json::<FoldedCounts, _>(key, |current| {
                let mut counts = current.unwrap_or_default();
                match counts.add(end, items) {
                    true => Update::Write(counts),
                    false => Update::Keep,
                }
            })
            .map(drop)
    };
    for (day, items) in &by_day {
        add(&keys::tallies(day), items)?;
    }
    if !loop_items.is_empty() {
        add(keys::ANSWER_LOOP_COUNTS, &loop_items)?;
    }
    Ok(())
}

/// The integrity signals (idempotent: safe to record again on a retry),
/// with the batch's devices and work orders read in two batch reads.
fn record_signals<S: Storage + ?Sized>(store: &S, counted: &[Counted]) -> StoreResult<()> {
    let known: BTreeMap<String, Vec<String>> =
        store.get_json_by(counted.iter().map(|c| c.entry.device.clone()), keys::device)?;
    let work_orders: BTreeMap<String, WorkOrder> = store.get_json_by(
        counted.iter().filter_map(|c| c.entry.work_order_id.clone()),
        keys::work_order,
    )?;
    for c in counted {
        let signals = AnswerSignals {
            survey_id: &c.entry.survey_id,
            customer: &c.entry.customer,
            device: &c.entry.device,
            agent: c.entry.agent.as_deref(),
            completed_at: c
                .entry
                .work_order_id
                .as_ref()
                .and_then(|w| work_orders.get(w)?.completed_at),
            answered_at: c.answer.answered_at,
        };
        // A device already known to have answered for this customer, on an
        // answer not given on site, changes nothing: no write.
        let seen = known
            .get(&c.entry.device)
            .is_some_and(|ids| ids.contains(&c.entry.customer));
        if !seen || signals.completed_at.is_some() {
            integrity::record(store, &signals)?;
        }
    }
    Ok(())
}

/// The calls the answers ask for (`LoggedAnswer::call`), each received once
/// per answer however often it is folded (`escalation::receive` is
/// idempotent per source): a repair (low, dropping, a failed "did we fix
/// it?") and a thank-you call (delight). A repair the escalation cannot
/// take now is kept in the outbox, which this tick and the next deliver (an
/// error only when it cannot be kept either: the fold stops before its
/// cursor moves, and the next tick folds the entry again); a thank-you call
/// is optional: one that fails is logged and let go.
fn answer_calls<S: Storage + ?Sized>(
    store: &S,
    counted: &[Counted],
    (policy, hooks): (&EscalationPolicy, &Webhooks),
    merchant: &str,
    now: DateTime<Utc>,
) -> Result<Calls, ApiError> {
    let mut calls = Calls::default();
    for c in counted.iter().filter(|c| !c.entry.call.is_empty()) {
        let Some(survey) = store.get_json::<Survey>(&keys::survey(&c.entry.survey_id))? else {
            continue;
        };
        let contact = store
            .get_json::<Contact>(&keys::contact(&survey.customer_id))?
            .unwrap_or_else(|| Contact {
                customer_id: survey.customer_id.clone(),
                ..Default::default()
            });
        let lang = Lang::from_locale(contact.locale.as_deref());
        let question = texts(lang).question(c.answer.scale, c.answer.kind, merchant);
        let Some(call) = answer_call(
            &survey,
            &contact,
            (&c.before, &c.answer),
            (&c.entry.call, c.entry.reopens.clone()),
            policy,
            Some(question),
        ) else {
            continue;
        };
        match (receive(store, call.request(), (policy, hooks), now), &call) {
            (Ok(_), AnswerCall::ThankYou(_)) => calls.thank_you += 1,
            (Ok(_), AnswerCall::Repair(_)) => calls.repairs += 1,
            (Err(e), AnswerCall::ThankYou(_)) => eprintln!(
                "answer log: thank-you call for survey {} skipped ({}): {}",
                survey.survey_id, e.code, e.message
            ),
            (Err(e), AnswerCall::Repair(request)) => {
                eprintln!(
                    "answer log: the repair for survey {} waits in the outbox ({}): {}",
                    survey.survey_id, e.code, e.message
                );
                crate::flows::escalation::keep(store, request)?;
            }
        }
    }
    Ok(calls)
}

/// The calls one batch of a fold made.
#[derive(Default)]
struct Calls {
    repairs: usize,
    thank_you: usize,
}

/// `answer.recorded` for each answer folded (before the cursor moves past
/// it: a fold finished by the next announces again, and only one is sent).
fn announce_answers<S: Storage + ?Sized>(
    store: &S,
    hooks: &Webhooks,
    counted: &[Counted],
    now: DateTime<Utc>,
) -> StoreResult<()> {
    for c in counted {
        let a = &c.answer;
        let data = || {
            crate::webhooks::to_value(&AnswerData {
                survey_id: &a.survey_id,
                customer_id: &c.entry.customer,
                kind: a.kind,
                channel: a.channel,
                scale: a.scale,
                score: a.score,
                comment: &a.comment,
                reasons: &a.reasons,
                answered_at: a.answered_at,
                agent: &c.entry.agent,
                work_order_id: &c.entry.work_order_id,
                resurvey: c.entry.resurvey,
            })
        };
        let event = WebhookEvent::AnswerRecorded;
        crate::flows::webhooks::announce(store, hooks, event, &a.survey_id, None, data, now)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::answer::{record_answer, Submission};
    use crate::flows::report::read_tallies;
    use crate::model::Channel;
    use crate::storage::{Faulty, KvMode, MemoryStorage};

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn survey(i: usize) -> Survey {
        serde_json::from_value(serde_json::json!({
            "survey_id": format!("sv_{i}"), "event_id": format!("e{i}"), "kind": "product",
            "scale": "csat", "customer_id": format!("c{}", i % 3), "agent_id": "agent-1",
            "due_at": "2026-12-04T09:00:00Z", "send_by": "2026-12-05T09:00:00Z",
            "expires_at": "2026-12-18T09:00:00Z", "next_attempt_at": "2026-12-04T09:00:00Z",
            "state": "sent"
        }))
        .unwrap()
    }

    /// Answer surveys `range` (scores 1–5 in turn) at 10:00.
    fn answer<S: Storage + ?Sized>(store: &S, range: std::ops::Range<usize>) {
        for i in range {
            let score = (i % 5 + 1).to_string();
            let submission = Submission {
                score: Some(&score),
                comment: None,
                reasons: &[],
            };
            let at = t("2026-12-04T10:00:00Z");
            record_answer(store, &survey(i), Channel::Sms, &submission, "dev", at).unwrap();
        }
    }

    fn fold_at<S: Storage + ?Sized>(store: &S, at: &str) -> Result<FoldReport, ApiError> {
        fold(
            store,
            (
                &EscalationPolicy::default(),
                &SurveyPolicy::default(),
                &crate::webhooks::NOBODY,
            ),
            "Shop",
            t(at),
        )
    }

    /// Answers counted on the day, by score.
    fn by_score<S: Storage + ?Sized>(store: &S) -> BTreeMap<u8, i64> {
        let mut scores = BTreeMap::new();
        for (_, tally, n) in read_tallies(store, &[t("2026-12-04T00:00:00Z").date_naive()]).unwrap()
        {
            *scores.entry(tally.score).or_default() += n;
        }
        scores
    }

    #[test]
    fn a_fold_counts_each_recorded_answer_once() {
        for mode in KvMode::ALL {
            let s = MemoryStorage::in_memory_like(mode);
            answer(&s, 0..10);
            let r = fold_at(&s, "2026-12-04T10:01:00Z").unwrap();
            assert_eq!((r.counted, r.behind), (10, 0), "{mode:?}");
            assert_eq!(by_score(&s).values().sum::<i64>(), 10);
            assert_eq!(by_score(&s)[&1], 2);
            // Nothing new: nothing counted again.
            assert_eq!(fold_at(&s, "2026-12-04T10:02:00Z").unwrap().counted, 0);
            answer(&s, 10..12);
            assert_eq!(fold_at(&s, "2026-12-04T10:03:00Z").unwrap().counted, 2);
            assert_eq!(by_score(&s).values().sum::<i64>(), 12, "{mode:?}");
            assert!(
                s.get(&keys::answer_log(1)).unwrap().is_none(),
                "folded entries go"
            );
        }
    }

    /// The entry survey `i`'s answer is logged under at 10:00, by a writer
    /// that has not recorded the answer (yet).
    fn logged_only(i: usize) -> LoggedAnswer {
        LoggedAnswer {
            survey_id: format!("sv_{i}"),
            customer: keys::pseudonym(&format!("c{i}")),
            agent: None,
            resurvey: false,
            device: "dev".into(),
            work_order_id: None,
            call: vec![],
            reopens: None,
            logged_at: t("2026-12-04T10:00:00Z"),
        }
    }

    /// A writer killed between logging an answer and recording it, then the
    /// retry: two entries name the survey in one batch, and the retry's,
    /// which the history holds, counts.
    #[test]
    fn the_retry_after_a_writer_died_counts_beside_its_orphan() {
        for mode in KvMode::ALL {
            let s = MemoryStorage::in_memory_like(mode);
            let orphan = logged_only(0);
            append(&s, &orphan).unwrap();
            answer(&s, 0..1);
            let r = fold_at(&s, "2026-12-04T10:06:00Z").unwrap();
            assert_eq!((r.counted, r.skipped), (1, 1), "{mode:?}");
            assert_eq!(by_score(&s).values().sum::<i64>(), 1, "{mode:?}");
        }
    }

    /// An answer whose writer is still at work (logged, not yet in the
    /// history) holds the fold back until it is recorded or given up.
    #[test]
    fn an_entry_in_flight_is_waited_for() {
        let s = MemoryStorage::new();
        answer(&s, 0..2);
        let entry = logged_only(9);
        append(&s, &entry).unwrap();
        answer(&s, 2..3);
        let r = fold_at(&s, "2026-12-04T10:01:00Z").unwrap();
        assert_eq!((r.counted, r.behind), (2, 2));
        let r = fold_at(&s, "2026-12-04T10:06:00Z").unwrap();
        assert_eq!((r.counted, r.skipped, r.behind), (1, 1, 0));
        assert_eq!(by_score(&s).values().sum::<i64>(), 3);
    }

    /// A store failure at any step of a fold, then a fold again: every
    /// answer counted exactly once.
    #[test]
    fn a_store_failure_at_any_step_of_a_fold_is_finished_by_the_next() {
        for mode in KvMode::ALL {
            let steps = Faulty::sweep(mode, |s, step| {
                answer(s.inner(), 0..6);
                s.fail_op(step);
                let _ = fold_at(s, "2026-12-04T10:01:00Z");
                s.disarm();
                fold_at(s, "2026-12-04T10:02:00Z").unwrap();
                let counted = by_score(s.inner());
                assert_eq!(
                    counted.values().sum::<i64>(),
                    6,
                    "{mode:?} step {step}: {counted:?}"
                );
                assert_eq!(counted[&1], 2, "{mode:?} step {step}");
            });
            assert!(steps >= 6, "{mode:?}: only {steps} operations?");
        }
    }

    /// The customers' repairs after answers 0..6 (low: 0, 1 and 5, one per
    /// customer): the tasks each customer's callbacks record names.
    fn repairs<S: Storage + ?Sized>(store: &S) -> Vec<(String, Vec<String>)> {
        (0..3)
            .map(|c| {
                let record =
                    crate::flows::escalation::callbacks_of(store, &format!("c{c}")).unwrap();
                let ids = record.tasks.iter().map(|t| t.task_id.clone()).collect();
                (format!("c{c}"), ids)
            })
            .collect()
    }

    fn store_surveys<S: Storage + ?Sized>(store: &S, range: std::ops::Range<usize>) {
        for i in range {
            store
                .put_json(&keys::survey(&format!("sv_{i}")), &survey(i))
                .unwrap();
        }
    }

    /// A low answer's repair is made by the fold, once, whatever step of the
    /// fold failed before the next one finished it.
    #[test]
    fn each_low_answer_gets_one_repair_across_a_failure_at_any_step() {
        for mode in KvMode::ALL {
            let steps = Faulty::sweep(mode, |s, step| {
                store_surveys(s.inner(), 0..6);
                answer(s.inner(), 0..6);
                s.fail_op(step);
                let _ = fold_at(s, "2026-12-04T10:01:00Z");
                s.disarm();
                fold_at(s, "2026-12-04T10:02:00Z").unwrap();
                // (A repair the first fold kept in the outbox is the tick's.)
                for (customer, tasks) in repairs(s.inner()) {
                    let kept = s
                        .inner()
                        .get(keys::OUTBOX_INDEX)
                        .unwrap()
                        .is_some_and(|l| String::from_utf8_lossy(&l).contains("sv_"));
                    assert!(
                        tasks.len() == 1 || (tasks.is_empty() && kept),
                        "{mode:?} step {step}: {customer} has {tasks:?}"
                    );
                }
            });
            assert!(steps >= 20, "{mode:?}: only {steps} operations?");
        }
    }

    /// A repair the escalation cannot take (here: the customer's callbacks
    /// record does not parse) waits in the outbox; the fold goes on.
    #[test]
    fn a_repair_that_cannot_be_made_now_waits_in_the_outbox() {
        let s = MemoryStorage::new();
        store_surveys(&s, 0..6);
        s.set(&keys::customer_callbacks("c1"), b"{not json")
            .unwrap();
        answer(&s, 0..6);
        let r = fold_at(&s, "2026-12-04T10:01:00Z").unwrap();
        assert_eq!((r.counted, r.repairs), (6, 2), "{r:?}");
        let waiting: Vec<String> = s.get_json(keys::OUTBOX_INDEX).unwrap().unwrap();
        assert_eq!(waiting, vec!["sv_1".to_string()]);
        let kept: crate::task::EscalationRequest =
            s.get_json(&keys::outbox("sv_1")).unwrap().unwrap();
        assert_eq!(kept.reasons, vec![crate::model::TaskReason::LowScore]);
        assert_eq!(kept.occurred_at, t("2026-12-04T10:00:00Z"));
    }

    /// Two folds at once (a slow tick and the next): each answer once.
    #[test]
    fn overlapping_folds_count_each_answer_once() {
        for mode in KvMode::ALL {
            let s = MemoryStorage::in_memory_like(mode);
            answer(&s, 0..40);
            std::thread::scope(|scope| {
                for _ in 0..4 {
                    scope.spawn(|| fold_at(&s, "2026-12-04T10:01:00Z").unwrap());
                }
                scope.spawn(|| answer(&s, 40..60));
            });
            fold_at(&s, "2026-12-04T10:02:00Z").unwrap();
            assert_eq!(by_score(&s).values().sum::<i64>(), 60, "{mode:?}");
        }
    }
}
