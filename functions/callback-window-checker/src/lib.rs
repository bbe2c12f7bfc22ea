//! callback-window-checker: whether a callback may be made now (and when next),
//! and the agent's queue of who to call now.
//!
//! Routes: `GET /callbacks/:task_id/window`, `GET /queue?owner=`.

use revisit_shared::keys;
use revisit_shared::spin::{self as shell, SpinStore};
use revisit_shared::storage::{Storage, StorageExt};
use revisit_shared::survey::Contact;
use revisit_shared::task::{CallbackTask, EscalationPolicy};
use revisit_shared::window::{check_window, WindowCheck, WorkOrder};
use revisit_shared::ApiError;
use serde::Serialize;
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

#[http_component]
fn handle(req: Request) -> Response {
    let route = req
        .header("spin-matched-route")
        .and_then(|h| h.as_str())
        .unwrap_or("")
        .to_string();
    let result = match (route.as_str(), req.method()) {
        ("/callbacks/:task_id/window", Method::Get) => window(&req),
        ("/queue", Method::Get) => queue(&req),
        ("/callbacks/:task_id/window" | "/queue", _) => Err(ApiError::method_not_allowed("GET")),
        _ => Err(ApiError::not_found("no such endpoint")),
    };
    shell::render(result)
}

/// The task's window, judged with the freshest contact and work-order records.
fn judge(
    store: &SpinStore,
    task: &CallbackTask,
    policy: &EscalationPolicy,
) -> Result<WindowCheck, ApiError> {
    let contact: Contact = store
        .get_json(&keys::contact(&task.customer_id))?
        .unwrap_or_else(|| task.context.customer.clone());
    let work_order: Option<WorkOrder> = match &task.work_order_id {
        Some(id) => store.get_json(&keys::work_order(id))?,
        None => None,
    };
    let contacts_made: Vec<chrono::DateTime<chrono::Utc>> = store
        .get_json(&keys::contacts(&task.customer_id))?
        .unwrap_or_default();
    Ok(check_window(
        task,
        &contact,
        work_order.as_ref(),
        &contacts_made,
        policy,
        shell::now(),
    ))
}

/// `GET /callbacks/:task_id/window`
fn window(req: &Request) -> Result<Response, ApiError> {
    shell::require_admin(req)?;
    let id = shell::path_param(req, "task_id")?;
    let store = SpinStore::open()?;
    let policy = shell::escalation_policy()?;
    let task: CallbackTask = store
        .get_json(&keys::task(&id))?
        .ok_or_else(|| ApiError::not_found(format!("no callback task {id}")))?;
    Ok(shell::json(200, &judge(&store, &task, &policy)?))
}

#[derive(Serialize)]
struct QueueEntry {
    task_id: String,
    reason: revisit_shared::task::TaskReason,
    priority: u8,
    due_by: chrono::DateTime<chrono::Utc>,
    customer_id: String,
    customer_name: Option<String>,
    customer_local_time: String,
    score: Option<u8>,
    comment: Option<String>,
    next_window: Option<revisit_shared::calling_hours::Window>,
    reasons_not_now: Vec<revisit_shared::window::WindowReason>,
}

/// `GET /queue?owner=`: who may be called now, most urgent first; the rest with their next window.
fn queue(req: &Request) -> Result<Response, ApiError> {
    shell::require_admin(req)?;
    let store = SpinStore::open()?;
    let policy = shell::escalation_policy()?;
    let index = match shell::query_param(req, "owner") {
        Some(owner) => keys::owner_tasks(&owner),
        None => keys::OPEN_TASKS.to_string(),
    };
    let ids: Vec<String> = store.get_json(&index)?.unwrap_or_default();
    let tasks: Vec<CallbackTask> = store
        .get_many(&ids.iter().map(|i| keys::task(i)).collect::<Vec<_>>())?
        .into_iter()
        .flatten()
        .filter_map(|v| serde_json::from_slice(&v).ok())
        .filter(|t: &CallbackTask| !t.state.is_closed())
        .collect();
    let mut now_list = Vec::new();
    let mut later = Vec::new();
    for task in tasks {
        let check = judge(&store, &task, &policy)?;
        let answer = task.context.answer.as_ref();
        let entry = QueueEntry {
            task_id: task.task_id.clone(),
            reason: task.reason,
            priority: task.priority,
            due_by: task.due_by,
            customer_id: task.customer_id.clone(),
            customer_name: task.context.customer.name.clone(),
            customer_local_time: check.customer_local_time.clone(),
            score: answer.map(|a| a.score),
            comment: answer.and_then(|a| a.comment.clone()),
            next_window: check.next_window,
            reasons_not_now: check.reasons.clone(),
        };
        if check.callable_now {
            now_list.push(entry);
        } else {
            later.push(entry);
        }
    }
    now_list.sort_by_key(|e| (e.priority, e.due_by));
    later.sort_by_key(|e| (e.next_window.map(|w| w.start), e.priority));
    Ok(shell::json(
        200,
        &serde_json::json!({ "callable_now": now_list, "later": later }),
    ))
}
