//! The escalator's tick (`POST /escalator/tick`, from a scheduler): deliver
//! what the outbox holds, fold the answer log into the reports (with the
//! callbacks the answers ask for: repairs and thank-you calls),
//! expire tasks past their validity, mark breaches (each escalated to the
//! supervisor queue exactly once), and find this month's birthday callbacks.

use chrono::{DateTime, Datelike, Duration, Utc};
use serde::Serialize;

use crate::flows::escalation::{commit, load, receive, settle};
use crate::keys;
use crate::model::{CallbackTask, Contact, History, TaskReason, TaskState, WorkOrder};
use crate::policy::SurveyPolicy;
use crate::storage::{Storage, StorageExt, StoreResult};
use crate::task::{
    mark_breach, task_id_for, EscalationPolicy, EscalationRequest, WORK_ORDER_OVERDUE_HOURS,
};
use crate::webhooks::Webhooks;
use crate::ApiError;

/// What one tick did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TickReport {
    pub delivered_from_outbox: usize,
    /// Repairs received from the answers folded: the callbacks low,
    /// dropping and failed "did we fix it?" answers ask for.
    pub repairs_received: usize,
    /// Thank-you calls planned from the answers folded.
    pub deferred_received: usize,
    /// Answers folded into the reports by this tick.
    pub answers_counted: usize,
    /// Answers logged and not folded yet (in flight, or more than one fold holds).
    pub answers_behind: u64,
    /// New tasks put in their queues and counted by this tick (the task log's fold).
    pub tasks_indexed: usize,
    pub breached: usize,
    pub expired: usize,
    pub birthday_callbacks: usize,
    pub overdue_work_orders: usize,
    pub rate_counters_swept: usize,
    /// Items this tick could not handle (logged; a later tick looks again).
    pub skipped: usize,
}

/// One tick at `now` under the escalation and survey policies; `merchant`
/// names the seller in the callers' question.
pub fn run<S: Storage + ?Sized>(
    store: &S,
    (policy, survey_policy, hooks): (&EscalationPolicy, &SurveyPolicy, &Webhooks),
    merchant: &str,
    now: DateTime<Utc>,
) -> Result<TickReport, ApiError> {
    let mut skips = Skips::default();
    let pending: Vec<String> = store.get_json(keys::OUTBOX_INDEX)?.unwrap_or_default();
    let mut delivered = 0;
    for source in &pending {
        let deliver = || -> Result<bool, ApiError> {
            let request = store.get_json::<EscalationRequest>(&keys::outbox(source))?;
            if let Some(request) = &request {
                receive(store, request, (policy, hooks), now)?;
            }
            store.delete(&keys::outbox(source))?;
            store.remove_from_list(keys::OUTBOX_INDEX, source)?;
            Ok(request.is_some())
        };
        match deliver() {
            Ok(true) => delivered += 1,
            Ok(false) => {}
            // Kept in the outbox: the next tick tries again.
            Err(e) => skips.note("outbox entry", source, &e),
        }
    }
    // The answers logged since the last tick: counted into the reports,
    // their integrity signals and the callbacks they ask for.
    let answers =
        crate::flows::answer_log::fold(store, (policy, survey_policy, hooks), merchant, now)?;

    // The tasks created since: into their queues and the loop's counts.
    let tasks = crate::flows::task_log::fold(store, hooks, now)?;

    let mut breached = 0;
    let mut expired = 0;
    for task in load(store, &store.read_lists(&keys::all_open_tasks())?)? {
        if task.state.is_closed() {
            // Listed by a fold while it closed: out of the open lists now.
            if let Err(e) = crate::flows::escalation::unlist(store, &task) {
                skips.note("closed task", &task.task_id, &e.into());
            }
            continue;
        }
        match judge_task(store, &task, (policy, survey_policy, hooks), now) {
            Ok(Some(TaskChange::Expired)) => expired += 1,
            Ok(Some(TaskChange::Breached)) => breached += 1,
            Ok(None) => {}
            Err(e) => skips.note("task", &task.task_id, &e),
        }
    }

    // Rate counters whose minute can matter no more.
    let rate_counters_swept = match crate::flows::attempts::sweep(store, now) {
        Ok(n) => n,
        Err(e) => {
            skips.note("rate counters of", &keys::hour_bucket(now), &e.into());
            0
        }
    };
    let birthday_callbacks = birthday_callbacks(store, (policy, hooks), now, &mut skips)?;
    let overdue_work_orders = overdue_work_orders(store, (policy, hooks), now, &mut skips)?;
    Ok(TickReport {
        delivered_from_outbox: delivered,
        repairs_received: answers.repairs,
        deferred_received: answers.thank_you_calls,
        answers_counted: answers.counted,
        answers_behind: answers.behind,
        tasks_indexed: tasks.indexed,
        breached,
        expired,
        birthday_callbacks,
        overdue_work_orders,
        rate_counters_swept,
        skipped: skips.count,
    })
}

