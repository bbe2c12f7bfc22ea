//! What the supervisor's console reads and does, through the same flows and
//! counters as the API (`GET /reports/summary`, `GET /reports/loop`,
//! `GET /callbacks`), so the console and the API can never disagree: the
//! overview of a period, the open callbacks filtered, a reassignment, and the
//! development outbox that keeps what a first run would have sent.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::flows::escalation::{commit, list_tasks};
use crate::flows::report::{loop_report_now, summary_report};
use crate::keys;
use crate::model::{CallbackTask, Outcome, TaskReason, TaskState};
use crate::policy::SurveyPolicy;
use crate::report::SummaryReport;
use crate::storage::{Storage, StorageExt};
use crate::ApiError;

/// The longest period the overview shows at once.
pub const MAX_DAYS: i64 = 92;

/// One period of the loop at a glance.
#[derive(Debug, Serialize)]
pub struct Overview {
    pub by_day: SummaryReport,
    pub by_agent: SummaryReport,
    pub by_channel: SummaryReport,
    /// `GET /reports/loop`, as it stands now.
    pub loop_report: serde_json::Value,
    pub open_now: usize,
    pub breached_now: usize,
}

pub fn overview<S: Storage + ?Sized>(
    store: &S,
    from: NaiveDate,
    to: NaiveDate,
    today: NaiveDate,
) -> Result<Overview, ApiError> {
    let open = list_tasks(store, None, Some(TaskState::Open), 1, today)?;
    Ok(Overview {
        by_day: summary_report(store, from, to, "day", MAX_DAYS)?,
        by_agent: summary_report(store, from, to, "agent", MAX_DAYS)?,
        by_channel: summary_report(store, from, to, "channel", MAX_DAYS)?,
        loop_report: loop_report_now(store)?,
        open_now: open.len(),
        breached_now: open.iter().filter(|t| t.breached).count(),
    })
}

/// Which open callbacks the console lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskFilter {
    pub owner: Option<String>,
    pub reason: Option<TaskReason>,
    pub breached_only: bool,
    /// Due before the end of this UTC day.
    pub due_today: bool,
}

impl TaskFilter {
    pub fn keeps(&self, t: &CallbackTask, now: DateTime<Utc>) -> bool {
        let end_of_day = (now.date_naive() + chrono::Duration::days(1))
            .and_hms_opt(0, 0, 0)
            .map(|d| d.and_utc());
        self.owner.as_ref().is_none_or(|o| *o == t.owner)
            && self.reason.is_none_or(|r| t.reasons.contains(&r))
            && (!self.breached_only || t.breached)
            && (!self.due_today || end_of_day.is_some_and(|e| t.due_by < e))
    }
}

/// The callbacks not closed yet that `filter` keeps, most urgent first.
pub fn open_callbacks<S: Storage + ?Sized>(
    store: &S,
    filter: &TaskFilter,
    now: DateTime<Utc>,
) -> Result<Vec<CallbackTask>, ApiError> {
    let mut tasks: Vec<CallbackTask> = list_tasks(store, None, None, 1, now.date_naive())?
        .into_iter()
        .filter(|t| !t.state.is_closed() && filter.keeps(t, now))
        .collect();
    tasks.sort_by_key(|t| (t.priority, t.due_by));
    Ok(tasks)
}

/// Give task `id` to `owner` (its queue changes with it, exactly once).
pub fn reassign<S: Storage + ?Sized>(
    store: &S,
    id: &str,
    owner: &str,
    survey_policy: &SurveyPolicy,
    now: DateTime<Utc>,
) -> Result<CallbackTask, ApiError> {
    let step = |t: &CallbackTask| Ok(crate::task::reassign(t, owner, "supervisor", now)?);
    let (_, after) = commit(
        store,
        id,
        None,
        Some(Outcome::Claimed),
        survey_policy,
        now,
        step,
    )?;
    Ok(after)
}

/// A message the generic sender would have delivered, kept for a first run
/// without a sender (the development outbox).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldMessage {
    pub received_at: DateTime<Utc>,
    pub message: serde_json::Value,
}

/// How many held messages the development outbox keeps (the newest).
const DEV_OUTBOX_KEPT: usize = 200;

/// Keep `message` in the development outbox.
pub fn hold_message<S: Storage + ?Sized>(
    store: &S,
    message: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    store.update_json::<Vec<HeldMessage>, _>(keys::DEV_OUTBOX, |cur| {
        let mut held = cur.unwrap_or_default();
        let id = message.get("message_id").cloned();
        if id.is_some()
            && held
                .iter()
                .any(|h| h.message.get("message_id") == id.as_ref())
        {
            return crate::storage::Update::Keep;
        }
        held.push(HeldMessage {
            received_at: now,
            message: message.clone(),
        });
        if held.len() > DEV_OUTBOX_KEPT {
            held.remove(0);
        }
        crate::storage::Update::Write(held)
    })?;
    Ok(())
}

/// The development outbox, newest first.
pub fn held_messages<S: Storage + ?Sized>(store: &S) -> Result<Vec<HeldMessage>, ApiError> {
    let mut held: Vec<HeldMessage> = store.get_json(keys::DEV_OUTBOX)?.unwrap_or_default();
    held.reverse();
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::escalation::receive;
    use crate::flows::testing::{at, request};
    use crate::storage::{KvMode, MemoryStorage};
    use crate::task::EscalationPolicy;

    #[test]
    fn reassigning_moves_the_task_between_queues_once() {
        for mode in KvMode::ALL {
            let s = MemoryStorage::in_memory_like(mode);
            let now = at("2026-12-04T10:00:00+01:00");
            let p = EscalationPolicy::default();
            let t = receive(&s, &request("sv_1", TaskReason::LowScore), &p, now)
                .unwrap()
                .unwrap();
            assert_eq!(t.owner, "agent-1");
            let after = reassign(&s, &t.task_id, "agent-2", &SurveyPolicy::default(), now).unwrap();
            assert_eq!(after.owner, "agent-2");
            let queue = |o: &str| {
                s.get_json::<Vec<String>>(&keys::owner_tasks(o))
                    .unwrap()
                    .unwrap_or_default()
            };
            assert_eq!(
                (queue("agent-1").len(), queue("agent-2").len()),
                (0, 1),
                "{mode:?}"
            );
            let filter = TaskFilter {
                owner: Some("agent-2".into()),
                ..Default::default()
            };
            assert_eq!(open_callbacks(&s, &filter, now).unwrap().len(), 1);
            let filter = TaskFilter {
                reason: Some(TaskReason::Complaint),
                ..Default::default()
            };
            assert!(open_callbacks(&s, &filter, now).unwrap().is_empty());
        }
    }

    #[test]
    fn the_dev_outbox_keeps_each_message_once() {
        let s = MemoryStorage::new();
        let now = at("2026-12-04T10:00:00+01:00");
        let m = serde_json::json!({"message_id": "msg_1", "channel": "sms"});
        hold_message(&s, m.clone(), now).unwrap();
        hold_message(&s, m, now).unwrap();
        hold_message(&s, serde_json::json!({"message_id": "msg_2"}), now).unwrap();
        let held = held_messages(&s).unwrap();
        assert_eq!(held.len(), 2);
        assert_eq!(held[0].message["message_id"], "msg_2", "newest first");
    }
}
