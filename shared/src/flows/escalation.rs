//! Escalations into callback tasks: one task per source however often it is
//! delivered; a customer's escalations merge into their one open task; a low
//! "did we fix it?" answer reopens the task it followed.

use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::contact::open_cases;
use crate::flows::contact::record_contact;
use crate::flows::survey::create_survey;
use crate::keys;
use crate::model::{CallbackTask, CommittedTask, CustomerCallbacks, EarlierTask};
use crate::model::{EventLogEntry, LoggedTask, TaskReason};
use crate::model::{Outcome, Survey, TaskEffect, TaskState};
use crate::policy::SurveyPolicy;
use crate::storage::backoff;
use crate::storage::{Storage, StorageExt, StoreResult, Tentative, Update};
use crate::task::{
    apply_outcome, effects_of, merge_into, plan_task, reopen, EscalationPolicy, EscalationRequest,
    OutcomeInput, Role,
};
use crate::webhooks::{WebhookEvent, Webhooks};
use crate::ApiError;

/// Handle one escalation exactly once: reopen, merge into the customer's open
/// task, or create a new one. The customer's callbacks record
/// (`keys::customer_callbacks`) is written last, as the commit marker: once
/// it names the source, a delivery of the same escalation changes nothing.
/// A new task costs one batch read, the task log's entry, the task and the
/// record; its indexes and its `created` count come from the task log's fold
/// (`flows::task_log`).
pub fn receive<S: Storage + ?Sized>(
    store: &S,
    request: &EscalationRequest,
    (policy, hooks): (&EscalationPolicy, &Webhooks),
    now: DateTime<Utc>,
) -> Result<Option<CallbackTask>, ApiError> {
    let customer = &request.contact.customer_id;
    let read = store.get_many(&[
        keys::customer_callbacks(customer),
        keys::event_log(customer),
    ])?;
    let record: Option<CustomerCallbacks> = parse_stored(read[0].as_deref(), "callbacks record")?;
    if let Some(id) = record.as_ref().and_then(|r| r.task_for(&request.source_id)) {
        return Ok(store.get_json(&keys::task(id))?);
    }
    if let Some(task_id) = &request.reopens {
        return reopen_task(store, task_id, request, (policy, hooks), now);
    }
    let Some(mut mine) = plan_task(request, policy, now) else {
        return Ok(None);
    };
    // A task born expired (it arrived past its validity) is recorded, never merged.
    if !mine.state.is_closed() {
        if let Some(open) = open_task(store, record.as_ref(), None)? {
            return merge(store, &open, request, policy, now);
        }
    }
    let events: Vec<EventLogEntry> =
        parse_stored(read[1].as_deref(), "event log")?.unwrap_or_default();
    mine.context.earlier_tasks = earlier_tasks(store, record.as_ref())?;
    mine.context.open_cases = open_cases(&events);
    mine.context.events = events;
    create(store, mine, record, request, (policy, hooks), now)
}

/// Keep `request` in the outbox, for the escalator's tick to deliver
/// (`flows::escalator_tick`): an escalation that could not be received now
/// is never lost.
pub fn keep<S: Storage + ?Sized>(store: &S, request: &EscalationRequest) -> StoreResult<()> {
    store.put_json(&keys::outbox(&request.source_id), request)?;
    store.add_to_list(keys::OUTBOX_INDEX, &request.source_id)
}

/// The customer's callbacks record as stored (none yet: empty), for the
/// flows that ask it something: an open task, a source handled, their tasks.
pub fn callbacks_of<S: Storage + ?Sized>(
    store: &S,
    customer: &str,
) -> StoreResult<CustomerCallbacks> {
    Ok(store
        .get_json(&keys::customer_callbacks(customer))?
        .unwrap_or_default())
}

/// A stored record, `None` when absent; one that does not parse is an error
/// (acting on a guess could split or lose a customer's tasks).
fn parse_stored<T: serde::de::DeserializeOwned>(
    bytes: Option<&[u8]>,
    what: &str,
) -> Result<Option<T>, ApiError> {
    bytes
        .map(|b| {
            serde_json::from_slice(b).map_err(|e| {
                ApiError::internal(format!("the customer's {what} does not parse: {e}"))
            })
        })
        .transpose()
}

