//! low-score-escalator: turns escalations into callback tasks with an owner, a
//! deadline and context; merges a customer's escalations into one open task;
//! records outcomes (planning the "did we fix it?" re-survey); marks breaches;
//! finds birthday callbacks; reports on the loop.
//!
//! Routes: `GET /callbacks`, `GET /callbacks/:task_id`, `POST /callbacks/:task_id/outcome`,
//! `POST /escalator/tick`, `GET /reports/loop`, and (private, through
//! `http://low-score-escalator.spin.internal`) `POST /internal/escalations`.

use chrono::{DateTime, Datelike, Duration, Utc};
use revisit_shared::answer::History;
use revisit_shared::flows::contact::record_contact;
use revisit_shared::flows::escalation::{bump, load, receive};
use revisit_shared::flows::survey::create_survey;
use revisit_shared::i18n::{texts, Lang};
use revisit_shared::keys;
use revisit_shared::report::{loop_report, LOOP_COUNTERS};
use revisit_shared::routes::escalator::{
    CALLBACK, CALLBACKS, CLAIM, ESCALATIONS_PATH, LOOP_REPORT, OUTCOME, TICK,
};
use revisit_shared::spin::{self as shell, SpinStore};
use revisit_shared::storage::{Storage, StorageExt, Tentative, Update};
use revisit_shared::survey::{Contact, Survey};
use revisit_shared::task::{
    answer_escalation, apply_outcome, claim, mark_breach, task_id_for, CallbackTask,
    DeferredEscalation, EscalationPolicy, EscalationRequest, Outcome, OutcomeInput, Role,
    TaskReason, TaskState,
};
use revisit_shared::{error::parse_json, ApiError};
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

/// The private path the score receiver and the issuer hand escalations to.

const FIRST_CONTACT_KEEP: usize = 10_000;

#[http_component]
async fn handle(req: Request) -> Response {
    let route = shell::matched_route(&req);
    let result = match (route.as_str(), req.method()) {
        (shell::CHAINED_ROUTE, Method::Post) if req.path() == ESCALATIONS_PATH => escalation(&req),
        (CALLBACKS, Method::Get) => list(&req),
        (CALLBACK, Method::Get) => get(&req),
        (OUTCOME, Method::Post) => outcome(&req),
        (CLAIM, Method::Post) => claim_task(&req),
        (TICK, Method::Post) => tick(&req),
        (LOOP_REPORT, Method::Get) => report(&req),
        (CALLBACKS | CALLBACK | LOOP_REPORT, _) => Err(ApiError::method_not_allowed("GET")),
        (OUTCOME | TICK, _) => Err(ApiError::method_not_allowed("POST")),
        _ => Err(ApiError::not_found("no such endpoint")),
    };
    shell::render(result)
}

fn supervisor_only(req: &Request) -> Result<(), ApiError> {
    match shell::authenticate(req)? {
        Role::Supervisor => Ok(()),
        Role::Agent(_) => Err(ApiError::new(
            403,
            "forbidden",
            "only a supervisor (the admin token) may do this",
        )),
    }
}

fn forbidden(task_id: &str) -> ApiError {
    ApiError::new(
        403,
        "forbidden",
        format!("task {task_id} belongs to another owner; agents see only their own tasks"),
    )
}

