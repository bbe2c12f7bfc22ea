//! The webhook outbox: what happened is announced where it happens (one
//! entry per subscribed endpoint, numbered by one counter), and the
//! escalator's tick sends what is due, one delivery at a time around the
//! component's request: [`due`] → [`begin`] → (send) → [`finish`], then
//! [`advance`].
//!
//! Guarantees: an announced delivery is never lost (the entry is written
//! before the announcing change is considered done, and kept until a 2xx or
//! the retry schedule's end); never sent twice after a 2xx (the entry says
//! so before the next tick looks); announced twice (a retried flow), it is
//! sent once (the first entry claims its id, later ones are duplicates); two
//! ticks at once do not both send it (a lease written by compare-and-swap).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::keys;
use crate::model::CallbackTask;
use crate::storage::{Storage, StorageExt, StoreResult, Update};
use crate::webhooks::{
    request, AttemptResult, Delivery, DeliveryStatus, Links, WebhookEvent, WebhookRequest, Webhooks,
};
use crate::ApiError;

/// How many entries past the cursor one tick looks at.
pub const WINDOW: u64 = 200;
/// How many deliveries one tick tries at most (each may wait for a timeout).
pub const SENDS_PER_TICK: usize = 50;
/// How long a try holds its delivery against another tick.
pub const LEASE: Duration = Duration::minutes(2);
/// A number handed out whose entry never came (its writer died) is passed
/// over after this long.
pub const ORPHAN_AFTER: Duration = Duration::minutes(5);
/// How long finished deliveries stay in the log.
pub const RETENTION: Duration = Duration::days(30);

/// How far the outbox is finished.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutboxCursor {
    /// Every entry below this number is finished (delivered, given up on,
    /// a duplicate, or never written).
    pub next: u64,
    /// The entry at `next`, missing since then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_since: Option<DateTime<Utc>>,
    /// Entries below this number are deleted (past [`RETENTION`]).
    #[serde(default)]
    pub pruned: u64,
}

/// Announce `event` about `subject` to every endpoint that takes it (Slack:
/// only tasks a person should look at now). Costs nothing when nobody
/// subscribes; else one increment and one write per endpoint. Announcing the
/// same thing again is harmless (see the module).
pub fn announce<S: Storage + ?Sized>(
    store: &S,
    hooks: &Webhooks,
    event: WebhookEvent,
    subject: &str,
    task: Option<&CallbackTask>,
    data: impl FnOnce() -> Value,
    now: DateTime<Utc>,
) -> StoreResult<usize> {
    let endpoints = hooks.subscribers(event, task);
    if endpoints.is_empty() {
        return Ok(0);
    }
    let data = data();
    for endpoint in &endpoints {
        let delivery = Delivery::new(event, subject, endpoint, data.clone(), now);
        let n = store.increment(keys::WEBHOOK_HEAD, 1)? as u64;
        store.put_json(&keys::webhook_delivery(n), &delivery)?;
    }
    Ok(endpoints.len())
}

/// Announce a task's event (its facts as `webhooks::task_data` gives them).
pub fn announce_task<S: Storage + ?Sized>(
    store: &S,
    hooks: &Webhooks,
    event: WebhookEvent,
    task: &CallbackTask,
    now: DateTime<Utc>,
) -> StoreResult<usize> {
    // A reopened task is created again: one alert per time it is opened.
    let subject = format!("{}#{}", task.task_id, task.resolutions);
    announce(
        store,
        hooks,
        event,
        &subject,
        Some(task),
        || crate::webhooks::task_data(task),
        now,
    )
}

/// A delivery the tick may try now.
#[derive(Debug, Clone)]
pub struct Job {
    pub n: u64,
    pub delivery: Delivery,
}

