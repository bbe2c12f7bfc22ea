//! What an agent may call now: one task's window, and a queue of open tasks
//! split into callable now and later (`GET /callbacks/:id/window`, `/queue`).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::calling_hours::Window;
use crate::contact::open_cases;
use crate::keys;
use crate::model::{CallbackTask, Contact, EventLogEntry, MergedEscalation, TaskReason, WorkOrder};
use crate::storage::{Storage, StorageExt};
use crate::task::EscalationPolicy;
use crate::window::{check_window, work_order_view, WindowCheck, WindowReason, WorkOrderView};
use crate::ApiError;

/// The task's window, judged with the freshest contact, work-order and
/// contact records; and where its work order stands.
pub fn judge<S: Storage + ?Sized>(
    store: &S,
    task: &CallbackTask,
    policy: &EscalationPolicy,
    now: DateTime<Utc>,
) -> Result<(WindowCheck, Option<WorkOrderView>), ApiError> {
    let contact: Contact = store
        .get_json(&keys::contact(&task.customer_id))?
        .unwrap_or_else(|| task.context.customer.clone());
    let work_order: Option<WorkOrder> = match &task.work_order_id {
        Some(id) => store.get_json(&keys::work_order(id))?,
        None => None,
    };
    let contacts_made: Vec<DateTime<Utc>> = store
        .get_json(&keys::contacts(&task.customer_id))?
        .unwrap_or_default();
    let check = check_window(
        task,
        &contact,
        work_order.as_ref(),
        &contacts_made,
        policy,
        now,
    );
    let view = task
        .work_order_id
        .as_deref()
        .map(|id| work_order_view(id, work_order.as_ref()));
    Ok((check, view))
}

/// A task as `GET /callbacks/:id` shows it: the task, with what the caller
/// needs current rather than as it was when the task was made — the
/// customer's contact record (phone number), their timeline and open cases,
/// the orders every merged escalation named, the work order's state, and
/// the customer's local time.
pub fn task_view<S: Storage + ?Sized>(
    store: &S,
    task: &CallbackTask,
    policy: &EscalationPolicy,
    now: DateTime<Utc>,
) -> Result<serde_json::Value, ApiError> {
    let mut task = task.clone();
    if let Some(contact) = store.get_json::<Contact>(&keys::contact(&task.customer_id))? {
        task.context.customer = contact;
    }
    let events: Vec<EventLogEntry> = store
        .get_json(&keys::event_log(&task.customer_id))?
        .unwrap_or_default();
    task.context.open_cases = open_cases(&events);
    task.context.events = events;
    let (check, work_order) = judge(store, &task, policy, now)?;
    let mut orders: Vec<String> = Vec::new();
    for o in std::iter::once(&task.context.order_id)
        .chain(task.context.merged.iter().map(|m| &m.order_id))
        .flatten()
    {
        if !orders.contains(o) {
            orders.push(o.clone());
        }
    }
    let mut value = serde_json::to_value(&task).map_err(|e| ApiError::internal(e.to_string()))?;
    value["customer_local_time"] = check.customer_local_time.into();
    value["phone"] = task.context.customer.phone.clone().into();
    value["orders"] = orders.into();
    value["work_order"] = serde_json::to_value(work_order).unwrap_or_default();
    Ok(value)
}

/// One line of the queue: what an agent needs to see before dialling.
#[derive(Serialize)]
pub struct QueueEntry {
    pub task_id: String,
    pub reason: TaskReason,
    pub reasons: Vec<TaskReason>,
    pub priority: u8,
    pub owner: String,
    pub due_by: DateTime<Utc>,
    pub customer_id: String,
    pub customer_name: Option<String>,
    pub customer_local_time: String,
    pub score: Option<u8>,
    pub comment: Option<String>,
    /// The reasons the customer gave with the answer (policy ids).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub customer_reasons: Vec<String>,
    pub question: Option<String>,
    pub next_window: Option<Window>,
    pub reasons_not_now: Vec<WindowReason>,
    pub phone: Option<String>,
    pub order_id: Option<String>,
    /// Where the task's work order stands (booked: the technician has not come).
    pub work_order: Option<WorkOrderView>,
    /// Every later escalation merged into the task, with its source, order and topic.
    pub merged: Vec<MergedEscalation>,
    /// A repair (its resolution needs the customer's confirmation and a root cause).
    pub repair: bool,
}