/// `POST /internal/escalations`: one task per source, however often delivered.
fn escalation(req: &Request) -> Result<Response, ApiError> {
    supervisor_only(req)?;
    let request: EscalationRequest = parse_json(shell::body(req)?)?;
    let store = SpinStore::open()?;
    let policy = shell::escalation_policy()?;
    let task = receive(&store, &request, &policy, shell::now())?;
    Ok(shell::json(200, &serde_json::json!({ "task": task })))
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
            ApiError::bad_request(format!("state must be open, claimed, reached, resolved, refused or expired (got {s:?})"))
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
    let open_lists = match owner.as_deref() {
        Some(o) => vec![keys::owner_tasks(o)],
        None => keys::all_open_tasks(),
    };
    let mut ids: Vec<String> = store.read_lists(&open_lists)?;
    if state.is_none_or(|s| s.is_closed()) {
        let today = shell::now().date_naive();
        let day_logs: Vec<String> = (0..days)
            .map(|d| keys::tasks_created(&(today - Duration::days(d)).format("%Y%m%d").to_string()))
            .collect();
        ids.extend(store.read_logs(&day_logs)?);
    }
    ids.sort();
    ids.dedup();
    let mut tasks: Vec<CallbackTask> = load(&store, &ids)?
        .into_iter()
        .filter(|t| state.is_none_or(|s| t.state == s))
        .filter(|t| {
            owner
                .as_deref()
                .is_none_or(|o| t.owner == o || t.escalated_to.as_deref() == Some(o))
        })
        .collect();
    tasks.sort_by_key(|t| (t.state.is_closed(), t.priority, t.due_by));
    Ok(shell::json(200, &serde_json::json!({ "callbacks": tasks })))
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
    let now = shell::now();
    let place = policy.contact.place(&task.context.customer, now);
    let mut value = serde_json::to_value(&task).map_err(|e| ApiError::internal(e.to_string()))?;
    value["customer_local_time"] = now.with_timezone(&place.tz).to_rfc3339().into();
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
    let (_, claimed) = transition(&store, &id, &role, |t| claim(t, &who, now))?;
    Ok(shell::json(200, &claimed))
}

/// Apply a lifecycle step to a task under compare-and-swap, if `role` may touch
/// it; returns the task before and after.
fn transition(
    store: &SpinStore,
    id: &str,
    role: &Role,
    step: impl Fn(&CallbackTask) -> Result<CallbackTask, ApiError>,
) -> Result<(CallbackTask, CallbackTask), ApiError> {
    let mut outcome: Result<Option<CallbackTask>, ApiError> = Ok(None);
    let updated = store.update_json::<CallbackTask, _>(&keys::task(id), |cur| {
        let Some(task) = cur else {
            outcome = Err(ApiError::not_found(format!("no callback task {id}")));
            return Update::Keep;
        };
        if !role.may_access(&task) {
            outcome = Err(forbidden(id));
            return Update::Keep;
        }
        match step(&task) {
            Ok(next) => {
                outcome = Ok(Some(task));
                Update::Write(next)
            }
            Err(e) => {
                outcome = Err(e);
                Update::Keep
            }
        }
    })?;
    let before = outcome?.ok_or_else(|| ApiError::not_found(format!("no callback task {id}")))?;
    let after = updated.ok_or_else(|| ApiError::not_found(format!("no callback task {id}")))?;
    Ok((before, after))
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
        Ok(task) => back(&format!("{}: {:?}", task.task_id, task.state).to_lowercase()),
        Err(e) if e.status == 401 => Err(e),
        Err(e) => back(&e.message),
    }
}

fn outcome_json(req: &Request) -> Result<Response, ApiError> {
    let input: OutcomeInput = parse_json(shell::body(req)?)?;
    let task = record_outcome(req, input)?;
    Ok(shell::json(200, &task))
}

fn record_outcome(req: &Request, input: OutcomeInput) -> Result<CallbackTask, ApiError> {
    let role = shell::authenticate(req)?;
    let id = shell::path_param(req, "task_id")?;
    let store = SpinStore::open()?;
    let policy = shell::escalation_policy()?;
    let now = shell::now();
    let (before, task) = transition(&store, &id, &role, |t| {
        apply_outcome(t, &input, &policy, now)
    })?;
    // A conversation counts toward the contact limits; a call nobody answered
    // does not (retry spacing already keeps those apart).
    let was_a_call = matches!(input.outcome, Outcome::Reached | Outcome::Refused)
        || (input.outcome == Outcome::Resolved && before.first_contact_at.is_none());
    if was_a_call {
        record_contact(&store, &task.customer_id, now)?;
    }
    if before.first_contact_at.is_none() {
        if let Some(first) = task.first_contact_at {
            let minutes = (first - task.created_at).num_minutes().max(0) as u32;
            store.update_json::<Vec<u32>, _>(keys::FIRST_CONTACT_MINUTES, |cur| {
                let mut v = cur.unwrap_or_default();
                v.push(minutes);
                if v.len() > FIRST_CONTACT_KEEP {
                    v.remove(0);
                }
                Update::Write(v)
            })?;
        }
    }
    if task.state.is_closed() && !before.state.is_closed() {
        count_closed(&store, &task)?;
        // "Did we fix it?" follows a repair, not a thank-you call.
        if task.state == TaskState::Resolved && task.reasons.iter().any(|r| !r.is_delight()) {
            plan_resurvey(&store, &task, now)?;
        }
    }
    Ok(task)
}