/// The customer's open task, if `record` names one that is still open
/// (other than `except`).
fn open_task<S: Storage + ?Sized>(
    store: &S,
    record: Option<&CustomerCallbacks>,
    except: Option<&str>,
) -> Result<Option<CallbackTask>, ApiError> {
    let Some(id) = record.and_then(|r| r.open.as_deref()) else {
        return Ok(None);
    };
    if Some(id) == except {
        return Ok(None);
    }
    Ok(store
        .get_json::<CallbackTask>(&keys::task(id))?
        .filter(|t| !t.state.is_closed()))
}

/// Create `mine`: counted tentatively (its `created` count is the task log's
/// fold's), logged, written, announced, then committed in the customer's
/// record. A delivery that finds another open task committed meanwhile
/// merges into it instead, and its own task and log entry are undone.
fn create<S: Storage + ?Sized>(
    store: &S,
    mut mine: CallbackTask,
    mut known: Option<CustomerCallbacks>,
    request: &EscalationRequest,
    (policy, hooks): (&EscalationPolicy, &Webhooks),
    now: DateTime<Utc>,
) -> Result<Option<CallbackTask>, ApiError> {
    let too_late = mine.state.is_closed();
    let mut counts = Tentative::new(store);
    let logged = count_new(&mut counts, store, &mine, request)
        .and_then(|_| {
            let entry = LoggedTask {
                task_id: mine.task_id.clone(),
                customer: keys::pseudonym(&mine.customer_id),
                logged_at: now,
            };
            Ok(crate::flows::task_log::append(store, &entry)?)
        })
        .and_then(|seq| Ok((seq, store.create_json(&keys::task(&mine.task_id), &mine)?)));
    let (seq, created) = match logged {
        Ok(done) => done,
        Err(e) => {
            counts.take_back();
            return Err(e);
        }
    };
    if !created {
        // Another delivery of this very escalation created it.
        if let Some(existing) = store.get_json::<CallbackTask>(&keys::task(&mine.task_id))? {
            mine = existing;
        }
    }
    let key = keys::customer_callbacks(&mine.customer_id);
    for attempt in 0..16 {
        backoff(attempt);
        let (current, cas) = match known.take() {
            // Absent when read: created now, unless another writer was first.
            None if attempt == 0 => (None, None),
            _ => {
                let (bytes, cas) = store.cas_begin(&key)?;
                (
                    parse_stored(bytes.as_deref(), "callbacks record")?,
                    Some(cas),
                )
            }
        };
        if let Some(id) = current
            .as_ref()
            .and_then(|r: &CustomerCallbacks| r.task_for(&request.source_id))
        {
            // Another delivery of this escalation committed first.
            counts.take_back();
            return Ok(store.get_json(&keys::task(id))?);
        }
        if !too_late {
            if let Some(open) = open_task(store, current.as_ref(), Some(&mine.task_id))? {
                // Lost the race to another escalation for this customer.
                counts.take_back();
                crate::flows::task_log::void(store, seq)?;
                if created {
                    store.delete(&keys::task(&mine.task_id))?;
                }
                return merge(store, &open, request, policy, now);
            }
        }
        let mut next = current.clone().unwrap_or_default();
        if !too_late {
            next.open = Some(mine.task_id.clone());
        }
        next.tasks.retain(|t| t.task_id != mine.task_id);
        next.tasks.push(CommittedTask {
            task_id: mine.task_id.clone(),
            logged: seq,
            sources: vec![request.source_id.clone()],
        });
        let bytes = serde_json::to_vec(&next).expect("records serialize");
        let committed = match cas {
            None => store.create(&key, &bytes),
            Some(cas) => store.cas_swap(cas, &bytes),
        };
        match committed {
            Ok(true) => {
                if !too_late {
                    // Only the delivery that committed it; should this fail,
                    // the task log's fold announces it (announced twice, sent once).
                    crate::flows::webhooks::announce_task(
                        store,
                        hooks,
                        WebhookEvent::TaskCreated,
                        &mine,
                        now,
                    )?;
                }
                return Ok(Some(mine));
            }
            Ok(false) => {}
            Err(e) => {
                counts.take_back();
                return Err(e.into());
            }
        }
    }
    counts.take_back();
    Err(ApiError::unavailable(
        "the customer's callbacks kept changing; try again",
    ))
}