/// The deliveries due at `now`, oldest first, at most [`SENDS_PER_TICK`].
pub fn due<S: Storage + ?Sized>(store: &S, now: DateTime<Utc>) -> Result<Vec<Job>, ApiError> {
    let cursor: OutboxCursor = store.get_json(keys::WEBHOOK_CURSOR)?.unwrap_or_default();
    let head = store.counter(keys::WEBHOOK_HEAD)? as u64;
    let from = cursor.next.max(1);
    let to = head.min(from + WINDOW - 1);
    let numbers: Vec<u64> = (from..=to).collect();
    let keys: Vec<String> = numbers.iter().map(|n| keys::webhook_delivery(*n)).collect();
    let mut jobs = Vec::new();
    for (n, bytes) in numbers.into_iter().zip(store.get_many(&keys)?) {
        let Some(delivery) = bytes.and_then(|b| serde_json::from_slice::<Delivery>(&b).ok()) else {
            continue;
        };
        if delivery.is_due(now) && jobs.len() < SENDS_PER_TICK {
            jobs.push(Job { n, delivery });
        }
    }
    Ok(jobs)
}

/// What [`begin`] decided about a job.
#[derive(Debug, Clone, PartialEq)]
pub enum Begin {
    /// Send this; then [`finish`].
    Send(WebhookRequest),
    /// Another tick holds it, or it changed: leave it.
    Taken,
    /// The same message is another entry's: marked, never sent.
    Duplicate,
    /// Its endpoint is no longer in `webhooks`: given up on, with why.
    Abandoned,
}

/// Take `job` for a try at `now`: claim its id (first entry wins) and lease
/// it against other ticks, both by compare-and-swap.
pub fn begin<S: Storage + ?Sized>(
    store: &S,
    job: &Job,
    hooks: &Webhooks,
    links: &Links,
    now: DateTime<Utc>,
) -> Result<Begin, ApiError> {
    let key = keys::webhook_delivery(job.n);
    let claim = keys::webhook_claim(&job.delivery.id);
    if !store.create_json(&claim, &job.n)? && store.get_json::<u64>(&claim)? != Some(job.n) {
        store.update_if::<Delivery, _>(&key, |d| {
            let open = d.is_open();
            d.status = DeliveryStatus::Duplicate;
            d.next_attempt_at = None;
            open
        })?;
        return Ok(Begin::Duplicate);
    }
    let Some(endpoint) = hooks.endpoint(&job.delivery.url) else {
        store.update_if::<Delivery, _>(&key, |d| {
            let open = d.is_open();
            d.status = DeliveryStatus::Failed;
            d.next_attempt_at = None;
            d.last_error = Some("its endpoint is no longer in the webhooks variable".into());
            open
        })?;
        return Ok(Begin::Abandoned);
    };
    let mut leased = false;
    store.update_json::<Delivery, _>(&key, |cur| match cur {
        Some(d) if d.is_due(now) && d == job.delivery => {
            let mut d = d;
            // Held against other ticks until the lease runs out.
            d.status = DeliveryStatus::Failed;
            d.next_attempt_at = Some(now + LEASE);
            d.last_error = Some("being sent".into());
            leased = true;
            Update::Write(d)
        }
        _ => {
            leased = false;
            Update::Keep
        }
    })?;
    if !leased {
        return Ok(Begin::Taken);
    }
    match request(&job.delivery, endpoint, links, now) {
        Ok(r) => Ok(Begin::Send(r)),
        Err(why) => {
            let mut d = job.delivery.clone();
            d.status = DeliveryStatus::Failed;
            d.next_attempt_at = None;
            d.last_error = Some(why);
            store.put_json(&key, &d)?;
            Ok(Begin::Abandoned)
        }
    }
}

/// Record how the try of `job` at `now` went.
pub fn finish<S: Storage + ?Sized>(
    store: &S,
    job: &Job,
    result: &AttemptResult,
    now: DateTime<Utc>,
) -> Result<Delivery, ApiError> {
    let after = job.delivery.after_attempt(result, now);
    store.put_json(&keys::webhook_delivery(job.n), &after)?;
    Ok(after)
}

/// One tick's sending: an endpoint that failed is not tried again until the
/// next tick (a receiver that is down costs one timeout per tick, not one
/// per delivery).
#[derive(Debug, Default)]
pub struct Round {
    failing: Vec<String>,
    pub report: RoundReport,
}

