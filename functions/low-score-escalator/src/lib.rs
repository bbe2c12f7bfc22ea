//! low-score-escalator: turns escalations into callback tasks with an owner, a
//! deadline and context; merges a customer's escalations into one open task;
//! records outcomes (planning the "did we fix it?" re-survey); marks breaches;
//! finds birthday callbacks; reports on the loop.
//!
//! Routes: `GET /callbacks`, `GET /callbacks/:task_id`, `POST /callbacks/:task_id/outcome`,
//! `POST /escalator/tick`, `GET /reports/loop`, `GET /webhooks/deliveries`, and (private, through
//! `http://low-score-escalator.spin.internal`) `POST /internal/escalations`.

use revisit_shared::flows::escalation::{self, receive};
use revisit_shared::flows::escalator_tick;
use revisit_shared::flows::report::loop_report_now;
use revisit_shared::keys;
use revisit_shared::routes::escalator::{
    CALLBACK, CALLBACKS, CLAIM, DELIVERIES, ESCALATIONS_PATH, LOOP_REPORT, OUTCOME, TICK,
};
use revisit_shared::spin::{self as shell, SpinStore};
use revisit_shared::storage::StorageExt;
use revisit_shared::task::{
    claim, CallbackTask, EscalationRequest, Outcome, OutcomeInput, Role, TaskState,
};
use revisit_shared::{error::parse_json, ApiError};
use spin_sdk::http::{IncomingRequest, Method, Request, Response, ResponseOutparam};
use spin_sdk::http_component;

mod deliveries;

/// The private path the score receiver and the issuer hand escalations to.

#[http_component]
fn handle(incoming: IncomingRequest, out: ResponseOutparam) {
    shell::serve(incoming, out, dispatch);
}

fn dispatch(req: Request) -> Response {
    let route = shell::matched_route(&req);
    let result = match (route.as_str(), req.method()) {
        (shell::CHAINED_ROUTE, Method::Post) if req.path() == ESCALATIONS_PATH => escalation(&req),
        (CALLBACKS, Method::Get) => list(&req),
        (CALLBACK, Method::Get) => get(&req),
        (OUTCOME, Method::Post) => outcome(&req),
        (CLAIM, Method::Post) => claim_task(&req),
        (TICK, Method::Post) => tick(&req),
        (LOOP_REPORT, Method::Get) => report(&req),
        (DELIVERIES, Method::Get) => deliveries::log(&req),
        (CALLBACKS | CALLBACK | LOOP_REPORT | DELIVERIES, _) => {
            Err(ApiError::method_not_allowed("GET"))
        }
        (OUTCOME | TICK, _) => Err(ApiError::method_not_allowed("POST")),
        _ => Err(ApiError::not_found("no such endpoint")),
    };
    shell::render(result)
}

fn forbidden(task_id: &str) -> ApiError {
    ApiError::new(
        403,
        "forbidden",
        format!("task {task_id} belongs to another owner; agents see only their own tasks"),
    )
}

/// `{"task": …}`, written straight from the task (no JSON tree in between).
#[derive(serde::Serialize)]
struct TaskReply<'a> {
    task: Option<&'a CallbackTask>,
}

/// `{"callbacks": […]}`.
#[derive(serde::Serialize)]
struct Callbacks<'a> {
    callbacks: &'a [CallbackTask],
}

/// `POST /internal/escalations`: one task per source, however often delivered.
fn escalation(req: &Request) -> Result<Response, ApiError> {
    shell::require_chained(req)?;
    let request: EscalationRequest = parse_json(shell::body(req)?)?;
    let store = SpinStore::open()?;
    let policy = shell::escalation_policy()?;
    let task = receive(
        &store,
        &request,
        (&policy, &shell::webhooks()),
        shell::now(),
    )?;
    Ok(shell::json(
        200,
        &TaskReply {
            task: task.as_ref(),
        },
    ))
}

/// `GET /callbacks?owner=&state=` (an agent sees only their own).
fn list(req: &Request) -> Result<Response, ApiError> {
    let role = shell::authenticate(req)?;
    let store = SpinStore::open()?;
    let owner = shell::query_param(req, "owner");
    let owner = match (&role, owner) {
        (Role::Supervisor, o) => o,
        (Role::Agent(me), None) => Some(me.clone()),
        (Role::Agent(me), Some(o)) if *me == o => Some(o),
        (Role::Agent(_), Some(o)) => {
            return Err(ApiError::new(
                403,
                "forbidden",
                format!("agents see only their own tasks, not {o:?}'s"),
            ))
        }
    };
    let state = match shell::query_param(req, "state") {
        None => None,
        Some(s) => Some(serde_json::from_value::<TaskState>(serde_json::Value::String(s.clone())).map_err(|_| {
            ApiError::bad_request(format!("state must be open, claimed, reached, resolved, refused, expired or superseded (got {s:?})"))
        })?),
    };
    // Open tasks come from the open indexes; closed ones from the days they
    // were created on (the last `days`, 30 unless asked, at most 92).
    let days: i64 = match shell::query_param(req, "days") {
        None => 30,
        Some(d) => d
            .parse()
            .ok()
            .filter(|d| (1..=92).contains(d))
            .ok_or_else(|| ApiError::bad_request(format!("days must be 1 to 92 (got {d:?})")))?,
    };
    let today = shell::now().date_naive();
    let tasks = escalation::list_tasks(&store, owner.as_deref(), state, days, today)?;
    Ok(shell::json(200, &Callbacks { callbacks: &tasks }))
}