#[derive(Serialize)]
pub struct Queue {
    pub callable_now: Vec<QueueEntry>,
    pub later: Vec<QueueEntry>,
    /// The root causes an agent can record when resolving a repair.
    pub root_causes: Vec<String>,
}

/// The open tasks of `owner` (all open tasks when `None`), split into callable
/// now (most urgent first) and later (soonest window first).
pub fn build_queue<S: Storage + ?Sized>(
    store: &S,
    policy: &EscalationPolicy,
    owner: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Queue, ApiError> {
    let lists = match owner {
        Some(o) => vec![keys::owner_tasks(o)],
        None => keys::all_open_tasks(),
    };
    let ids = crate::flows::task_log::with_unfolded(store, &lists)?;
    let tasks: Vec<CallbackTask> = store
        .get_many(&ids.iter().map(|i| keys::task(i)).collect::<Vec<_>>())?
        .into_iter()
        .flatten()
        .filter_map(|v| serde_json::from_slice(&v).ok())
        .filter(|t: &CallbackTask| !t.state.is_closed())
        .filter(|t| owner.is_none_or(|o| t.owner == o || t.escalated_to.as_deref() == Some(o)))
        .collect();
    let mut queue = Queue {
        callable_now: Vec::new(),
        later: Vec::new(),
        root_causes: policy.root_causes.keys().cloned().collect(),
    };
    for task in tasks {
        let (check, work_order) = judge(store, &task, policy, now)?;
        let answer = task.context.answer.as_ref();
        let entry = QueueEntry {
            task_id: task.task_id.clone(),
            reason: task.reason,
            reasons: task.reasons.clone(),
            priority: task.priority,
            owner: task.owner.clone(),
            due_by: task.due_by,
            customer_id: task.customer_id.clone(),
            customer_name: task.context.customer.name.clone(),
            customer_local_time: check.customer_local_time.clone(),
            score: answer.map(|a| a.score),
            comment: answer.and_then(|a| a.comment.clone()),
            customer_reasons: answer.map(|a| a.reasons.clone()).unwrap_or_default(),
            question: task.context.question.clone(),
            next_window: check.next_window,
            reasons_not_now: check.reasons.clone(),
            phone: task.context.customer.phone.clone(),
            order_id: task.context.order_id.clone(),
            work_order,
            merged: task.context.merged.clone(),
            repair: crate::task::is_repair(&task),
        };
        if check.callable_now {
            queue.callable_now.push(entry);
        } else {
            queue.later.push(entry);
        }
    }
    queue.callable_now.sort_by_key(|e| (e.priority, e.due_by));
    queue.later.sort_by_key(|e| {
        (
            e.next_window.is_none(),
            e.next_window.map(|w| w.start),
            e.priority,
        )
    });
    Ok(queue)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::escalation::receive;
    use crate::flows::testing::{at, request};
    use crate::storage::{KvMode, MemoryStorage};

    #[test]
    fn a_task_is_callable_by_day_and_waits_out_the_night() {
        for mode in KvMode::ALL {
            let s = MemoryStorage::in_memory_like(mode);
            let request = request("sv_1", TaskReason::LowScore);
            let policy = EscalationPolicy::default();
            receive(
                &s,
                &request,
                (&policy, &crate::webhooks::NOBODY),
                at("2026-12-04T10:00:00+01:00"),
            )
            .unwrap();
            let owner = Some("agent-1");
            let day = build_queue(&s, &policy, owner, at("2026-12-04T11:00:00+01:00")).unwrap();
            assert_eq!(
                (day.callable_now.len(), day.later.len()),
                (1, 0),
                "{mode:?}"
            );
            let night = build_queue(&s, &policy, owner, at("2026-12-04T23:00:00+01:00")).unwrap();
            assert_eq!(
                (night.callable_now.len(), night.later.len()),
                (0, 1),
                "{mode:?}"
            );
            assert!(night.later[0]
                .reasons_not_now
                .contains(&WindowReason::QuietHours));
            let window = night.later[0].next_window.expect("a next window");
            assert_eq!(window.start, at("2026-12-05T09:00:00+01:00"), "{mode:?}");
        }
    }
}