/// What one tick's sending did.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct RoundReport {
    pub delivered: usize,
    pub failed: usize,
    /// Deliveries still owed a try (now or later).
    pub open: u64,
}

impl Round {
    /// Whether `job` waits for the next tick (its endpoint failed in this one).
    pub fn skips(&self, job: &Job) -> bool {
        self.failing.contains(&job.delivery.url)
    }

    /// A try's outcome, as [`finish`] recorded it.
    pub fn note(&mut self, after: &Delivery) {
        if after.status == DeliveryStatus::Delivered {
            self.report.delivered += 1;
        } else {
            self.report.failed += 1;
            self.failing.push(after.url.clone());
        }
    }
}

/// Move the cursor past the finished entries at its front, and delete
/// finished entries past [`RETENTION`]. Returns how many are still open.
pub fn advance<S: Storage + ?Sized>(store: &S, now: DateTime<Utc>) -> Result<u64, ApiError> {
    let mut cursor: OutboxCursor = store.get_json(keys::WEBHOOK_CURSOR)?.unwrap_or_default();
    let before = cursor.clone();
    let head = store.counter(keys::WEBHOOK_HEAD)? as u64;
    cursor.next = cursor.next.max(1);
    while cursor.next <= head {
        let to = head.min(cursor.next + WINDOW - 1);
        let keys: Vec<String> = (cursor.next..=to).map(keys::webhook_delivery).collect();
        let mut stopped = false;
        for bytes in store.get_many(&keys)? {
            let finished = match bytes.and_then(|b| serde_json::from_slice::<Delivery>(&b).ok()) {
                Some(d) => !d.is_open(),
                None => match cursor.missing_since {
                    Some(since) => now - since >= ORPHAN_AFTER,
                    None => {
                        cursor.missing_since = Some(now);
                        false
                    }
                },
            };
            if !finished {
                stopped = true;
                break;
            }
            cursor.next += 1;
            cursor.missing_since = None;
        }
        if stopped {
            break;
        }
    }
    prune(store, &mut cursor, now)?;
    if cursor != before {
        // Only forward: a slower tick never moves it back.
        store.update_json::<OutboxCursor, _>(keys::WEBHOOK_CURSOR, |cur| match cur {
            Some(c) if c.next > cursor.next || c.pruned > cursor.pruned => Update::Keep,
            _ => Update::Write(cursor.clone()),
        })?;
    }
    Ok(head.saturating_sub(cursor.next.saturating_sub(1)))
}

/// Delete finished deliveries older than [`RETENTION`] (and their claims),
/// oldest first, at most one window per tick.
fn prune<S: Storage + ?Sized>(
    store: &S,
    cursor: &mut OutboxCursor,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let from = cursor.pruned.max(1);
    let to = (cursor.next.saturating_sub(1)).min(from + WINDOW - 1);
    if from > to {
        return Ok(());
    }
    let keys: Vec<String> = (from..=to).map(keys::webhook_delivery).collect();
    for (n, bytes) in (from..=to).zip(store.get_many(&keys)?) {
        if let Some(d) = bytes.and_then(|b| serde_json::from_slice::<Delivery>(&b).ok()) {
            if now - d.created_at < RETENTION {
                break;
            }
            if d.status != DeliveryStatus::Duplicate {
                store.delete(&keys::webhook_claim(&d.id))?;
            }
            store.delete(&keys::webhook_delivery(n))?;
        }
        cursor.pruned = n + 1;
    }
    Ok(())
}

/// One delivery as the log shows it.
#[derive(Debug, Clone, Serialize)]
pub struct LoggedDelivery {
    pub n: u64,
    #[serde(flatten)]
    pub delivery: Delivery,
}

