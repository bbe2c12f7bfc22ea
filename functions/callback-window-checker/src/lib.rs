//! callback-window-checker: whether a callback may be made now (and when next),
//! and the agent's queue of who to call now — as JSON and as a page.
//!
//! Routes: `GET /callbacks/:task_id/window`, `GET /queue?owner=`,
//! `GET /queue/page`, `POST /queue/login`.

mod page;

use revisit_shared::flows::queue::{build_queue, judge};
use revisit_shared::keys;
use revisit_shared::routes::window::{LOGIN, QUEUE, QUEUE_PAGE, WINDOW};
use revisit_shared::spin::{self as shell, SpinStore};
use revisit_shared::storage::StorageExt;
use revisit_shared::task::{CallbackTask, Role};
use revisit_shared::ApiError;
use spin_sdk::http::{IncomingRequest, Method, Request, Response, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
fn handle(incoming: IncomingRequest, out: ResponseOutparam) {
    shell::serve(incoming, out, dispatch);
}

fn dispatch(req: Request) -> Response {
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
    let (check, work_order) = judge(&store, &task, &policy, shell::now())?;
    let mut value = serde_json::to_value(&check).map_err(|e| ApiError::internal(e.to_string()))?;
    value["work_order"] = serde_json::to_value(work_order).unwrap_or_default();
    Ok(shell::json(200, &value))
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
    match shell::sign_in(req, token.trim())? {
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