/// A new task's counts besides `created` (the task log's fold counts it):
/// a complaint, or a task born expired (closed at once, never within its
/// deadline).
fn count_new<S: Storage + ?Sized>(
    counts: &mut Tentative<S>,
    store: &S,
    task: &CallbackTask,
    request: &EscalationRequest,
) -> Result<(), ApiError> {
    if task.state.is_closed() {
        return ["closed", "too_late"]
            .iter()
            .chain(crate::task::is_repair(task).then_some(&"repairs_closed"))
            .try_for_each(|m| bump(counts, store, task, m));
    }
    count_complaint(counts, request)
}

/// Merge `request` into the customer's open task (once per source), then
/// note the source in the customer's record. A thank-you call to someone
/// waiting for a repair would be tone-deaf: not made, not recorded as
/// handled (a birthday call may still come once the task closes).
fn merge<S: Storage + ?Sized>(
    store: &S,
    open: &CallbackTask,
    request: &EscalationRequest,
    policy: &EscalationPolicy,
    now: DateTime<Utc>,
) -> Result<Option<CallbackTask>, ApiError> {
    if request.reasons.iter().all(|r| r.is_delight()) {
        return Ok(None);
    }
    // Counted first, taken back unless this delivery is the one that
    // merges it (a redelivery after a failure finds it merged).
    let mut counts = Tentative::new(store);
    if let Err(e) = count_complaint(&mut counts, request) {
        counts.take_back();
        return Err(e);
    }
    let mut merged_here = false;
    let merged =
        store.update_json::<CallbackTask, _>(&keys::task(&open.task_id), |cur| match cur {
            Some(t)
                if !t.state.is_closed()
                    && !t
                        .context
                        .merged
                        .iter()
                        .any(|m| m.source_id == request.source_id) =>
            {
                merged_here = true;
                Update::Write(merge_into(&t, request, policy, now))
            }
            _ => {
                merged_here = false;
                Update::Keep
            }
        });
    match &merged {
        Ok(_) if merged_here => {}
        _ => counts.take_back(),
    }
    let merged = merged?;
    note_source(store, &open.customer_id, &request.source_id, &open.task_id)?;
    Ok(merged)
}

/// Record in the customer's callbacks record that `source` went to `task_id`.
fn note_source<S: Storage + ?Sized>(
    store: &S,
    customer: &str,
    source: &str,
    task_id: &str,
) -> Result<(), ApiError> {
    store.update_json::<CustomerCallbacks, _>(&keys::customer_callbacks(customer), |cur| {
        let mut r = cur.unwrap_or_default();
        match r.task_for(source) {
            Some(_) => Update::Keep,
            None => {
                r.note(source, task_id);
                Update::Write(r)
            }
        }
    })?;
    Ok(())
}

/// A closed repair's root cause, counted for the outer loop (by cause and
/// for all causes, in the week the problem surfaced).
/// With it, the reasons the customer gave (by name when the policy offers
/// them, else as `other`), for the cause alone.
fn count_finding<S: Storage + ?Sized>(
    counts: &mut Tentative<S>,
    (before, after): (&CallbackTask, &CallbackTask),
    survey_policy: &SurveyPolicy,
) -> Result<(), ApiError> {
    if let Some(f) = crate::findings::finding_of(before, after) {
        let offered = survey_policy.reasons();
        for cause in [f.cause.as_str(), crate::findings::ALL_CAUSES] {
            counts.add(&keys::finding_counter(cause, &f.week, f.kind), 1)?;
        }
        let mut said: Vec<&str> = Vec::new();
        for r in &f.customer_reasons {
            let reason = match offered.offers_reason(r) {
                true => r.as_str(),
                false => crate::report::OTHER_REASON,
            };
            if !said.contains(&reason) {
                said.push(reason);
            }
        }
        for reason in said {
            counts.add(&keys::finding_reason_counter(&f.cause, &f.week, reason), 1)?;
        }
    }
    Ok(())
}

