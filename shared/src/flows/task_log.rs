//! The task log: how a new callback task reaches the indexes without the
//! escalation paying for them.
//!
//! An escalation that creates a task logs it first (`append`: a number from
//! one counter, the entry under it), then creates the task, then commits it
//! by swapping the customer's callbacks record (`model::CustomerCallbacks`)
//! to name the task under that number. The escalator's tick folds the log
//! (`fold`): each entry the customer's record confirms is indexed (the
//! owner's queue, the open lists, the day's log, the loop's owners) and
//! counted `created` in a record that remembers the last entry it holds
//! (`answer_log::FoldedCounts`), so a fold that crashes and runs again, or
//! two that overlap, count each task once. An entry nobody confirms (a
//! delivery that failed before its commit and was finished by another, one
//! that lost a race and merged instead) is skipped.
//!
//! Until the fold, readers of the open lists add the tasks of the log's
//! unfolded entries (`unfolded`): a task is in its owner's queue at once.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::answer_log::{judge, taken_by, EntryVerdict, FoldedCounts, SkipReason};
use crate::flows::log;
use crate::flows::webhooks::announce_task;
use crate::keys;
use crate::model::{CallbackTask, CustomerCallbacks, LoggedTask};
use crate::storage::{Storage, StorageExt, StoreResult, Update};
use crate::webhooks::{WebhookEvent, Webhooks};

/// The most entries one batch of a fold looks at (one batch read each).
pub const FOLD_BATCH: u64 = 500;
/// The most batches one fold runs.
pub const FOLD_BATCHES: usize = 100;
/// The most unfolded entries a reader adds (a tick that keeps running is
/// never this far behind).
pub const UNFOLDED_READ: u64 = 1000;

/// Log a task about to be created; its number, for the customer's record.
pub fn append<S: Storage + ?Sized>(store: &S, entry: &LoggedTask) -> StoreResult<u64> {
    log::append(store, &log::TASKS, entry)
}

/// Mark entry `seq` as never to be confirmed (its writer merged instead).
pub fn void<S: Storage + ?Sized>(store: &S, seq: u64) -> StoreResult<()> {
    log::void(store, &keys::task_log(seq))
}

/// The task ids of the log's entries not folded yet (at most
/// [`UNFOLDED_READ`]): what readers of the open lists add to them.
pub fn unfolded<S: Storage + ?Sized>(store: &S) -> StoreResult<Vec<String>> {
    let (cursor, head) = log::cursor_and_head(store, &log::TASKS)?;
    let read =
        log::entries_after::<_, LoggedTask>(store, &log::TASKS, (&cursor, head), UNFOLDED_READ)?;
    Ok(read
        .into_iter()
        .filter_map(|(_, e)| Some(e??.task_id))
        .collect())
}

/// The task ids in `lists` (open lists, owner queues) and those of the
/// log's unfolded entries, once each: callers load the tasks and keep those
/// they want (a new task may be anyone's, and closed already).
pub fn with_unfolded<S: Storage + ?Sized>(store: &S, lists: &[String]) -> StoreResult<Vec<String>> {
    let mut ids = store.read_lists(lists)?;
    ids.extend(unfolded(store)?);
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// What one fold did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TaskFoldReport {
    pub indexed: usize,
    pub skipped: usize,
    /// Entries logged and not folded yet (in flight, or beyond the batch).
    pub behind: u64,
}

