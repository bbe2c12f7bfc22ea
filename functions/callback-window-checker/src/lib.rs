//! callback-window-checker: whether a callback may be made now (and when next),
//! and the agent's queue of who to call now — as JSON and as a page.
//!
//! Routes: `GET /callbacks/:task_id/window`, `GET /queue?owner=`,
//! `GET /queue/page`, `POST /queue/login`.

mod page;

use chrono::{DateTime, Utc};
use revisit_shared::calling_hours::Window;
use revisit_shared::keys;
use revisit_shared::routes::window::{LOGIN, QUEUE, QUEUE_PAGE, WINDOW};
use revisit_shared::spin::{self as shell, SpinStore};
use revisit_shared::storage::{Storage, StorageExt};
use revisit_shared::survey::Contact;
use revisit_shared::task::{CallbackTask, EscalationPolicy, Role, TaskReason};
use revisit_shared::window::{check_window, WindowCheck, WindowReason, WorkOrder};
use revisit_shared::ApiError;
use serde::Serialize;
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

#[http_component]
fn handle(req: Request) -> Response {
    let route = shell::matched_route(&req);
    let result = match (route.as_str(), req.method()) {
        (WINDOW, Method::Get) => window(&req),
        (QUEUE, Method::Get) => queue_json(&req),
        (QUEUE_PAGE, Method::Get) => queue_page(&req),
        (LOGIN, Method::Post) => login(&req),
        (WINDOW | QUEUE | QUEUE_PAGE, _) => Err(ApiError::method_not_allowed("GET")),
        (LOGIN, _) => Err(ApiError::method_not_allowed("POST")),
        _ => Err(ApiError::not_found("no such endpoint")),
    };
    shell::render(result)
}

/// The task's window, judged with the freshest contact, work-order and contact records.
fn judge(
    store: &SpinStore,
    task: &CallbackTask,
    policy: &EscalationPolicy,
    now: DateTime<Utc>,
) -> Result<WindowCheck, ApiError> {
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
    Ok(check_window(
        task,
        &contact,
        work_order.as_ref(),
        &contacts_made,
        policy,
        now,
    ))
}

/// `GET /callbacks/:task_id/window`
fn window(req: &Request) -> Result<Response, ApiError> {
    let role = shell::authenticate(req)?;
    let id = shell::path_param(req, "task_id")?;
    let store = SpinStore::open()?;
    let policy = shell::escalation_policy()?;
    let task: CallbackTask = store
        .get_json(&keys::task(&id))?
        .ok_or_else(|| ApiError::not_found(format!("no callback task {id}")))?;
    if !role.may_access(&task) {
        return Err(ApiError::new(
            403,
            "forbidden",
            format!("task {id} belongs to another owner"),
        ));
    }
    Ok(shell::json(
        200,
        &judge(&store, &task, &policy, shell::now())?,
    ))
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
    pub question: Option<String>,
    pub next_window: Option<Window>,
    pub reasons_not_now: Vec<WindowReason>,
}

#[derive(Serialize)]
pub struct Queue {
    pub callable_now: Vec<QueueEntry>,
    pub later: Vec<QueueEntry>,
}

/// The open tasks of `owner` (all open tasks when `None`), split into callable
/// now (most urgent first) and later (soonest window first).
fn build_queue(
    store: &SpinStore,
    policy: &EscalationPolicy,
    owner: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Queue, ApiError> {
    let lists = match owner {
        Some(o) => vec![keys::owner_tasks(o)],
        None => keys::all_open_tasks(),
    };
    let ids: Vec<String> = store.read_lists(&lists)?;
    let tasks: Vec<CallbackTask> = store
        .get_many(&ids.iter().map(|i| keys::task(i)).collect::<Vec<_>>())?
        .into_iter()
        .flatten()
        .filter_map(|v| serde_json::from_slice(&v).ok())
        .filter(|t: &CallbackTask| !t.state.is_closed())
        .collect();
    let mut queue = Queue {
        callable_now: Vec::new(),
        later: Vec::new(),
    };
    for task in tasks {
        let check = judge(store, &task, policy, now)?;
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
            question: task.context.question.clone(),
            next_window: check.next_window,
            reasons_not_now: check.reasons.clone(),
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

/// Whose queue a request may see: an agent only their own.
fn queue_owner(req: &Request, role: &Role) -> Result<Option<String>, ApiError> {
    let asked = shell::query_param(req, "owner").filter(|o| !o.is_empty());
    match (role, asked) {
        (Role::Supervisor, o) => Ok(o),
        (Role::Agent(me), None) => Ok(Some(me.clone())),
        (Role::Agent(me), Some(o)) if *me == o => Ok(Some(o)),
        (Role::Agent(_), Some(o)) => Err(ApiError::new(
            403,
            "forbidden",
            format!("agents see only their own queue, not {o:?}'s"),
        )),
    }
}

/// `GET /queue?owner=`
fn queue_json(req: &Request) -> Result<Response, ApiError> {
    let role = shell::authenticate(req)?;
    let owner = queue_owner(req, &role)?;
    let store = SpinStore::open()?;
    let policy = shell::escalation_policy()?;
    Ok(shell::json(
        200,
        &build_queue(&store, &policy, owner.as_deref(), shell::now())?,
    ))
}

/// `GET /queue/page`: the agent's page (the login form without a session).
fn queue_page(req: &Request) -> Result<Response, ApiError> {
    let lang = page::Lang::from_request(req);
    let role = match shell::authenticate(req) {
        Ok(r) => r,
        Err(_) => return Ok(shell::html(200, page::login(lang, None))),
    };
    let owner = queue_owner(req, &role)?;
    let store = SpinStore::open()?;
    let policy = shell::escalation_policy()?;
    let now = shell::now();
    let queue = build_queue(&store, &policy, owner.as_deref(), now)?;
    let notice = shell::query_param(req, "notice");
    let who = match &role {
        Role::Supervisor => owner.clone().unwrap_or_else(|| "supervisor".into()),
        Role::Agent(a) => a.clone(),
    };
    Ok(shell::html(
        200,
        page::queue(lang, &who, &queue, now, notice.as_deref()),
    ))
}

/// `POST /queue/login` with `token=`: start a session, back to the page.
fn login(req: &Request) -> Result<Response, ApiError> {
    let lang = page::Lang::from_request(req);
    let token = form_urlencoded::parse(shell::body(req)?)
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    match shell::role_for_token(token.trim())? {
        Some(role) => {
            let mut resp = shell::see_other(&format!("/queue/page?lang={}", lang.tag()));
            resp.set_header("set-cookie", shell::session_cookie(&role)?);
            Ok(resp)
        }
        None => Ok(shell::html(
            401,
            page::login(lang, Some(lang.texts().bad_token)),
        )),
    }
}