fn count_complaint<S: Storage + ?Sized>(
    counts: &mut Tentative<S>,
    request: &EscalationRequest,
) -> Result<(), ApiError> {
    if request.reasons.contains(&TaskReason::Complaint) {
        counts.add(&keys::loop_counter("complaints"), 1)?;
        if request.prior_complaints > 0 {
            counts.add(&keys::loop_counter("repeat_complaints"), 1)?;
        }
    }
    Ok(())
}

fn reopen_task<S: Storage + ?Sized>(
    store: &S,
    task_id: &str,
    request: &EscalationRequest,
    (policy, hooks): (&EscalationPolicy, &Webhooks),
    now: DateTime<Utc>,
) -> Result<Option<CallbackTask>, ApiError> {
    let Some(answer) = &request.answer else {
        return Err(ApiError::unprocessable(
            "a reopening escalation carries the re-survey answer",
        ));
    };
    let updated = store.update_json::<CallbackTask, _>(&keys::task(task_id), |cur| match cur {
        Some(t) if t.state.is_closed() => Update::Write(reopen(&t, answer, policy, now)),
        _ => Update::Keep,
    })?;
    let customer = &request.contact.customer_id;
    if let Some(t) = &updated {
        store.add_to_list(&keys::open_tasks(&t.task_id), &t.task_id)?;
        store.add_to_list(&keys::owner_tasks(&t.owner), &t.task_id)?;
        crate::flows::webhooks::announce_task(store, hooks, WebhookEvent::TaskCreated, t, now)?;
    }
    // The commit marker: the customer's open task again, the source handled.
    store.update_json::<CustomerCallbacks, _>(&keys::customer_callbacks(customer), |cur| {
        let mut r = cur.unwrap_or_default();
        if updated.as_ref().is_some_and(|t| !t.state.is_closed()) {
            r.open = Some(task_id.to_string());
        }
        if r.task_for(&request.source_id).is_none() {
            r.note(&request.source_id, task_id);
        }
        Update::Write(r)
    })?;
    Ok(updated)
}

/// What the customer's earlier tasks were (`record` lists them).
fn earlier_tasks<S: Storage + ?Sized>(
    store: &S,
    record: Option<&CustomerCallbacks>,
) -> Result<Vec<EarlierTask>, ApiError> {
    let ids = record.map(CustomerCallbacks::task_ids).unwrap_or_default();
    Ok(load(store, &ids)?
        .into_iter()
        .map(|t| EarlierTask {
            task_id: t.task_id,
            reason: t.reason,
            state: t.state,
            resolution: t.resolution,
            customer_satisfied: t.customer_satisfied,
        })
        .collect())
}

pub fn load<S: Storage + ?Sized>(store: &S, ids: &[String]) -> Result<Vec<CallbackTask>, ApiError> {
    let keys: Vec<String> = ids.iter().map(|i| keys::task(i)).collect();
    Ok(store
        .get_many(&keys)?
        .into_iter()
        .flatten()
        .filter_map(|v| serde_json::from_slice(&v).ok())
        .collect())
}

/// Add one to `metric` overall, for the task's owner and for its reason.
pub fn bump<S: Storage + ?Sized>(
    counts: &mut Tentative<S>,
    store: &S,
    task: &CallbackTask,
    metric: &str,
) -> Result<(), ApiError> {
    counts.add(&keys::loop_counter(metric), 1)?;
    let n = counts.add(
        &keys::loop_counter(&format!("owner/{}/{metric}", task.owner)),
        1,
    )?;
    if n == 1 {
        store.add_to_list(keys::LOOP_OWNERS, &task.owner)?;
    }
    let reason = task.reason.as_str();
    counts.add(&keys::loop_counter(&format!("reason/{reason}/{metric}")), 1)?;
    Ok(())
}

