//! Escalations into callback tasks: one task per source however often it is
//! delivered; a customer's escalations merge into their one open task; a low
//! "did we fix it?" answer reopens the task it followed.

use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::contact::open_cases;
use crate::flows::contact::record_contact;
use crate::flows::survey::create_survey;
use crate::keys;
use crate::model::{CallbackTask, EarlierTask, EventLogEntry, TaskReason};
use crate::model::{Outcome, Survey, TaskEffect, TaskState};
use crate::policy::SurveyPolicy;
use crate::storage::backoff;
use crate::storage::{Storage, StorageExt, Tentative, Update};
use crate::task::{
    apply_outcome, effects_of, merge_into, plan_task, reopen, EscalationPolicy, EscalationRequest,
    OutcomeInput, Role,
};
use crate::webhooks::{WebhookEvent, Webhooks};
use crate::ApiError;

/// Handle one escalation exactly once: reopen, merge into the customer's open
/// task, or create a new one.
pub fn receive<S: Storage + ?Sized>(
    store: &S,
    request: &EscalationRequest,
    (policy, hooks): (&EscalationPolicy, &Webhooks),
    now: DateTime<Utc>,
) -> Result<Option<CallbackTask>, ApiError> {
    let source_key = keys::task_source(&request.source_id);
    if let Some(task_id) = store.get_json::<String>(&source_key)? {
        if let Some(task) = store.get_json::<CallbackTask>(&keys::task(&task_id))? {
            return Ok(Some(task));
        }
    }
    if let Some(task_id) = &request.reopens {
        return reopen_task(store, task_id, request, (policy, hooks), now);
    }
    let customer = &request.contact.customer_id;
    let delight_only = request.reasons.iter().all(|r| r.is_delight());
    let Some(mut mine) = plan_task(request, policy, now) else {
        return Ok(None);
    };
    if mine.state.is_closed() {
        return record_too_late(store, mine, request);
    }
    let pointer = keys::customer_open_task(customer);
    let mut created = false;
    // This delivery's counts: made before the task is created, taken back
    // unless this delivery is the one that creates it.
    let mut counts = Tentative::new(store);
    // One customer, one open task: the pointer to it is claimed by compare-and-swap
    // only once the task exists, so racing escalations merge instead of splitting.
    for _ in 0..16 {
        let (current, cas) = store.cas_begin(&pointer)?;
        let current_id = current
            .as_deref()
            .and_then(|v| serde_json::from_slice::<String>(v).ok());
        if current_id.as_deref() == Some(mine.task_id.as_str()) {
            break;
        }
        let open = match &current_id {
            Some(id) => store
                .get_json::<CallbackTask>(&keys::task(id))?
                .filter(|t| !t.state.is_closed()),
            None => None,
        };
        if let Some(open) = open {
            if created {
                // Lost the race after creating: fold this task away again.
                store.delete(&keys::task(&mine.task_id))?;
                counts.take_back();
            }
            if delight_only {
                // A thank-you call to someone waiting for a repair would be tone-deaf.
                // Not recorded as handled: a birthday call may still come once the task closes.
                return Ok(None);
            }
            // Counted first, taken back unless this delivery is the one that
            // merges it (a redelivery after a failure finds it merged).
            let mut merge_counts = Tentative::new(store);
            if let Err(e) = count_complaint(&mut merge_counts, request) {
                merge_counts.take_back();
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
                _ => merge_counts.take_back(),
            }
            let merged = merged?;
            store.put_json(&source_key, &open.task_id)?;
            return Ok(merged);
        }
        if !created {
            mine.context.earlier_tasks = earlier_tasks(store, customer)?;
            let events: Vec<EventLogEntry> = store
                .get_json(&keys::event_log(customer))?
                .unwrap_or_default();
            mine.context.open_cases = open_cases(&events);
            mine.context.events = events;
            // A redelivery after a failure finds the task created and counts nothing.
            let counted = bump(&mut counts, store, &mine, "created")
                .and_then(|_| count_complaint(&mut counts, request));
            if let Err(e) = counted {
                counts.take_back();
                return Err(e);
            }
            created = match store.create_json(&keys::task(&mine.task_id), &mine) {
                Ok(created) => created,
                Err(e) => {
                    counts.take_back();
                    return Err(e.into());
                }
            };
            if !created {
                counts.take_back();
                // Another delivery of this very escalation created it: nothing more to do here.
                if let Some(existing) =
                    store.get_json::<CallbackTask>(&keys::task(&mine.task_id))?
                {
                    mine = existing;
                }
            }
        }
        if store.cas_swap(cas, &serde_json::to_vec(&mine.task_id).unwrap_or_default())? {
            break;
        }
    }
    // The indexes are idempotent and the source mapping below is written last,
    // so a delivery that failed half-way is finished by the next one (the
    // outbox tick, a retry) and no task stays invisible.
    store.add_to_list(&keys::owner_tasks(&mine.owner), &mine.task_id)?;
    store.add_to_list(&keys::open_tasks(&mine.task_id), &mine.task_id)?;
    // A log does not deduplicate: a delivery finishing a failed one may log
    // the task twice, and readers drop repeats.
    store.append_to_log(
        &keys::tasks_created(&crate::date_text::compact_day(mine.created_at.date_naive())),
        &mine.task_id,
    )?;
    store.add_to_list(&keys::customer_tasks(customer), &mine.task_id)?;
    // Before the commit marker: a delivery that failed after it is finished
    // by the next (announced twice, sent once).
    crate::flows::webhooks::announce_task(store, hooks, WebhookEvent::TaskCreated, &mine, now)?;
    store.put_json(&source_key, &mine.task_id)?;
    // As created (a merge racing in since is in the store, and in its reader's answer).
    Ok(Some(mine))
}