/// The delivery log, newest first: the last `limit` deliveries (with
/// `status`, those in it), looking back at most [`WINDOW`] × 5 entries;
/// duplicates are left out.
pub fn deliveries<S: Storage + ?Sized>(
    store: &S,
    status: Option<DeliveryStatus>,
    limit: usize,
) -> Result<Vec<LoggedDelivery>, ApiError> {
    let head = store.counter(keys::WEBHOOK_HEAD)? as u64;
    let mut out = Vec::new();
    let mut top = head;
    let mut looked = 0;
    while top >= 1 && out.len() < limit && looked < WINDOW * 5 {
        let bottom = top.saturating_sub(WINDOW - 1).max(1);
        let numbers: Vec<u64> = (bottom..=top).rev().collect();
        let keys: Vec<String> = numbers.iter().map(|n| keys::webhook_delivery(*n)).collect();
        for (n, bytes) in numbers.into_iter().zip(store.get_many(&keys)?) {
            let Some(d) = bytes.and_then(|b| serde_json::from_slice::<Delivery>(&b).ok()) else {
                continue;
            };
            let shown =
                d.status != DeliveryStatus::Duplicate && status.is_none_or(|s| s == d.status);
            if shown && out.len() < limit {
                out.push(LoggedDelivery { n, delivery: d });
            }
        }
        looked += top - bottom + 1;
        top = bottom - 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{Faulty, KvMode, MemoryStorage};
    use serde_json::json;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const URL: &str = "https://crm.example/hooks";
    const LINKS: Links = Links {
        public_base_url: "https://app.example",
    };

    fn hooks() -> Webhooks {
        Webhooks::parse(&format!(
            r#"[{{"url":"{URL}","events":["answer.recorded","survey.skipped"],"secret":"{SECRET}"}}]"#
        ))
        .unwrap()
    }

    fn t(s: &str) -> DateTime<Utc> {
        format!("2026-12-01T{s}Z").parse().unwrap()
    }

    /// One tick's sending, with `receiver` answering each request.
    fn tick<S: Storage + ?Sized>(
        store: &S,
        now: DateTime<Utc>,
        receiver: &mut dyn FnMut(&WebhookRequest) -> AttemptResult,
    ) -> Result<u64, ApiError> {
        let mut round = Round::default();
        for job in due(store, now)? {
            if round.skips(&job) {
                continue;
            }
            if let Begin::Send(r) = begin(store, &job, &hooks(), &LINKS, now)? {
                round.note(&finish(store, &job, &receiver(&r), now)?);
            }
        }
        advance(store, now)
    }

    fn skipped<S: Storage + ?Sized>(
        store: &S,
        survey: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<usize> {
        let data = || json!({"survey_id": survey});
        announce(
            store,
            &hooks(),
            WebhookEvent::SurveySkipped,
            survey,
            None,
            data,
            now,
        )
    }

    #[test]
    fn nobody_subscribed_costs_nothing() {
        let store = Faulty::new(MemoryStorage::new());
        store.fail_op(0);
        let n = announce(
            &store,
            &crate::webhooks::NOBODY,
            WebhookEvent::TaskCreated,
            "x",
            None,
            || json!({}),
            t("10:00:00"),
        );
        assert_eq!(n, Ok(0));
        assert!(!store.failed());
    }

    #[test]
    fn a_receiver_failing_twice_gets_the_third_try_once_with_the_same_id() {
        let store = MemoryStorage::new();
        skipped(&store, "sv_1", t("10:00:00")).unwrap();
        let mut seen = Vec::new();
        let mut receiver = |r: &WebhookRequest| {
            seen.push(
                r.headers
                    .iter()
                    .find(|(k, _)| *k == "webhook-id")
                    .unwrap()
                    .1
                    .clone(),
            );
            match seen.len() {
                1 | 2 => AttemptResult::Answered(500),
                _ => AttemptResult::Answered(200),
            }
        };
        let mut now = t("10:00:00");
        for _ in 0..40 {
            tick(&store, now, &mut receiver).unwrap();
            now += Duration::minutes(1);
        }
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert!(seen.iter().all(|id| *id == seen[0]));
        let log = deliveries(&store, None, 10).unwrap();
        assert_eq!(
            (log.len(), log[0].delivery.status, log[0].delivery.attempts),
            (1, DeliveryStatus::Delivered, 3)
        );
        assert!(deliveries(&store, Some(DeliveryStatus::Failed), 10)
            .unwrap()
            .is_empty());
        assert_eq!(advance(&store, now).unwrap(), 0);
    }

    #[test]
    fn announced_twice_is_sent_once_and_racing_ticks_send_once() {
        let store = MemoryStorage::new();
        skipped(&store, "sv_1", t("10:00:00")).unwrap();
        skipped(&store, "sv_1", t("10:00:01")).unwrap();
        let now = t("10:01:00");
        // Two ticks read the same due list, then each tries.
        let (a, b) = (due(&store, now).unwrap(), due(&store, now).unwrap());
        let mut sent = 0;
        for job in a.iter().chain(b.iter()) {
            if let Begin::Send(_) = begin(&store, job, &hooks(), &LINKS, now).unwrap() {
                sent += 1;
                finish(&store, job, &AttemptResult::Answered(204), now).unwrap();
            }
        }
        assert_eq!(sent, 1);
        assert_eq!(advance(&store, now).unwrap(), 0);
        assert_eq!(
            deliveries(&store, None, 10).unwrap().len(),
            1,
            "the duplicate is not in the log"
        );
    }

    #[test]
    fn a_store_failure_at_any_step_loses_nothing_and_sends_once_after_a_2xx() {
        for mode in [KvMode::Exact, KvMode::SpinSqlite, KvMode::SpinRedis] {
            let steps = Faulty::sweep(mode, |store, step| {
                let now = t("10:00:00");
                store.fail_op(step);
                // The announcing flow retries until its announce lands.
                if skipped(store, "sv_1", now).is_err() {
                    store.disarm();
                    skipped(store, "sv_1", now).unwrap();
                }
                let (mut sends, mut unrecorded) = (0, 0);
                let mut later = now;
                for _ in 0..20 {
                    let jobs = due(store, later).unwrap_or_default();
                    for job in jobs {
                        let Ok(Begin::Send(_)) = begin(store, &job, &hooks(), &LINKS, later) else {
                            continue;
                        };
                        sends += 1;
                        if finish(store, &job, &AttemptResult::Answered(200), later).is_err() {
                            // The 2xx came but could not be written down: the
                            // one case a receiver sees the same id again.
                            unrecorded += 1;
                        }
                    }
                    let _ = advance(store, later);
                    store.disarm();
                    later += Duration::minutes(3);
                }
                assert_eq!(sends, 1 + unrecorded, "{mode:?} step {step}");
                assert_eq!(advance(store, later).unwrap(), 0, "{mode:?} step {step}");
            });
            assert!(steps > 5);
        }
    }

    #[test]
    fn an_entry_whose_writer_died_is_passed_over_and_old_ones_are_pruned() {
        let store = MemoryStorage::new();
        store.increment(keys::WEBHOOK_HEAD, 1).unwrap(); // a number, never written
        skipped(&store, "sv_2", t("10:00:00")).unwrap();
        let mut ok = |_: &WebhookRequest| AttemptResult::Answered(200);
        assert_eq!(
            tick(&store, t("10:00:00"), &mut ok).unwrap(),
            2,
            "waits for the missing one"
        );
        assert_eq!(tick(&store, t("10:06:00"), &mut ok).unwrap(), 0);
        assert_eq!(deliveries(&store, None, 10).unwrap().len(), 1);
        tick(&store, t("10:06:00") + RETENTION, &mut ok).unwrap();
        assert!(deliveries(&store, None, 10).unwrap().is_empty());
        assert_eq!(store.get(&keys::webhook_delivery(2)).unwrap(), None);
    }

    #[test]
    fn the_log_filters_by_status_newest_first() {
        let store = MemoryStorage::new();
        for s in ["sv_1", "sv_2", "sv_3"] {
            skipped(&store, s, t("10:00:00")).unwrap();
        }
        let mut answers = [
            AttemptResult::Answered(200),
            AttemptResult::Failed("timed out".into()),
            AttemptResult::Answered(410),
        ]
        .into_iter();
        let mut receiver = |_: &WebhookRequest| answers.next().unwrap();
        tick(&store, t("10:00:00"), &mut receiver).unwrap();
        let pending = deliveries(&store, Some(DeliveryStatus::Pending), 10).unwrap();
        assert_eq!(
            pending.len(),
            1,
            "the endpoint failed: the rest waits for the next tick"
        );
        tick(&store, t("10:00:30"), &mut receiver).unwrap();
        let failed = deliveries(&store, Some(DeliveryStatus::Failed), 10).unwrap();
        assert_eq!(failed.iter().map(|d| d.n).collect::<Vec<_>>(), [3, 2]);
        assert_eq!(failed[1].delivery.last_error.as_deref(), Some("timed out"));
        assert_eq!(failed[0].delivery.last_status, Some(410));
        assert_eq!(failed[1].delivery.next_attempt_at, Some(t("10:01:00")));
        assert_eq!(failed[0].delivery.next_attempt_at, Some(t("10:01:30")));
        assert_eq!(
            deliveries(&store, Some(DeliveryStatus::Delivered), 10)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn a_task_is_announced_created_breached_and_closed_once_each_and_slack_only_when_it_matters() {
        use crate::flows::escalation::{receive, record_outcome};
        use crate::flows::escalator_tick;
        use crate::flows::testing::{at, request};
        use crate::model::{Outcome, TaskReason};
        use crate::policy::SurveyPolicy;
        use crate::task::{EscalationPolicy, OutcomeInput, Role};
        let hooks = Webhooks::parse(&format!(
            r#"[{{"url":"{URL}","events":["task.created","task.breached","task.closed"],"secret":"{SECRET}"}},
                {{"url":"https://hooks.slack.com/services/T/B/X","kind":"slack","events":["task.created"]}}]"#
        ))
        .unwrap();
        let (policy, survey_policy) = (EscalationPolicy::default(), SurveyPolicy::default());
        let store = MemoryStorage::new();
        let now = at("2026-12-04T10:00:00+01:00");
        let low = receive(
            &store,
            &request("sv_1", TaskReason::LowScore),
            (&policy, &hooks),
            now,
        )
        .unwrap()
        .unwrap();
        // Delivered again (a retry after a lost reply): announced again, sent once.
        receive(
            &store,
            &request("sv_1", TaskReason::LowScore),
            (&policy, &hooks),
            now,
        )
        .unwrap();
        receive(
            &store,
            &request("sv_2", TaskReason::FirstPromoter),
            (&policy, &hooks),
            now,
        )
        .unwrap();
        // Past its deadline the tick breaches it.
        let later = low.due_by + Duration::minutes(1);
        escalator_tick::run(&store, (&policy, &survey_policy, &hooks), "Shop", later).unwrap();
        let input = OutcomeInput {
            outcome: Outcome::Resolved,
            resolution: Some("replaced".into()),
            customer_satisfied: Some(true),
            note: None,
            root_cause: Some("delivery".into()),
        };
        let owed = (&policy, &survey_policy, &hooks);
        record_outcome(&store, &low.task_id, &Role::Supervisor, &input, owed, later).unwrap();
        let mut sent = Vec::new();
        for job in due(&store, later).unwrap() {
            if let Begin::Send(r) = begin(&store, &job, &hooks, &LINKS, later).unwrap() {
                sent.push((r.url.clone(), job.delivery.event));
                finish(&store, &job, &AttemptResult::Answered(200), later).unwrap();
            }
        }
        let slack = "https://hooks.slack.com/services/T/B/X".to_string();
        assert_eq!(
            sent,
            [
                (URL.to_string(), WebhookEvent::TaskCreated),
                (slack, WebhookEvent::TaskCreated),
                (URL.to_string(), WebhookEvent::TaskBreached),
                (URL.to_string(), WebhookEvent::TaskClosed),
            ],
            "no thank-you call to a customer waiting for a repair, so none announced"
        );
    }
}