/// What settling a task's change needs besides the store: the survey policy
/// (a resolved repair's re-survey) and who is told (breached, closed).
pub type Owed<'a> = (&'a SurveyPolicy, &'a Webhooks);

/// Change task `id` by `step` (if `role`, when given, may touch it): one
/// compare-and-swap commits the change together with what it owes the rest
/// of the store (`pending`, see [`TaskEffect`]), preceded by its loop-report
/// counts, which are taken back unless the swap lands; then what it owes is
/// settled. What an earlier, interrupted change left is settled first, so a
/// retry finishes the job. Returns the task before and after.
pub fn commit<S: Storage + ?Sized>(
    store: &S,
    id: &str,
    role: Option<&Role>,
    outcome: Option<Outcome>,
    owed: Owed,
    now: DateTime<Utc>,
    step: impl Fn(&CallbackTask) -> Result<CallbackTask, ApiError>,
) -> Result<(CallbackTask, CallbackTask), ApiError> {
    let (survey_policy, _) = owed;
    settle(store, id, owed, now)?;
    let key = keys::task(id);
    for attempt in 0..64 {
        backoff(attempt);
        let (current, cas) = store.cas_begin(&key)?;
        let task: CallbackTask = current
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| ApiError::not_found(format!("no callback task {id}")))?;
        if role.is_some_and(|r| !r.may_access(&task)) {
            return Err(forbidden(id));
        }
        let mut next = step(&task)?;
        let (effects, metrics) = effects_of(&task, &next, outcome, now);
        next.pending = effects;
        let mut counts = Tentative::new(store);
        let counted = metrics
            .iter()
            .try_for_each(|m| bump(&mut counts, store, &next, m))
            .and_then(|_| count_finding(&mut counts, (&task, &next), survey_policy));
        if let Err(e) = counted {
            counts.take_back();
            return Err(e);
        }
        let bytes = serde_json::to_vec(&next).expect("tasks serialize");
        match store.cas_swap(cas, &bytes) {
            Ok(true) => {
                settle(store, id, owed, now)?;
                next.pending.clear();
                return Ok((task, next));
            }
            Ok(false) => counts.take_back(),
            Err(e) => {
                counts.take_back();
                return Err(e.into());
            }
        }
    }
    Err(ApiError::unavailable(format!(
        "callback task {id} kept changing; try again"
    )))
}

/// Finish what task `id`'s last change owes (its `pending` effects, each
/// idempotent), then clear them, unless the task changed meanwhile.
pub fn settle<S: Storage + ?Sized>(
    store: &S,
    id: &str,
    owed: Owed,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let Some(task) = store.get_json::<CallbackTask>(&keys::task(id))? else {
        return Ok(());
    };
    if task.pending.is_empty() {
        return Ok(());
    }
    for effect in &task.pending {
        apply_effect(store, &task, effect, owed, now)?;
    }
    let done = task.pending;
    store.update_if::<CallbackTask, _>(&keys::task(id), |t| {
        let same = t.pending == done;
        if same {
            t.pending.clear();
        }
        same
    })?;
    Ok(())
}