/// After a resolution, a short CSAT "did we fix it?" survey through the issuer's
/// policy and due index (the issuer's tick sends it).
fn plan_resurvey(
    store: &SpinStore,
    task: &CallbackTask,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let survey_policy = shell::survey_policy()?;
    let plan = survey_policy.plan_resurvey(&task.task_id, task.resolutions, now);
    create_survey(store, &Survey::resurvey(&plan, task, now))?;
    Ok(())
}

fn count_closed(store: &SpinStore, task: &CallbackTask) -> Result<(), ApiError> {
    let closed_at = task.closed_at.unwrap_or(task.created_at);
    let mut counts = Tentative::new(store);
    bump(&mut counts, store, task, "closed")?;
    if closed_at <= task.due_by {
        bump(&mut counts, store, task, "closed_within_deadline")?;
    }
    if task.state == TaskState::Resolved {
        bump(&mut counts, store, task, "resolved")?;
    }
    store.remove_from_list(&keys::open_tasks(&task.task_id), &task.task_id)?;
    for owner in std::iter::once(&task.owner).chain(task.escalated_to.as_ref()) {
        store.remove_from_list(&keys::owner_tasks(owner), &task.task_id)?;
    }
    let pointer = keys::customer_open_task(&task.customer_id);
    if store.get_json::<String>(&pointer)?.as_deref() == Some(task.task_id.as_str()) {
        store.delete(&pointer)?;
    }
    Ok(())
}

/// `POST /escalator/tick`: deliver what the outbox holds, expire tasks past
/// their validity, mark breaches (each escalated to the supervisor queue exactly
/// once), and find this month's birthday callbacks.
fn tick(req: &Request) -> Result<Response, ApiError> {
    supervisor_only(req)?;
    let store = SpinStore::open()?;
    let policy = shell::escalation_policy()?;
    let now = shell::now();

    let pending: Vec<String> = store.get_json(keys::OUTBOX_INDEX)?.unwrap_or_default();
    let mut delivered = 0;
    for source in &pending {
        if let Some(request) = store.get_json::<EscalationRequest>(&keys::outbox(source))? {
            receive(&store, &request, &policy, now)?;
            delivered += 1;
        }
        store.delete(&keys::outbox(source))?;
        store.remove_from_list(keys::OUTBOX_INDEX, source)?;
    }
    let thank_you = plan_deferred(&store, &policy, now)?;

    let mut breached = 0;
    let mut expired = 0;
    for task in load(&store, &store.read_lists(&keys::all_open_tasks())?)? {
        if !task.state.is_closed() && now >= task.expires_at {
            // Past its validity a call makes no sense any more: expire it.
            let expired_now =
                store.update_if::<CallbackTask, _>(&keys::task(&task.task_id), |t| {
                    if t.state.is_closed() {
                        return false;
                    }
                    t.state = TaskState::Expired;
                    t.closed_at = Some(now);
                    t.resolution = Some("expired: past its validity window".into());
                    true
                })?;
            if let Some(t) = expired_now {
                count_closed(&store, &t)?;
                expired += 1;
            }
            continue;
        }
        if mark_breach(&task, &policy.supervisor, now).is_none() {
            continue;
        }
        // Only the tick that marks the breach escalates it: exactly once.
        let won = store
            .update_if::<CallbackTask, _>(&keys::task(&task.task_id), |t| {
                match mark_breach(t, &policy.supervisor, now) {
                    Some(next) => {
                        *t = next;
                        true
                    }
                    None => false,
                }
            })?
            .is_some();
        if won {
            store.add_to_list(&keys::owner_tasks(&policy.supervisor), &task.task_id)?;
            bump(&mut Tentative::new(&store), &store, &task, "breached")?;
            breached += 1;
        }
    }

    let birthdays = birthday_callbacks(&store, &policy, now)?;
    Ok(shell::json(
        200,
        &serde_json::json!({ "delivered_from_outbox": delivered, "deferred_received": thank_you, "breached": breached, "expired": expired, "birthday_callbacks": birthdays }),
    ))
}