/// A task born expired (it arrived past its validity): recorded once, with
/// the reason, where the customer's tasks and the day's log show it, and
/// counted as created and closed (never within its deadline); never in a
/// queue, never merged, never called.
fn record_too_late<S: Storage + ?Sized>(
    store: &S,
    task: CallbackTask,
    request: &EscalationRequest,
) -> Result<Option<CallbackTask>, ApiError> {
    let mut counts = Tentative::new(store);
    let counted = ["created", "closed", "too_late"]
        .iter()
        .chain(crate::task::is_repair(&task).then_some(&"repairs_closed"))
        .try_for_each(|m| bump(&mut counts, store, &task, m));
    let created = counted.and_then(|_| Ok(store.create_json(&keys::task(&task.task_id), &task)?));
    match created {
        Ok(true) => {}
        Ok(false) | Err(_) => counts.take_back(),
    }
    created?;
    store.append_to_log(
        &keys::tasks_created(&crate::date_text::compact_day(task.created_at.date_naive())),
        &task.task_id,
    )?;
    store.add_to_list(&keys::customer_tasks(&task.customer_id), &task.task_id)?;
    store.put_json(&keys::task_source(&request.source_id), &task.task_id)?;
    Ok(store.get_json(&keys::task(&task.task_id))?)
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
    if let Some(t) = &updated {
        store.add_to_list(&keys::open_tasks(&t.task_id), &t.task_id)?;
        store.add_to_list(&keys::owner_tasks(&t.owner), &t.task_id)?;
        store.put_json(&keys::customer_open_task(&t.customer_id), &t.task_id)?;
        crate::flows::webhooks::announce_task(store, hooks, WebhookEvent::TaskCreated, t, now)?;
    }
    store.put_json(&keys::task_source(&request.source_id), &task_id.to_string())?;
    Ok(updated)
}

fn earlier_tasks<S: Storage + ?Sized>(
    store: &S,
    customer: &str,
) -> Result<Vec<EarlierTask>, ApiError> {
    let ids: Vec<String> = store
        .get_json(&keys::customer_tasks(customer))?
        .unwrap_or_default();
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
    let reason = serde_json::to_value(task.reason)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
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
            store.remove_from_list(&keys::open_tasks(id), id)?;
            for owner in std::iter::once(&task.owner).chain(task.escalated_to.as_ref()) {
                store.remove_from_list(&keys::owner_tasks(owner), id)?;
            }
            let pointer = keys::customer_open_task(&task.customer_id);
            if store.get_json::<String>(&pointer)?.as_deref() == Some(id.as_str()) {
                store.delete(&pointer)?;
            }
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
    let mut ids: Vec<String> = store.read_lists(&open_lists)?;
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

    /// The customer's open tasks and how many the loop report counts as created.
    fn open_and_created(s: &MemoryStorage) -> (Vec<String>, i64) {
        let open = s.read_lists(&keys::all_open_tasks()).unwrap();
        (open, s.counter(&keys::loop_counter("created")).unwrap())
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
            assert!(steps >= 8, "{mode:?}: only {steps} operations?");
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
