//! low-score-escalator: turns escalations into callback tasks with an owner, a
//! deadline and context; records outcomes; marks breaches; reports on the loop.
//!
//! Routes: `GET /callbacks`, `GET /callbacks/:task_id`, `POST /callbacks/:task_id/outcome`,
//! `POST /escalator/tick`, `GET /reports/loop`, and (private, through
//! `http://low-score-escalator.spin.internal`) `POST /internal/escalations`.

use chrono::{DateTime, Utc};
use revisit_shared::keys;
use revisit_shared::report::{loop_report, LOOP_COUNTERS};
use revisit_shared::spin::{self as shell, SpinStore};
use revisit_shared::storage::{Storage, StorageExt, Update};
use revisit_shared::task::{
    apply_outcome, mark_breach, plan_task, CallbackTask, EscalationPolicy, EscalationRequest,
    OutcomeInput, TaskState,
};
use revisit_shared::{error::parse_json, ApiError};
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

/// The private path the score receiver (and the issuer) hand escalations to.
const INTERNAL_ESCALATIONS: &str = "/internal/escalations";

/// Every task id, for the supervisor's view of `GET /callbacks`.
const ALL_TASKS: &str = "ix/all-tasks";

#[http_component]
async fn handle(req: Request) -> Response {
    let route = req
        .header("spin-matched-route")
        .and_then(|h| h.as_str())
        .unwrap_or("")
        .to_string();
    let result = match (route.as_str(), req.method()) {
        ("", Method::Post) if req.path() == INTERNAL_ESCALATIONS => escalation(&req),
        ("/callbacks", Method::Get) => list(&req),
        ("/callbacks/:task_id", Method::Get) => get(&req),
        ("/callbacks/:task_id/outcome", Method::Post) => outcome(&req),
        ("/escalator/tick", Method::Post) => tick(&req),
        ("/reports/loop", Method::Get) => report(&req),
        ("/callbacks" | "/callbacks/:task_id" | "/reports/loop", _) => {
            Err(ApiError::method_not_allowed("GET"))
        }
        ("/callbacks/:task_id/outcome" | "/escalator/tick", _) => {
            Err(ApiError::method_not_allowed("POST"))
        }
        _ => Err(ApiError::not_found("no such endpoint")),
    };
    shell::render(result)
}

/// `POST /internal/escalations`: one task per request source, however often delivered.
fn escalation(req: &Request) -> Result<Response, ApiError> {
    shell::require_admin(req)?;
    let request: EscalationRequest = parse_json(shell::body(req)?)?;
    let store = SpinStore::open()?;
    let policy = shell::escalation_policy()?;
    let task = create_task(&store, &request, &policy, shell::now())?;
    Ok(shell::json(200, &serde_json::json!({ "task": task })))
}

/// Create the task a request asks for, exactly once; index it for its owner.
fn create_task(
    store: &SpinStore,
    request: &EscalationRequest,
    policy: &EscalationPolicy,
    now: DateTime<Utc>,
) -> Result<Option<CallbackTask>, ApiError> {
    let Some(task) = plan_task(request, policy, now) else {
        return Ok(None);
    };
    if store.create_json(&keys::task(&task.task_id), &task)? {
        add_to_index(store, &keys::owner_tasks(&task.owner), &task.task_id)?;
        add_to_index(store, keys::OPEN_TASKS, &task.task_id)?;
        add_to_index(store, ALL_TASKS, &task.task_id)?;
        store.increment(&keys::loop_counter("created"), 1)?;
        Ok(Some(task))
    } else {
        Ok(store.get_json(&keys::task(&task.task_id))?)
    }
}

fn add_to_index(store: &SpinStore, key: &str, id: &str) -> Result<(), ApiError> {
    store.update_json::<Vec<String>, _>(key, |cur| {
        let mut ids = cur.unwrap_or_default();
        if ids.iter().any(|i| i == id) {
            return Update::Keep;
        }
        ids.push(id.to_string());
        Update::Write(ids)
    })?;
    Ok(())
}

fn remove_from_index(store: &SpinStore, key: &str, id: &str) -> Result<(), ApiError> {
    store.update_json::<Vec<String>, _>(key, |cur| {
        let mut ids = cur.unwrap_or_default();
        let before = ids.len();
        ids.retain(|i| i != id);
        if ids.len() == before {
            Update::Keep
        } else {
            Update::Write(ids)
        }
    })?;
    Ok(())
}

fn load_tasks(store: &SpinStore, index: &str) -> Result<Vec<CallbackTask>, ApiError> {
    let ids: Vec<String> = store.get_json(index)?.unwrap_or_default();
    let keys: Vec<String> = ids.iter().map(|i| keys::task(i)).collect();
    Ok(store
        .get_many(&keys)?
        .into_iter()
        .flatten()
        .filter_map(|v| serde_json::from_slice(&v).ok())
        .collect())
}

/// `GET /callbacks?owner=&state=`
fn list(req: &Request) -> Result<Response, ApiError> {
    shell::require_admin(req)?;
    let store = SpinStore::open()?;
    let owner = shell::query_param(req, "owner");
    let state = match shell::query_param(req, "state") {
        None => None,
        Some(s) => Some(serde_json::from_value::<TaskState>(serde_json::Value::String(s.clone())).map_err(|_| {
            ApiError::bad_request(format!("state must be open, claimed, reached, resolved, refused or expired (got {s:?})"))
        })?),
    };
    let index = owner
        .as_deref()
        .map(keys::owner_tasks)
        .unwrap_or_else(|| ALL_TASKS.to_string());
    let mut tasks: Vec<CallbackTask> = load_tasks(&store, &index)?
        .into_iter()
        .filter(|t| state.is_none_or(|s| t.state == s))
        .collect();
    tasks.sort_by_key(|t| (t.priority, t.due_by));
    Ok(shell::json(200, &serde_json::json!({ "callbacks": tasks })))
}