/// How far the tick has read the deferred escalations' hourly logs.
#[derive(serde::Serialize, serde::Deserialize)]
struct DeferredCursor {
    at: DateTime<Utc>,
    /// Slots read so far, by log.
    read: std::collections::BTreeMap<String, i64>,
}

/// How far back the first tick looks for deferred escalations.
const FIRST_DEFERRED_LOOKBACK_DAYS: i64 = 14;

/// Plan the thank-you escalations answers left for the tick
/// (`DeferredEscalation`): each is rebuilt from the store (the answer as the
/// customer's history holds it now, so an erasure in between is respected)
/// and received like any other, once per answer however often it is read.
/// Reads only the hour buckets since the last tick.
fn plan_deferred(
    store: &SpinStore,
    policy: &EscalationPolicy,
    now: DateTime<Utc>,
) -> Result<usize, ApiError> {
    // Resume where the last tick stopped, one hour back (an answer on a host
    // whose clock is a little behind), reading only slots not read before.
    let cursor: DeferredCursor =
        store
            .get_json(keys::DEFERRED_CURSOR)?
            .unwrap_or_else(|| DeferredCursor {
                at: now - Duration::days(FIRST_DEFERRED_LOOKBACK_DAYS),
                read: Default::default(),
            });
    let mut t = cursor.at - Duration::hours(1);
    let mut logs = Vec::new();
    while keys::hour_bucket(t) <= keys::hour_bucket(now) {
        logs.push(keys::deferred_escalations(&keys::hour_bucket(t)));
        t += Duration::hours(1);
    }
    let (items, read) = store.read_logs_after(&logs, &cursor.read)?;
    let mut items: Vec<DeferredEscalation> = items
        .iter()
        .filter_map(|i| serde_json::from_str(i).ok())
        .collect();
    let mut seen = std::collections::BTreeSet::new();
    items.retain(|i| seen.insert(i.survey_id.clone()));
    let surveys: Vec<Option<Survey>> = store
        .get_many(
            &items
                .iter()
                .map(|i| keys::survey(&i.survey_id))
                .collect::<Vec<_>>(),
        )?
        .into_iter()
        .map(|v| v.and_then(|b| serde_json::from_slice(&b).ok()))
        .collect();
    let customer_keys: Vec<String> = surveys
        .iter()
        .flatten()
        .flat_map(|s| [keys::contact(&s.customer_id), keys::history(&s.customer_id)])
        .collect();
    let mut customers = store.get_many(&customer_keys)?.into_iter();
    let merchant = shell::optional_variable("merchant_name").unwrap_or_else(|| "Revisit".into());
    let mut received = 0;
    for (item, survey) in items.into_iter().zip(surveys) {
        let Some(survey) = survey else { continue };
        let (contact, history) = (customers.next().flatten(), customers.next().flatten());
        let contact: Contact = contact
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_else(|| Contact {
                customer_id: survey.customer_id.clone(),
                ..Default::default()
            });
        let history: History = history
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let Some(answer) = history.answer_to(&survey.survey_id) else {
            continue;
        };
        let lang = Lang::from_locale(contact.locale.as_deref());
        let request = answer_escalation(
            &survey,
            &contact,
            &history.before(&survey.survey_id),
            answer,
            (item.reasons, None),
            Some(texts(lang).question(answer.scale, answer.kind, &merchant)),
        );
        receive(store, &request, policy, now)?;
        received += 1;
    }
    // Keep the counts of the last two hours only: older ones are not read again.
    let keep = logs.len().saturating_sub(2);
    let read = read
        .into_iter()
        .filter(|(l, _)| logs[keep..].contains(l))
        .collect();
    store.put_json(keys::DEFERRED_CURSOR, &DeferredCursor { at: now, read })?;
    Ok(received)
}