/// `POST /escalator/tick`: the tick's work, then the webhooks it and the
/// requests since the last tick announced.
fn tick(req: &Request) -> Result<Response, ApiError> {
    shell::require_supervisor(req)?;
    let store = SpinStore::open()?;
    let merchant = shell::optional_variable("merchant_name").unwrap_or_else(|| "Revisit".into());
    let hooks = shell::webhooks_checked();
    let known = hooks.as_ref().unwrap_or(&revisit_shared::webhooks::NOBODY);
    let policies = (
        &shell::escalation_policy()?,
        &shell::survey_policy()?,
        known,
    );
    let now = shell::now();
    let report = escalator_tick::run(&store, policies, &merchant, now)?;
    let webhooks = deliveries::send_due(&store, known, now)?;
    Ok(shell::json(
        200,
        &deliveries::Ticked {
            report,
            webhooks,
            webhooks_error: hooks.err(),
        },
    ))
}

/// `GET /reports/loop`: totals, and the same by owner and by reason.
fn report(req: &Request) -> Result<Response, ApiError> {
    shell::require_supervisor(req)?;
    Ok(shell::json(200, &loop_report_now(&SpinStore::open()?)?))
}

/// `GET /callbacks/:task_id`
fn get(req: &Request) -> Result<Response, ApiError> {
    let role = shell::authenticate(req)?;
    let id = shell::path_param(req, "task_id")?;
    let store = SpinStore::open()?;
    let task: CallbackTask = store
        .get_json(&keys::task(&id))?
        .ok_or_else(|| ApiError::not_found(format!("no callback task {id}")))?;
    if !role.may_access(&task) {
        return Err(forbidden(&id));
    }
    let policy = shell::escalation_policy()?;
    let value = revisit_shared::flows::queue::task_view(&store, &task, &policy, shell::now())?;
    Ok(shell::json(200, &value))
}

/// `POST /callbacks/:task_id/claim`: someone is on it.
fn claim_task(req: &Request) -> Result<Response, ApiError> {
    let role = shell::authenticate(req)?;
    let id = shell::path_param(req, "task_id")?;
    let store = SpinStore::open()?;
    let who = match &role {
        Role::Supervisor => "supervisor".to_string(),
        Role::Agent(a) => a.clone(),
    };
    let now = shell::now();
    let survey_policy = shell::survey_policy()?;
    let step = |t: &CallbackTask| Ok(claim(t, &who, now)?);
    let (_, claimed) = escalation::commit(
        &store,
        &id,
        Some(&role),
        None,
        (&survey_policy, &shell::webhooks()),
        now,
        step,
    )?;
    Ok(shell::json(200, &claimed))
}

/// An outcome posted by the agent's page as a form.
fn outcome_from_form(body: &[u8]) -> Result<OutcomeInput, ApiError> {
    let mut map = std::collections::BTreeMap::new();
    for (k, v) in form_urlencoded::parse(body) {
        map.insert(k.into_owned(), v.into_owned());
    }
    let outcome = map.get("outcome").cloned().unwrap_or_default();
    let outcome: Outcome = serde_json::from_value(serde_json::Value::String(outcome.clone()))
        .map_err(|_| {
            ApiError::unprocessable(format!(
                "outcome must be reached, unreachable, resolved or refused (got {outcome:?})"
            ))
        })?;
    let text = |k: &str| {
        map.get(k)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    Ok(OutcomeInput {
        outcome,
        resolution: text("resolution"),
        customer_satisfied: map
            .get("customer_satisfied")
            .map(|v| v == "true" || v == "on"),
        note: text("note"),
        root_cause: text("root_cause"),
    })
}

/// `POST /callbacks/:task_id/outcome` (JSON, or a form from the agent's page,
/// which is sent back to the page).
fn outcome(req: &Request) -> Result<Response, ApiError> {
    let is_form = req
        .header("content-type")
        .and_then(|h| h.as_str())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return outcome_json(req);
    }
    let back = |notice: &str| {
        let q: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("notice", notice)
            .finish();
        Ok(shell::see_other(&format!("/queue/page?{q}")))
    };
    match outcome_from_form(shell::body(req)?).and_then(|input| record_outcome(req, input)) {
        Ok(task) => back(&format!("{}: {}", task.task_id, task.state.as_str())),
        Err(e) if e.status == 401 => Err(e),
        Err(e) => back(&e.message),
    }
}

fn outcome_json(req: &Request) -> Result<Response, ApiError> {
    let input: OutcomeInput = parse_json(shell::body(req)?)?;
    let task = record_outcome(req, input)?;
    Ok(shell::json(200, &task))
}

/// An outcome from the caller, on the task in the path.
fn record_outcome(req: &Request, input: OutcomeInput) -> Result<CallbackTask, ApiError> {
    let role = shell::authenticate(req)?;
    let id = shell::path_param(req, "task_id")?;
    let store = SpinStore::open()?;
    let policies = (
        &shell::escalation_policy()?,
        &shell::survey_policy()?,
        &shell::webhooks(),
    );
    escalation::record_outcome(&store, &id, &role, &input, policies, shell::now())
}