/// Fold the log at `now`, batch after batch until it is caught up.
pub fn fold<S: Storage + ?Sized>(
    store: &S,
    hooks: &Webhooks,
    now: DateTime<Utc>,
) -> StoreResult<TaskFoldReport> {
    let mut total = TaskFoldReport::default();
    for _ in 0..FOLD_BATCHES {
        let (report, progressed) = fold_batch(store, hooks, now)?;
        total.indexed += report.indexed;
        total.skipped += report.skipped;
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
    hooks: &Webhooks,
    now: DateTime<Utc>,
) -> StoreResult<(TaskFoldReport, bool)> {
    let (cursor, head) = log::cursor_and_head(store, &log::TASKS)?;
    let read =
        log::entries_after::<_, LoggedTask>(store, &log::TASKS, (&cursor, head), FOLD_BATCH)?;
    // The customers' records before the tasks: a record that names a task
    // was swapped after the task was written.
    let records: BTreeMap<String, CustomerCallbacks> = store.get_json_by(
        read.iter()
            .filter_map(|(_, e)| Some(e.as_ref()?.as_ref()?.customer.clone())),
        keys::customer_callbacks_of,
    )?;
    let logged_at: Vec<Option<DateTime<Utc>>> = read
        .iter()
        .map(|(_, e)| e.as_ref().map(|e| e.as_ref().map_or(now, |e| e.logged_at)))
        .collect();
    let taken_by = taken_by(&logged_at);

    let mut report = TaskFoldReport::default();
    let mut confirmed: Vec<(u64, String)> = Vec::new();
    let mut folded = cursor.folded;
    let mut missing = None;
    for ((seq, entry), taken_by) in read.into_iter().zip(taken_by) {
        let verdict = match &entry {
            None => {
                let since = cursor.missing_since(seq, taken_by);
                let verdict = judge(seq, None, None, since, now);
                if verdict == EntryVerdict::Wait {
                    missing = Some((seq, since.unwrap_or(now)));
                }
                verdict
            }
            // Void (or unreadable): never to be confirmed.
            Some(None) => EntryVerdict::Skip(SkipReason::CountedElsewhere),
            Some(Some(e)) => {
                let recorded = records
                    .get(&e.customer)
                    .and_then(|r| r.logged(&e.task_id))
                    .map(Some);
                judge(seq, Some(e.logged_at), recorded, None, now)
            }
        };
        match verdict {
            EntryVerdict::Wait => break,
            EntryVerdict::Skip(_) => report.skipped += 1,
            EntryVerdict::Count => {
                let task_id = entry.flatten().expect("a confirmed entry").task_id;
                confirmed.push((seq, task_id));
            }
        }
        folded = seq;
    }
    report.behind = head - folded;
    let progressed = folded > cursor.folded;
    if progressed {
        let ids: Vec<String> = confirmed.iter().map(|(_, id)| id.clone()).collect();
        let tasks: BTreeMap<String, CallbackTask> = store.get_json_by(ids, keys::task)?;
        let mut counts = Vec::new();
        for (seq, id) in &confirmed {
            let Some(task) = tasks.get(id) else { continue };
            index(store, task)?;
            if !task.state.is_closed() {
                // Announced by its escalation already, unless that stopped
                // after its commit: announced twice, sent once.
                announce_task(store, hooks, WebhookEvent::TaskCreated, task, now)?;
            }
            counts.extend(created_counts(task).into_iter().map(|m| (*seq, m)));
            report.indexed += 1;
        }
        store.update_json::<FoldedCounts, _>(keys::TASK_LOOP_COUNTS, |current| {
            let mut c = current.unwrap_or_default();
            match c.add(folded, &counts) {
                true => Update::Write(c),
                false => Update::Keep,
            }
        })?;
    }
    log::advance(store, &log::TASKS, (cursor.folded, folded), missing, now)?;
    Ok((report, progressed))
}

/// Put a confirmed task where readers find it (each step idempotent; the
/// day's log drops repeats on reading). A task closed since is not listed
/// as open; one closed while this runs is taken out by the tick's sweep.
fn index<S: Storage + ?Sized>(store: &S, task: &CallbackTask) -> StoreResult<()> {
    let id = &task.task_id;
    store.append_to_log(
        &keys::tasks_created(&crate::date_text::compact_day(task.created_at.date_naive())),
        id,
    )?;
    store.add_to_list(keys::LOOP_OWNERS, &task.owner)?;
    if !task.state.is_closed() {
        store.add_to_list(&keys::owner_tasks(&task.owner), id)?;
        if let Some(supervisor) = &task.escalated_to {
            store.add_to_list(&keys::owner_tasks(supervisor), id)?;
        }
        store.add_to_list(&keys::open_tasks(id), id)?;
    }
    Ok(())
}

/// The loop's `created` counters a task moves: overall, its owner's, its reason's.
fn created_counts(task: &CallbackTask) -> Vec<String> {
    vec![
        "created".into(),
        format!("owner/{}/created", task.owner),
        format!("reason/{}/created", task.reason.as_str()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::answer_log::ORPHAN_AFTER;
    use crate::flows::escalation::receive;
    use crate::flows::queue::build_queue;
    use crate::flows::testing::{at, request};
    use crate::model::TaskReason;
    use crate::storage::{Faulty, KvMode, MemoryStorage};
    use crate::task::EscalationPolicy;
    use crate::webhooks::NOBODY;

    fn now() -> DateTime<Utc> {
        at("2026-12-04T10:00:00+01:00")
    }

    /// A task for each of customers `c1`, `c2`, … (one per customer).
    fn tasks<S: Storage + ?Sized>(store: &S, n: usize) -> Vec<CallbackTask> {
        (0..n)
            .map(|i| {
                let mut r = request(&format!("sv_{i}"), TaskReason::LowScore);
                r.contact.customer_id = format!("c{i}");
                receive(store, &r, (&EscalationPolicy::default(), &NOBODY), now())
                    .unwrap()
                    .unwrap()
            })
            .collect()
    }

    /// What the fold leaves: the open lists, the day's log, the loop's
    /// `created` count.
    fn indexed(s: &MemoryStorage) -> (Vec<String>, Vec<String>, i64) {
        let mut open = s.read_lists(&keys::all_open_tasks()).unwrap();
        open.sort();
        let mut day = s.read_logs(&[keys::tasks_created("20261204")]).unwrap();
        day.sort();
        day.dedup();
        let created = crate::flows::report::loop_report_now(s).unwrap()["created"]
            .as_i64()
            .unwrap();
        (open, day, created)
    }

    #[test]
    fn a_new_task_is_in_its_queue_before_the_fold_and_after() {
        for mode in KvMode::ALL {
            let s = MemoryStorage::in_memory_like(mode);
            let task = tasks(&s, 1).remove(0);
            let queue = |s: &MemoryStorage| {
                build_queue(s, &EscalationPolicy::default(), Some(&task.owner), now())
                    .unwrap()
                    .callable_now
                    .len()
            };
            assert_eq!(queue(&s), 1, "{mode:?}: from the unfolded log");
            assert!(s.read_lists(&keys::all_open_tasks()).unwrap().is_empty());
            let report = fold(&s, &NOBODY, now()).unwrap();
            assert_eq!((report.indexed, report.behind), (1, 0), "{mode:?}");
            assert_eq!(queue(&s), 1, "{mode:?}: from the lists");
            let ids = vec![task.task_id.clone()];
            assert_eq!(indexed(&s), (ids.clone(), ids.clone(), 1), "{mode:?}");
            assert!(unfolded(&s).unwrap().is_empty());
            // Folding again changes nothing.
            assert_eq!(fold(&s, &NOBODY, now()).unwrap().indexed, 0);
            assert_eq!(indexed(&s), (ids.clone(), ids, 1), "{mode:?}");
        }
    }

    /// A store failure at any step of a fold, then the next fold: each task
    /// listed and counted once.
    #[test]
    fn a_fold_interrupted_at_any_step_counts_each_task_once() {
        for mode in KvMode::ALL {
            let steps = Faulty::sweep(mode, |s, step| {
                let made = tasks(s.inner(), 3);
                s.fail_op(step);
                let _ = fold(s, &NOBODY, now());
                s.disarm();
                fold(s, &NOBODY, now()).unwrap();
                let mut ids: Vec<String> = made.iter().map(|t| t.task_id.clone()).collect();
                ids.sort();
                assert_eq!(
                    indexed(s.inner()),
                    (ids.clone(), ids, 3),
                    "{mode:?} step {step}"
                );
            });
            assert!(steps >= 10, "{mode:?}: only {steps} operations?");
        }
    }

    #[test]
    fn racing_folds_count_each_task_once() {
        for mode in KvMode::ALL {
            let s = MemoryStorage::in_memory_like(mode);
            let made = tasks(&s, 5);
            std::thread::scope(|scope| {
                for _ in 0..3 {
                    scope.spawn(|| fold(&s, &NOBODY, now()).unwrap());
                }
            });
            assert_eq!(indexed(&s).2, made.len() as i64, "{mode:?}");
            assert_eq!(indexed(&s).0.len(), made.len(), "{mode:?}");
        }
    }

    /// An entry whose task was never committed (its delivery stopped after
    /// logging) holds the fold while its writer may be at work, then is
    /// skipped; a void one is skipped at once.
    #[test]
    fn entries_nobody_confirms_are_waited_for_then_skipped() {
        let s = MemoryStorage::new();
        let entry = LoggedTask {
            task_id: "task_x".into(),
            customer: keys::pseudonym("c9"),
            logged_at: now(),
        };
        let seq = append(&s, &entry).unwrap();
        let voided = append(&s, &entry).unwrap();
        void(&s, voided).unwrap();
        let made = tasks(&s, 1);
        let early = fold(&s, &NOBODY, now()).unwrap();
        assert_eq!((early.indexed, early.behind), (0, 3));
        assert_eq!(
            unfolded(&s).unwrap().len(),
            2,
            "readers see what waits, not the void"
        );
        let late = fold(&s, &NOBODY, now() + ORPHAN_AFTER).unwrap();
        assert_eq!((late.indexed, late.skipped, late.behind), (1, 2, 0));
        assert_eq!(indexed(&s).2, 1);
        assert!(
            s.get(&keys::task_log(seq)).unwrap().is_none(),
            "folded entries go"
        );
        assert_eq!(indexed(&s).0, vec![made[0].task_id.clone()]);
    }

    /// Whatever step an escalation stops at, and whether or not it is
    /// delivered again, its task's `task.created` is announced under one id
    /// once the task is committed: by the delivery that committed it, or by
    /// the fold.
    #[test]
    fn a_committed_task_is_announced_under_one_id_whatever_step_failed() {
        let hooks = Webhooks::parse(
            r#"[{"url":"https://crm.example/hooks","events":["task.created"],"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}]"#,
        )
        .unwrap();
        for mode in KvMode::ALL {
            let steps = Faulty::sweep(mode, |s, step| {
                let r = request("sv_1", TaskReason::LowScore);
                let policies = (&EscalationPolicy::default(), &hooks);
                s.fail_op(step);
                let first = receive(s, &r, policies, now());
                s.disarm();
                // The hand-off's retry, when the first delivery failed.
                let task = match first {
                    Ok(t) => t.unwrap(),
                    Err(_) => receive(s, &r, policies, now()).unwrap().unwrap(),
                };
                fold(s.inner(), &hooks, now()).unwrap();
                let announced = crate::flows::webhooks::deliveries(s.inner(), None, 10).unwrap();
                let ids: std::collections::BTreeSet<&str> =
                    announced.iter().map(|d| d.delivery.id.as_str()).collect();
                assert_eq!(ids.len(), 1, "{mode:?} step {step}: {announced:?}");
                assert_eq!(
                    announced[0].delivery.data["task_id"], task.task_id,
                    "{mode:?} step {step}"
                );
            });
            assert!(steps >= 5, "{mode:?}: only {steps} operations?");
        }
    }

    /// A task closed before the fold is logged for its day and counted,
    /// never listed as open.
    #[test]
    fn a_task_closed_before_the_fold_is_not_listed_open() {
        let s = MemoryStorage::new();
        let task = tasks(&s, 1).remove(0);
        s.update_json::<CallbackTask, _>(&keys::task(&task.task_id), |t| {
            let mut t = t.unwrap();
            t.state = crate::model::TaskState::Resolved;
            Update::Write(t)
        })
        .unwrap();
        fold(&s, &NOBODY, now()).unwrap();
        let ids = vec![task.task_id.clone()];
        assert_eq!(indexed(&s), (vec![], ids, 1));
    }
}