fn apply_effect<S: Storage + ?Sized>(
    store: &S,
    task: &CallbackTask,
    effect: &TaskEffect,
    (survey_policy, hooks): Owed,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let id = &task.task_id;
    match effect {
        TaskEffect::Unlist => {
            unlist(store, task)?;
            store.update_if::<CustomerCallbacks, _>(
                &keys::customer_callbacks(&task.customer_id),
                |r| match r.open.as_deref() == Some(id.as_str()) {
                    true => {
                        r.open = None;
                        true
                    }
                    false => false,
                },
            )?;
        }
        TaskEffect::Contact { at } => record_contact(store, &task.customer_id, *at)?,
        TaskEffect::FirstContact { minutes } => {
            store.update_json::<Vec<FirstContact>, _>(keys::FIRST_CONTACTS, |cur| {
                let mut v = cur.unwrap_or_default();
                if v.iter().any(|f| f.task_id == *id) {
                    return Update::Keep;
                }
                v.push(FirstContact {
                    task_id: id.clone(),
                    minutes: *minutes,
                });
                if v.len() > FIRST_CONTACT_KEEP {
                    v.remove(0);
                }
                Update::Write(v)
            })?;
        }
        TaskEffect::Resurvey { at } => {
            let plan = survey_policy.plan_resurvey(id, task.resolutions, *at);
            create_survey(store, &Survey::resurvey(&plan, task, *at))?;
        }
        TaskEffect::Escalate { supervisor } => {
            store.add_to_list(&keys::owner_tasks(supervisor), id)?;
        }
        TaskEffect::Announce { event } => {
            crate::flows::webhooks::announce_task(store, hooks, *event, task, now)?;
        }
        TaskEffect::Reassign { from } => {
            store.add_to_list(&keys::owner_tasks(&task.owner), id)?;
            if *from != task.owner && task.escalated_to.as_ref() != Some(from) {
                store.remove_from_list(&keys::owner_tasks(from), id)?;
            }
        }
    }
    Ok(())
}

/// Take a task out of the open lists and its owners' queues.
pub fn unlist<S: Storage + ?Sized>(store: &S, task: &CallbackTask) -> StoreResult<()> {
    let id = &task.task_id;
    store.remove_from_list(&keys::open_tasks(id), id)?;
    for owner in std::iter::once(&task.owner).chain(task.escalated_to.as_ref()) {
        store.remove_from_list(&keys::owner_tasks(owner), id)?;
    }
    Ok(())
}

/// Record an agent's outcome on task `id` (if `role` may touch it): see [`commit`].
pub fn record_outcome<S: Storage + ?Sized>(
    store: &S,
    id: &str,
    role: &Role,
    input: &OutcomeInput,
    (policy, survey_policy, hooks): (&EscalationPolicy, &SurveyPolicy, &Webhooks),
    now: DateTime<Utc>,
) -> Result<CallbackTask, ApiError> {
    let step = |t: &CallbackTask| Ok(apply_outcome(t, input, policy, now)?);
    let (_, task) = commit(
        store,
        id,
        Some(role),
        Some(input.outcome),
        (survey_policy, hooks),
        now,
        step,
    )?;
    Ok(task)
}

/// The tasks `GET /callbacks` lists: `owner`'s (as owner or escalated to
/// them; everyone's when `None`) in `state` (any when `None`). Open tasks
/// come from the open indexes; closed ones from the logs of the last `days`
/// days they were created on. Open first, then most urgent.
pub fn list_tasks<S: Storage + ?Sized>(
    store: &S,
    owner: Option<&str>,
    state: Option<TaskState>,
    days: i64,
    today: NaiveDate,
) -> Result<Vec<CallbackTask>, ApiError> {
    let open_lists = match owner {
        Some(o) => vec![keys::owner_tasks(o)],
        None => keys::all_open_tasks(),
    };
    let mut ids = crate::flows::task_log::with_unfolded(store, &open_lists)?;
    if state.is_none_or(|s| s.is_closed()) {
        let day_logs: Vec<String> = (0..days)
            .map(|d| keys::tasks_created(&crate::date_text::compact_day(today - Duration::days(d))))
            .collect();
        ids.extend(store.read_logs(&day_logs)?);
    }
    ids.sort();
    ids.dedup();
    let mut tasks: Vec<CallbackTask> = load(store, &ids)?
        .into_iter()
        .filter(|t| state.is_none_or(|s| t.state == s))
        .filter(|t| owner.is_none_or(|o| t.owner == o || t.escalated_to.as_deref() == Some(o)))
        .collect();
    tasks.sort_by_key(|t| (t.state.is_closed(), t.priority, t.due_by));
    Ok(tasks)
}

/// One task's first contact, for the loop report's median.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FirstContact {
    pub task_id: String,
    pub minutes: u32,
}

/// Keep at most this many first-contact times (the loop report's median).
const FIRST_CONTACT_KEEP: usize = 10_000;