/// `GET /callbacks/:task_id`
fn get(req: &Request) -> Result<Response, ApiError> {
    shell::require_admin(req)?;
    let id = shell::path_param(req, "task_id")?;
    let store = SpinStore::open()?;
    let task: CallbackTask = store
        .get_json(&keys::task(&id))?
        .ok_or_else(|| ApiError::not_found(format!("no callback task {id}")))?;
    Ok(shell::json(200, &task))
}

/// `POST /callbacks/:task_id/outcome`
fn outcome(req: &Request) -> Result<Response, ApiError> {
    shell::require_admin(req)?;
    let id = shell::path_param(req, "task_id")?;
    let input: OutcomeInput = parse_json(shell::body(req)?)?;
    let store = SpinStore::open()?;
    let policy = shell::escalation_policy()?;
    let now = shell::now();
    let mut failure = None;
    let mut before: Option<CallbackTask> = None;
    let updated = store.update_json::<CallbackTask, _>(&keys::task(&id), |cur| {
        let Some(task) = cur else {
            failure = Some(ApiError::not_found(format!("no callback task {id}")));
            return Update::Keep;
        };
        match apply_outcome(&task, &input, &policy, now) {
            Ok(next) => {
                before = Some(task);
                failure = None;
                Update::Write(next)
            }
            Err(e) => {
                failure = Some(e);
                Update::Keep
            }
        }
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    let task = updated.ok_or_else(|| ApiError::not_found(format!("no callback task {id}")))?;
    let was_closed = before.as_ref().is_some_and(|b| b.state.is_closed());
    if task.state.is_closed() && !was_closed {
        count_closed(&store, &task)?;
    }
    Ok(shell::json(200, &task))
}

fn count_closed(store: &SpinStore, task: &CallbackTask) -> Result<(), ApiError> {
    let closed_at = task.closed_at.unwrap_or(task.created_at);
    store.increment(&keys::loop_counter("closed"), 1)?;
    if closed_at <= task.due_by {
        store.increment(&keys::loop_counter("closed_within_deadline"), 1)?;
    }
    if task.state == TaskState::Resolved {
        store.increment(&keys::loop_counter("resolved"), 1)?;
        if task.customer_satisfied == Some(true) {
            store.increment(&keys::loop_counter("recovered"), 1)?;
        }
    }
    if let Some(first) = task.first_contact_at {
        store.increment(
            &keys::loop_counter("first_contact_seconds"),
            (first - task.created_at).num_seconds().max(0),
        )?;
    }
    remove_from_index(store, keys::OPEN_TASKS, &task.task_id)
}

/// `POST /escalator/tick`: deliver what the outbox holds, then mark breaches
/// (each escalated to the supervisor queue exactly once).
fn tick(req: &Request) -> Result<Response, ApiError> {
    shell::require_admin(req)?;
    let store = SpinStore::open()?;
    let policy = shell::escalation_policy()?;
    let now = shell::now();

    let pending: Vec<String> = store.get_json(keys::OUTBOX_INDEX)?.unwrap_or_default();
    let mut delivered = 0;
    for source in &pending {
        if let Some(request) = store.get_json::<EscalationRequest>(&keys::outbox(source))? {
            create_task(&store, &request, &policy, now)?;
            delivered += 1;
        }
        store.delete(&keys::outbox(source))?;
        remove_from_index(&store, keys::OUTBOX_INDEX, source)?;
    }

    let mut breached = 0;
    let mut expired = 0;
    for task in load_tasks(&store, keys::OPEN_TASKS)? {
        if !task.state.is_closed() && now >= task.expires_at {
            // Past its validity a call makes no sense any more: expire it.
            let mut won = false;
            let updated = store.update_json::<CallbackTask, _>(
                &keys::task(&task.task_id),
                |cur| match cur {
                    Some(mut t) if !t.state.is_closed() => {
                        t.state = TaskState::Expired;
                        t.closed_at = Some(now);
                        t.resolution = Some("expired: past its validity window".into());
                        won = true;
                        Update::Write(t)
                    }
                    _ => {
                        won = false;
                        Update::Keep
                    }
                },
            )?;
            if let (true, Some(t)) = (won, updated) {
                count_closed(&store, &t)?;
                expired += 1;
            }
            continue;
        }
        if mark_breach(&task, &policy.supervisor, now).is_none() {
            continue;
        }
        let mut won = false;
        store.update_json::<CallbackTask, _>(&keys::task(&task.task_id), |cur| {
            match cur.and_then(|t| mark_breach(&t, &policy.supervisor, now)) {
                Some(next) => {
                    won = true;
                    Update::Write(next)
                }
                None => {
                    won = false;
                    Update::Keep
                }
            }
        })?;
        if won {
            add_to_index(
                &store,
                &keys::owner_tasks(&policy.supervisor),
                &task.task_id,
            )?;
            store.increment(&keys::loop_counter("breached"), 1)?;
            breached += 1;
        }
    }
    Ok(shell::json(
        200,
        &serde_json::json!({ "delivered_from_outbox": delivered, "breached": breached, "expired": expired }),
    ))
}

/// `GET /reports/loop`
fn report(req: &Request) -> Result<Response, ApiError> {
    shell::require_admin(req)?;
    let store = SpinStore::open()?;
    let keys: Vec<String> = LOOP_COUNTERS
        .iter()
        .map(|c| keys::loop_counter(c))
        .collect();
    let values = store.counters(&keys)?;
    let mut report = serde_json::to_value(loop_report(&values))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    report["breached"] = store.counter(&keys::loop_counter("breached"))?.into();
    Ok(shell::json(200, &report))
}