/// The items a tick could not handle: each logged (ids only, no personal
/// data) and counted; the others go on, and a later tick looks again.
#[derive(Default)]
struct Skips {
    count: usize,
}

impl Skips {
    fn note(&mut self, what: &str, id: &str, e: &ApiError) {
        self.count += 1;
        eprintln!(
            "escalator tick: {what} {id} skipped ({}): {}",
            e.code, e.message
        );
    }
}

/// What the tick did to one open task.
enum TaskChange {
    Expired,
    Breached,
}

/// Settle what an interrupted request left the task owing; expire it past
/// its validity, or mark it breached past its deadline (each exactly once:
/// only the tick whose change lands counts it).
fn judge_task<S: Storage + ?Sized>(
    store: &S,
    task: &CallbackTask,
    (policy, survey_policy, hooks): (&EscalationPolicy, &SurveyPolicy, &Webhooks),
    now: DateTime<Utc>,
) -> Result<Option<TaskChange>, ApiError> {
    let owed = (survey_policy, hooks);
    if !task.pending.is_empty() {
        settle(store, &task.task_id, owed, now)?;
    }
    if task.state.is_closed() {
        return Ok(None);
    }
    let is_conflict = |e: &ApiError| e.status == 409;
    if now >= task.expires_at {
        // Past its validity a call makes no sense any more: expire it.
        let expire = |t: &CallbackTask| {
            if t.state.is_closed() {
                return Err(ApiError::conflict("closed meanwhile"));
            }
            let mut t = t.clone();
            t.state = TaskState::Expired;
            t.closed_at = Some(now);
            t.resolution = Some("expired: past its validity window".into());
            Ok(t)
        };
        return match commit(store, &task.task_id, None, None, owed, now, expire) {
            Ok(_) => Ok(Some(TaskChange::Expired)),
            Err(e) if is_conflict(&e) => Ok(None),
            Err(e) => Err(e),
        };
    }
    if mark_breach(task, &policy.supervisor, now).is_none() {
        return Ok(None);
    }
    let breach = |t: &CallbackTask| {
        mark_breach(t, &policy.supervisor, now)
            .ok_or_else(|| ApiError::conflict("breached meanwhile"))
    };
    match commit(store, &task.task_id, None, None, owed, now, breach) {
        Ok(_) => Ok(Some(TaskChange::Breached)),
        Err(e) if is_conflict(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// How far back a first tick looks (no cursor yet) for overdue work orders.
const FIRST_TICK_LOOKBACK_DAYS: i64 = 14;

/// Work orders still open 48 h after they were booked: a proactive call
/// (`work_order_overdue`), once per work order, before the customer has to
/// chase. Reads only the hour buckets whose 48 h ran out since the last tick.
fn overdue_work_orders<S: Storage + ?Sized>(
    store: &S,
    policy: (&EscalationPolicy, &Webhooks),
    now: DateTime<Utc>,
    skips: &mut Skips,
) -> Result<usize, ApiError> {
    let since: DateTime<Utc> = store
        .get_json(keys::WORK_ORDER_CURSOR)?
        .map(|c: DateTime<Utc>| c - Duration::hours(1))
        .unwrap_or(now - Duration::days(FIRST_TICK_LOOKBACK_DAYS));
    let mut logs = Vec::new();
    let mut t = since;
    while keys::hour_bucket(t) <= keys::hour_bucket(now) {
        logs.push(keys::work_orders_due(&keys::hour_bucket(t)));
        t += Duration::hours(1);
    }
    let ids: std::collections::BTreeSet<String> = store.read_logs(&logs)?.into_iter().collect();
    let mut created = 0;
    for id in ids {
        match overdue_call(store, policy, &id, now) {
            Ok(true) => created += 1,
            Ok(false) => {}
            Err(e) => {
                skips.note("work order", &id, &e);
                // Looked at again next hour, whatever the cursor says.
                let again = keys::work_orders_due(&keys::hour_bucket(now + Duration::hours(1)));
                let _ = store.append_to_log(&again, &id);
            }
        }
    }
    store.put_json(keys::WORK_ORDER_CURSOR, &now)?;
    Ok(created)
}

/// The proactive call for work order `id`, if it is still open 48 h after
/// it was booked and has none yet.
fn overdue_call<S: Storage + ?Sized>(
    store: &S,
    policy: (&EscalationPolicy, &Webhooks),
    id: &str,
    now: DateTime<Utc>,
) -> Result<bool, ApiError> {
    let Some(wo) = store.get_json::<WorkOrder>(&keys::work_order(id))? else {
        return Ok(false);
    };
    let (Some(opened), None, Some(customer)) = (wo.opened_at, wo.completed_at, &wo.customer_id)
    else {
        return Ok(false);
    };
    let overdue_at = opened + Duration::hours(WORK_ORDER_OVERDUE_HOURS);
    let source = format!("work-order-overdue:{id}");
    if overdue_at > now || handled(store, customer, &source)? {
        return Ok(false);
    }
    let contact: Contact = store
        .get_json(&keys::contact(customer))?
        .unwrap_or_else(|| Contact {
            customer_id: customer.clone(),
            ..Default::default()
        });
    let request = EscalationRequest {
        source_id: source,
        reasons: vec![TaskReason::WorkOrderOverdue],
        contact,
        answer: None,
        question: None,
        order_id: wo.order_id.clone(),
        agent_id: None,
        work_order_id: Some(id.to_string()),
        history: Vec::new(),
        prior_complaints: 0,
        reopens: None,
        topic: None,
        occurred_at: overdue_at,
    };
    Ok(receive(store, &request, policy, now)?.is_some_and(|t| !t.state.is_closed()))
}

/// How recent a satisfied answer must be for a birthday call.
const BIRTHDAY_SATISFIED_WITHIN_DAYS: i64 = 180;

/// A satisfied key customer gets one birthday call a year, on (or from) the
/// day (never with an open complaint: `receive` refuses delight calls then).
fn birthday_callbacks<S: Storage + ?Sized>(
    store: &S,
    policy: (&EscalationPolicy, &Webhooks),
    now: DateTime<Utc>,
    skips: &mut Skips,
) -> Result<usize, ApiError> {
    // The days since the last tick (today again: a birthday noted today
    // after the last tick), at most a month back.
    let today = now.date_naive();
    let since = store
        .get_json::<chrono::NaiveDate>(keys::BIRTHDAY_CURSOR)?
        .unwrap_or(today)
        .max(today - Duration::days(31));
    let mut created = 0;
    let mut day = since;
    while day <= today {
        let customers: Vec<String> = store
            .get_json(&keys::birthdays_on(day.month(), day.day()))?
            .unwrap_or_default();
        for customer in customers {
            match birthday_call(store, policy, &customer, now) {
                Ok(true) => created += 1,
                Ok(false) => {}
                Err(e) => skips.note("birthday call for a customer of", &day.to_string(), &e),
            }
        }
        day += Duration::days(1);
    }
    store.put_json(keys::BIRTHDAY_CURSOR, &today)?;
    Ok(created)
}

/// Whether escalation `source` was handled for `customer` already.
fn handled<S: Storage + ?Sized>(store: &S, customer: &str, source: &str) -> StoreResult<bool> {
    let record = crate::flows::escalation::callbacks_of(store, customer)?;
    Ok(record.task_for(source).is_some())
}

/// One customer's birthday call, once a year: a key customer, satisfied
/// lately, not opted out, without a complaint since.
fn birthday_call<S: Storage + ?Sized>(
    store: &S,
    policy: (&EscalationPolicy, &Webhooks),
    customer: &str,
    now: DateTime<Utc>,
) -> Result<bool, ApiError> {
    let source = format!("birthday:{customer}:{}", now.year());
    if handled(store, customer, &source)?
        || store.get(&keys::task(&task_id_for(&source)))?.is_some()
    {
        return Ok(false);
    }
    let history: History = store
        .get_json(&keys::history(customer))?
        .unwrap_or_default();
    // Satisfied recently (SPEC 1), not a year ago.
    let satisfied = history.answers.last().is_some_and(|a| {
        a.scale.is_satisfied(a.score)
            && now - a.answered_at <= Duration::days(BIRTHDAY_SATISFIED_WITHIN_DAYS)
    });
    if !satisfied || history.complaints_since_satisfied > 0 {
        return Ok(false);
    }
    let contact: Contact = store
        .get_json(&keys::contact(customer))?
        .unwrap_or_default();
    if contact.opted_out || !policy.0.is_key_customer(&contact) {
        return Ok(false);
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
        topic: None,
        occurred_at: now,
    };
    Ok(receive(store, &request, policy, now)?.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::testing::{at, request};
    use crate::storage::{Faulty, KvMode, MemoryStorage};

    /// A store with one open low-score task, due on 2026-12-08 (48 calling
    /// hours after a Friday-morning answer in Berlin).
    fn with_task<S: Storage + ?Sized>(s: &S) -> CallbackTask {
        let request = request("sv_1", TaskReason::LowScore);
        let policy = EscalationPolicy::default();
        receive(
            s,
            &request,
            (&policy, &crate::webhooks::NOBODY),
            at("2026-12-04T10:00:00+01:00"),
        )
        .unwrap()
        .unwrap()
    }

    fn tick<S: Storage + ?Sized>(s: &S, now: DateTime<Utc>) -> Result<TickReport, ApiError> {
        let policies = (
            &EscalationPolicy::default(),
            &SurveyPolicy::default(),
            &crate::webhooks::NOBODY,
        );
        run(s, policies, "Acme", now)
    }

    /// Breached, in the supervisor's queue once, counted once.
    fn breach_state(s: &MemoryStorage, task: &CallbackTask) -> (bool, Vec<String>, i64) {
        let t: CallbackTask = s.get_json(&keys::task(&task.task_id)).unwrap().unwrap();
        let supervisor = EscalationPolicy::default().supervisor;
        let queue = s.read_lists(&[keys::owner_tasks(&supervisor)]).unwrap();
        (
            t.breached,
            queue,
            s.counter(&keys::loop_counter("breached")).unwrap(),
        )
    }

    #[test]
    fn racing_ticks_breach_a_task_once() {
        for mode in KvMode::ALL {
            let s = MemoryStorage::in_memory_like(mode);
            let task = with_task(&s);
            let late = task.due_by + Duration::hours(1);
            let barrier = std::sync::Barrier::new(3);
            let breached: usize = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..3)
                    .map(|_| {
                        let (s, barrier) = (&s, &barrier);
                        scope.spawn(move || {
                            barrier.wait();
                            tick(s, late).unwrap().breached
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).sum()
            });
            assert_eq!(breached, 1, "{mode:?}");
            let state = breach_state(&s, &task);
            assert_eq!(state, (true, vec![task.task_id.clone()], 1), "{mode:?}");
        }
    }

    #[test]
    fn a_store_failure_at_any_step_is_finished_by_the_next_tick() {
        for mode in KvMode::ALL {
            let steps = Faulty::sweep(mode, |s, step| {
                let task = with_task(s);
                let late = task.due_by + Duration::hours(1);
                s.fail_op(step);
                let _ = tick(s, late);
                s.disarm();
                tick(s, late + Duration::minutes(1)).unwrap();
                let state = breach_state(s.inner(), &task);
                assert_eq!(
                    state,
                    (true, vec![task.task_id.clone()], 1),
                    "{mode:?} step {step}"
                );
            });
            assert!(steps >= 4, "{mode:?}: only {steps} operations?");
        }
    }

    #[test]
    fn a_birthday_call_is_for_a_key_customer_satisfied_lately() {
        let now = at("2026-12-04T10:00:00+01:00");
        let policy = EscalationPolicy::default();
        let answer = |id: &str, at_: &str| crate::model::Answer {
            survey_id: id.into(),
            channel: crate::model::Channel::Email,
            kind: crate::model::SurveyKind::Product,
            scale: crate::model::Scale::Nps,
            score: 9,
            comment: None,
            reasons: vec![],
            answered_at: at(at_),
            log_seq: None,
        };
        let s = MemoryStorage::new();
        for (id, tier, answered) in [
            ("key-recent", Some("key"), "2026-11-20T10:00:00+01:00"),
            ("key-last-year", Some("vip"), "2025-12-01T10:00:00+01:00"),
            ("ordinary", None, "2026-11-20T10:00:00+01:00"),
        ] {
            let contact = Contact {
                customer_id: id.into(),
                tier: tier.map(str::to_string),
                birthday: Some("1990-12-24".into()),
                ..Default::default()
            };
            s.put_json(&keys::contact(id), &contact).unwrap();
            let history = History {
                answers: vec![answer(&format!("sv-{id}"), answered)],
                ..Default::default()
            };
            s.put_json(&keys::history(id), &history).unwrap();
            s.add_to_list(&keys::birthdays_on(12, 4), id).unwrap();
        }
        assert_eq!(
            birthday_callbacks(
                &s,
                (&policy, &crate::webhooks::NOBODY),
                now,
                &mut Skips::default()
            )
            .unwrap(),
            1
        );
        let made = handled(&s, "key-recent", "birthday:key-recent:2026").unwrap();
        assert!(made, "only the key customer satisfied lately");
        assert_eq!(
            birthday_callbacks(
                &s,
                (&policy, &crate::webhooks::NOBODY),
                now,
                &mut Skips::default()
            )
            .unwrap(),
            0,
            "once a year"
        );
    }
}