fn forbidden(task_id: &str) -> ApiError {
    ApiError::new(
        403,
        "forbidden",
        format!("task {task_id} belongs to another owner; agents see only their own tasks"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::testing::request;
    use crate::model::TaskState;
    use crate::storage::{Faulty, KvMode, MemoryStorage};

    fn now() -> DateTime<Utc> {
        "2026-12-04T10:00:00+01:00".parse().unwrap()
    }

    fn receive_now<S: Storage + ?Sized>(
        store: &S,
        r: &EscalationRequest,
    ) -> Result<Option<CallbackTask>, ApiError> {
        receive(
            store,
            r,
            (&EscalationPolicy::default(), &crate::webhooks::NOBODY),
            now(),
        )
    }

    /// The open tasks and how many the loop report counts as created, once
    /// the escalator's tick folded the task log (late enough for entries
    /// nobody confirms to be given up on).
    fn open_and_created(s: &MemoryStorage) -> (Vec<String>, i64) {
        let later = now() + crate::answer_log::ORPHAN_AFTER;
        crate::flows::task_log::fold(s, &crate::webhooks::NOBODY, later).unwrap();
        let open = s.read_lists(&keys::all_open_tasks()).unwrap();
        let report = crate::flows::report::loop_report_now(s).unwrap();
        (open, report["created"].as_i64().unwrap())
    }

    #[test]
    fn one_task_however_often_an_escalation_is_delivered() {
        for mode in KvMode::ALL {
            let s = MemoryStorage::in_memory_like(mode);
            let r = request("sv_1", TaskReason::LowScore);
            let first = receive_now(&s, &r).unwrap().unwrap();
            let again = receive_now(&s, &r).unwrap().unwrap();
            assert_eq!(first.task_id, again.task_id, "{mode:?}");
            assert_eq!(
                open_and_created(&s),
                (vec![first.task_id.clone()], 1),
                "{mode:?}"
            );
            assert_eq!(first.context.events.len(), 0);
        }
    }

    /// A store failure at any step, then the retry: one task, counted once,
    /// listed once, whatever step failed.
    #[test]
    fn a_store_failure_at_any_step_is_finished_by_the_retry() {
        for mode in KvMode::ALL {
            let steps = Faulty::sweep(mode, |s, step| {
                let r = request("sv_1", TaskReason::LowScore);
                s.fail_op(step);
                let first = receive_now(s, &r);
                s.disarm();
                let task = receive_now(s, &r).unwrap().unwrap();
                if let Ok(Some(t)) = &first {
                    assert_eq!(t.task_id, task.task_id);
                }
                let (open, created) = open_and_created(s.inner());
                assert_eq!(open, vec![task.task_id.clone()], "{mode:?} step {step}");
                assert_eq!(created, 1, "{mode:?} step {step}");
                let owned = s
                    .inner()
                    .read_lists(&[keys::owner_tasks(&task.owner)])
                    .unwrap();
                assert_eq!(owned, vec![task.task_id.clone()], "{mode:?} step {step}");
            });
            // The batch read, the log entry (2), the task and the record.
            assert!(steps >= 5, "{mode:?}: only {steps} operations?");
        }
    }

    /// Deliveries racing: the same escalation twice, and a second one for the
    /// same customer: one open task, created once, holding both reasons.
    #[test]
    fn racing_escalations_for_one_customer_make_one_task() {
        for mode in KvMode::ALL {
            for round in 0..10 {
                let s = MemoryStorage::in_memory_like(mode);
                let low = request("sv_1", TaskReason::LowScore);
                let complaint = request("ev_complaint", TaskReason::Complaint);
                let barrier = std::sync::Barrier::new(3);
                std::thread::scope(|scope| {
                    for r in [&low, &low, &complaint] {
                        let (s, barrier) = (&s, &barrier);
                        scope.spawn(move || {
                            barrier.wait();
                            receive_now(s, r).unwrap();
                        });
                    }
                });
                let (open, created) = open_and_created(&s);
                assert_eq!(open.len(), 1, "{mode:?} round {round}: {open:?}");
                assert_eq!(created, 1, "{mode:?} round {round}");
                let task: CallbackTask = s.get_json(&keys::task(&open[0])).unwrap().unwrap();
                assert!(task.reasons.contains(&TaskReason::LowScore), "{task:?}");
                assert!(task.reasons.contains(&TaskReason::Complaint), "{task:?}");
            }
        }
    }

    fn resolved() -> OutcomeInput {
        OutcomeInput {
            root_cause: None,
            outcome: Outcome::Resolved,
            resolution: Some("replaced the part".into()),
            customer_satisfied: Some(true),
            note: None,
        }
    }

    fn outcome_now<S: Storage + ?Sized>(
        store: &S,
        id: &str,
        input: &OutcomeInput,
    ) -> Result<CallbackTask, ApiError> {
        let policies = (
            &EscalationPolicy::default(),
            &SurveyPolicy::default(),
            &crate::webhooks::NOBODY,
        );
        record_outcome(store, id, &Role::Supervisor, input, policies, now())
    }

    /// Two agents posting the same outcome at once: one closes the task,
    /// and it is counted closed once.
    #[test]
    fn racing_outcomes_close_a_task_once() {
        for mode in KvMode::ALL {
            let s = MemoryStorage::in_memory_like(mode);
            let task = receive_now(&s, &request("sv_1", TaskReason::LowScore))
                .unwrap()
                .unwrap();
            let barrier = std::sync::Barrier::new(2);
            let results: Vec<Result<CallbackTask, ApiError>> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..2)
                    .map(|_| {
                        let (s, barrier, id) = (&s, &barrier, &task.task_id);
                        scope.spawn(move || {
                            barrier.wait();
                            outcome_now(s, id, &resolved())
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert_eq!(
                results.iter().filter(|r| r.is_ok()).count(),
                1,
                "{mode:?}: {results:?}"
            );
            assert_eq!(
                s.counter(&keys::loop_counter("closed")).unwrap(),
                1,
                "{mode:?}"
            );
            assert_eq!(
                s.counter(&keys::loop_counter("resolved")).unwrap(),
                1,
                "{mode:?}"
            );
            assert!(open_and_created(&s).0.is_empty(), "{mode:?}");
        }
    }

    /// A store failure at any step of an outcome, then the same outcome
    /// again: the task is closed, counted closed once, out of the open
    /// indexes, and its "did we fix it?" re-survey planned.
    #[test]
    fn an_outcome_interrupted_at_any_step_is_finished_by_the_retry() {
        for mode in KvMode::ALL {
            let steps = Faulty::sweep(mode, |s, step| {
                let task = receive_now(s, &request("sv_1", TaskReason::LowScore))
                    .unwrap()
                    .unwrap();
                s.fail_op(step);
                let first = outcome_now(s, &task.task_id, &resolved());
                s.disarm();
                if first.is_err() {
                    let retry = outcome_now(s, &task.task_id, &resolved());
                    assert!(
                        retry.is_ok() || retry.as_ref().unwrap_err().status == 409,
                        "{mode:?} step {step}: {retry:?}"
                    );
                }
                let inner = s.inner();
                let stored: CallbackTask =
                    inner.get_json(&keys::task(&task.task_id)).unwrap().unwrap();
                assert_eq!(stored.state, TaskState::Resolved, "{mode:?} step {step}");
                assert_eq!(
                    inner.counter(&keys::loop_counter("closed")).unwrap(),
                    1,
                    "{mode:?} step {step}"
                );
                assert!(open_and_created(inner).0.is_empty(), "{mode:?} step {step}");
                let resurvey = SurveyPolicy::default().plan_resurvey(&task.task_id, 1, now());
                assert!(
                    inner
                        .get(&keys::survey(&resurvey.survey_id))
                        .unwrap()
                        .is_some(),
                    "{mode:?} step {step}: no re-survey"
                );
            });
            assert!(steps >= 4, "{mode:?}: only {steps} operations?");
        }
    }
}