/// A satisfied customer whose birthday is this month gets one call a year
/// (never with an open complaint: `receive` refuses delight calls then).
fn birthday_callbacks(
    store: &SpinStore,
    policy: &EscalationPolicy,
    now: DateTime<Utc>,
) -> Result<usize, ApiError> {
    let customers: Vec<String> = store
        .get_json(&keys::birthdays(now.month()))?
        .unwrap_or_default();
    let mut created = 0;
    for customer in customers {
        let source = format!("birthday:{customer}:{}", now.year());
        if store.get(&keys::task_source(&source))?.is_some()
            || store.get(&keys::task(&task_id_for(&source)))?.is_some()
        {
            continue;
        }
        let history: History = store
            .get_json(&keys::history(&customer))?
            .unwrap_or_default();
        let satisfied = history
            .answers
            .last()
            .is_some_and(|a| a.scale.is_satisfied(a.score));
        if !satisfied || history.complaints_since_satisfied > 0 {
            continue;
        }
        let contact: Contact = store
            .get_json(&keys::contact(&customer))?
            .unwrap_or_default();
        if contact.opted_out {
            continue;
        }
        let request = EscalationRequest {
            source_id: source,
            reasons: vec![TaskReason::Birthday],
            contact,
            answer: None,
            question: None,
            order_id: None,
            agent_id: None,
            work_order_id: None,
            history: history.answers,
            prior_complaints: 0,
            reopens: None,
            occurred_at: now,
        };
        if receive(store, &request, policy, now)?.is_some() {
            created += 1;
        }
    }
    Ok(created)
}

/// `GET /reports/loop`: totals, and the same by owner and by reason.
fn report(req: &Request) -> Result<Response, ApiError> {
    supervisor_only(req)?;
    let store = SpinStore::open()?;
    let totals = read_report(&store, "")?;
    let owners: Vec<String> = store.get_json(keys::LOOP_OWNERS)?.unwrap_or_default();
    let mut by_owner = serde_json::Map::new();
    for owner in owners {
        by_owner.insert(
            owner.clone(),
            read_report(&store, &format!("owner/{owner}/"))?,
        );
    }
    let mut by_reason = serde_json::Map::new();
    for reason in [
        "low_score",
        "dropping",
        "missed_call",
        "complaint",
        "first_promoter",
        "recovered",
        "birthday",
        "late_delivery",
        "vip_repeat",
    ] {
        let r = read_report(&store, &format!("reason/{reason}/"))?;
        if r["created"].as_i64().unwrap_or(0) > 0 {
            by_reason.insert(reason.to_string(), r);
        }
    }
    let mut value = totals;
    value["by_owner"] = by_owner.into();
    value["by_reason"] = by_reason.into();
    Ok(shell::json(200, &value))
}

fn read_report(store: &SpinStore, prefix: &str) -> Result<serde_json::Value, ApiError> {
    let keys: Vec<String> = LOOP_COUNTERS
        .iter()
        .map(|c| keys::loop_counter(&format!("{prefix}{c}")))
        .collect();
    let values = store.counters(&keys)?;
    let minutes: Vec<u32> = if prefix.is_empty() {
        store
            .get_json(keys::FIRST_CONTACT_MINUTES)?
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    serde_json::to_value(loop_report(&values, &minutes))
        .map_err(|e| ApiError::internal(e.to_string()))
}
