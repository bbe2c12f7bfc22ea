//! The issuer's tick (`POST /issuer/tick`, from a scheduler): send what is due
//! now. It reads only the hour buckets since the last tick and the surveys in
//! them, never the whole store. The component drives it, one survey at a time
//! so that a message sent counts toward the contact limits before the next
//! survey of the same customer is judged:
//! [`due_surveys`], then for each [`prepare`] → (the component sends the
//! [`Job`]) → [`record_sent`], then [`advance_cursor`].

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::flows::contact::record_contact;
use crate::flows::report::count_issued;
use crate::flows::survey::index_due;
use crate::keys;
use crate::model::{
    Channel, Contact, EventLogEntry, History, SkipReason, Survey, SurveyEffect, SurveyState,
};
use crate::policy::SurveyPolicy;
use crate::storage::{Storage, StorageExt, Tentative, Update};
use crate::survey::{decide_reminder, decide_send, CustomerNow, SendDecision};
use crate::webhooks::{WebhookEvent, Webhooks};
use crate::ApiError;

/// How far back a tick looks when it has never run (a month of hour buckets).
const FIRST_TICK_LOOKBACK_HOURS: i64 = 24 * 31;

/// After a failed hand-off to the sender, when to try again.
const RETRY_AFTER_MINUTES: i64 = 10;

/// How long a claim for sending holds: a survey still `sending` after this
/// was claimed by a tick that died before it recorded the result.
const CLAIM_LEASE_MINUTES: i64 = 10;

/// Whether a tick may claim `survey` for sending at `now`: planned and due,
/// or left `sending` by a tick that died (its claim past the lease).
fn claimable(survey: &Survey, now: DateTime<Utc>) -> bool {
    match survey.state {
        SurveyState::Planned => survey.next_attempt_at <= now,
        SurveyState::Sending => survey
            .claimed_at
            .is_none_or(|at| at + Duration::minutes(CLAIM_LEASE_MINUTES) <= now),
        _ => false,
    }
}

/// What one tick did.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct TickReport {
    pub examined: usize,
    pub sent: usize,
    pub reminders: usize,
    pub deferred: usize,
    pub dropped: usize,
    pub failed: usize,
    pub messages: usize,
    /// Surveys this tick could not handle (a store failure, a bad record):
    /// logged, looked at again by a later tick; the others went on.
    pub skipped: usize,
    /// Due surveys this tick left for the next: it ran out of its time
    /// ([`TICK_BUDGET`]).
    pub behind: usize,
    /// A skipped survey could not even be put back in the due index: the
    /// cursor stays where it is, so the next tick reads its hour again.
    #[serde(skip)]
    pub hold_cursor: bool,
}

/// How long one tick sends: what is still due then waits for the next tick
/// (a minute later under `./run up`), so a backlog (a sender down for a day,
/// a first tick) never holds one request past a gateway's or a host's
/// timeout, and each tick answers with what it did.
pub const TICK_BUDGET: std::time::Duration = std::time::Duration::from_secs(20);

/// The tick stops here: `left` due surveys wait for the next tick, which
/// reads the same hours again (the cursor stays where it is).
pub fn out_of_time(report: &mut TickReport, left: usize) {
    report.behind = left;
    report.hold_cursor = true;
}

/// How soon a survey this tick had to skip is looked at again.
const SKIPPED_RETRY_MINUTES: i64 = 10;

/// One survey could not be handled (`error`): log it without personal data,
/// count it, and put it back in the due index for a later tick. One bad
/// record never stops a tick.
pub fn skip<S: Storage + ?Sized>(
    store: &S,
    report: &mut TickReport,
    survey_id: &str,
    error: &ApiError,
    now: DateTime<Utc>,
) {
    report.skipped += 1;
    eprintln!(
        "issuer tick: survey {survey_id} skipped ({}): {}",
        error.code, error.message
    );
    let again = now + Duration::minutes(SKIPPED_RETRY_MINUTES);
    if index_due(store, survey_id, again).is_err() {
        report.hold_cursor = true;
    }
}

/// A claimed survey to hand to the sender, one message per channel.
#[derive(Debug, Clone)]
pub struct Job {
    pub survey: Survey,
    pub contact: Contact,
    pub channels: Vec<Channel>,
    /// The survey itself (with when its reminder is due), or its one reminder.
    pub kind: JobKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum JobKind {
    First { reminder_at: Option<DateTime<Utc>> },
    Reminder,
}

/// The surveys indexed as due in the hour buckets since the last tick (one
/// hour of overlap: an intake on a machine whose clock is a little behind may
/// have indexed into the hour the cursor already passed).
pub fn due_surveys<S: Storage + ?Sized>(
    store: &S,
    now: DateTime<Utc>,
) -> Result<Vec<Survey>, ApiError> {
    let start: DateTime<Utc> = store
        .get_json::<DateTime<Utc>>(keys::TICK_CURSOR)?
        .map(|c| c - Duration::hours(1))
        .unwrap_or(now - Duration::hours(FIRST_TICK_LOOKBACK_HOURS));
    let mut buckets = Vec::new();
    let mut t = start;
    while keys::hour_bucket(t) <= keys::hour_bucket(now)
        && buckets.len() < 2 * FIRST_TICK_LOOKBACK_HOURS as usize
    {
        buckets.push(keys::due_log(&keys::hour_bucket(t)));
        t += Duration::hours(1);
    }
    // The due log is at least once: a survey indexed twice is read once.
    let ids: BTreeSet<String> = store.read_logs(&buckets)?.into_iter().collect();
    let ids: Vec<String> = ids.into_iter().collect();
    Ok(store
        .get_many(&ids.iter().map(|i| keys::survey(i)).collect::<Vec<_>>())?
        .into_iter()
        .flatten()
        .filter_map(|raw| serde_json::from_slice::<Survey>(&raw).ok())
        .collect())
}

/// Judge one due survey at `now`: settle it if it was answered, drop or defer
/// it with the reason, or claim it (compare-and-swap, so concurrent ticks
/// never send one survey twice) and return the [`Job`] to send. `contacts`
/// caches the customers' records over one tick.
pub fn prepare<S: Storage + ?Sized>(
    store: &S,
    survey: Survey,
    (policy, hooks): (&SurveyPolicy, &Webhooks),
    now: DateTime<Utc>,
    contacts: &mut BTreeMap<String, Contact>,
    report: &mut TickReport,
) -> Result<Option<Job>, ApiError> {
    if !survey.pending.is_empty() {
        // What an interrupted tick left this survey owing.
        settle(store, &survey.survey_id, hooks, now)?;
    }
    let mut reminder_due = survey.state == SurveyState::Sent
        && !survey.reminded
        && survey.reminder_at.is_some_and(|t| t <= now);
    if reminder_due {
        // Answers are recorded in the customer's history, not the survey:
        // an answered survey is settled here, once, and not reminded.
        let history: History = store
            .get_json(&keys::history(&survey.customer_id))?
            .unwrap_or_default();
        if survey.clone().settle_answer(&history) {
            store.update_if::<Survey, _>(&keys::survey(&survey.survey_id), |s| {
                s.settle_answer(&history)
            })?;
            reminder_due = false;
        }
    }
    if !reminder_due && !claimable(&survey, now) {
        return Ok(None);
    }
    report.examined += 1;
    if !contacts.contains_key(&survey.customer_id) {
        let c = store
            .get_json::<Contact>(&keys::contact(&survey.customer_id))?
            .unwrap_or_default();
        contacts.insert(survey.customer_id.clone(), c);
    }
    let contact = contacts[&survey.customer_id].clone();
    let customer = CustomerNow {
        contact,
        ..customer_now_without_contact(store, &survey.customer_id)?
    };
    if reminder_due {
        return prepare_reminder(store, survey, customer, policy, now, report);
    }
    let id = survey.survey_id.clone();
    // A lapsed claim is judged as what it was before: planned.
    let judged = Survey {
        state: SurveyState::Planned,
        ..survey.clone()
    };
    match decide_send(&judged, &customer, policy, now) {
        SendDecision::Nothing => Ok(None),
        SendDecision::Drop(reason) => {
            let state = if reason == SkipReason::Expired {
                SurveyState::Expired
            } else {
                SurveyState::Cancelled
            };
            let word = if state == SurveyState::Expired {
                "expired"
            } else {
                "cancelled"
            };
            let dropped = change_claimable(store, &id, now, |s| {
                s.state = state;
                s.note(now, word, Some(reason), None);
                s.pending.push(SurveyEffect::Announce {
                    event: WebhookEvent::SurveySkipped,
                });
            })?;
            if dropped {
                settle(store, &id, hooks, now)?;
            }
            report.dropped += 1;
            Ok(None)
        }
        SendDecision::Defer { until, reason } => {
            let deferred = change_claimable(store, &id, now, |s| {
                s.next_attempt_at = until;
                let detail = format!("until {}", until.to_rfc3339());
                s.note(now, "deferred", Some(reason), Some(detail));
            })?;
            if deferred {
                index_due(store, &id, until)?;
            }
            report.deferred += 1;
            Ok(None)
        }
        SendDecision::Send(channels) => {
            // The claim: concurrent ticks never send one survey twice. Indexed
            // again at the end of its lease, where a tick finds it if this one
            // dies before it records the result.
            let zone = policy.contact.place(&customer.contact, now).tz;
            let occurred_on = survey.occurred_at.map(|t| zone.local(t).date_naive());
            let claimed = change(store, &id, |s| {
                claimable(s, now) && {
                    s.state = SurveyState::Sending;
                    s.claimed_at = Some(now);
                    s.occurred_on = s.occurred_on.or(occurred_on);
                    true
                }
            })?;
            if !claimed {
                return Ok(None);
            }
            index_due(store, &id, now + Duration::minutes(CLAIM_LEASE_MINUTES))?;
            let reminder_at = policy
                .reminder
                .as_ref()
                .map(|r| now + Duration::hours(r.after_hours.into()));
            Ok(Some(Job {
                survey,
                contact: customer.contact,
                channels,
                kind: JobKind::First { reminder_at },
            }))
        }
    }
}

/// What the send-time rules need to know about a customer.
pub fn customer_now<S: Storage + ?Sized>(
    store: &S,
    customer_id: &str,
) -> Result<CustomerNow, ApiError> {
    Ok(CustomerNow {
        contact: store
            .get_json::<Contact>(&keys::contact(customer_id))?
            .unwrap_or_default(),
        ..customer_now_without_contact(store, customer_id)?
    })
}

/// The customer's timeline and recent contacts (the tick caches contacts).
fn customer_now_without_contact<S: Storage + ?Sized>(
    store: &S,
    customer_id: &str,
) -> Result<CustomerNow, ApiError> {
    let events: Vec<EventLogEntry> = store
        .get_json(&keys::event_log(customer_id))?
        .unwrap_or_default();
    Ok(CustomerNow {
        contact: Contact::default(),
        contacts_made: store
            .get_json(&keys::contacts(customer_id))?
            .unwrap_or_default(),
        events,
    })
}

/// The one reminder: claimed by compare-and-swap (`reminded`), so concurrent
/// ticks never send two; a failed hand-off gives the claim back for a retry.
fn prepare_reminder<S: Storage + ?Sized>(
    store: &S,
    survey: Survey,
    customer: CustomerNow,
    policy: &SurveyPolicy,
    now: DateTime<Utc>,
    report: &mut TickReport,
) -> Result<Option<Job>, ApiError> {
    let id = survey.survey_id.clone();
    match decide_reminder(&survey, &customer, policy, now) {
        SendDecision::Nothing => Ok(None),
        SendDecision::Drop(reason) => {
            change_sent(store, &id, |s| {
                s.reminded = true;
                s.note(now, "no reminder", Some(reason), None);
                true
            })?;
            report.dropped += 1;
            Ok(None)
        }
        SendDecision::Defer { until, reason } => {
            let deferred = change_sent(store, &id, |s| {
                s.reminder_at = Some(until);
                let detail = format!("until {}", until.to_rfc3339());
                s.note(now, "reminder deferred", Some(reason), Some(detail));
                true
            })?;
            if deferred {
                index_due(store, &id, until)?;
            }
            report.deferred += 1;
            Ok(None)
        }
        SendDecision::Send(channels) => {
            let claimed = change_sent(store, &id, |s| {
                !s.reminded && {
                    s.reminded = true;
                    true
                }
            })?;
            Ok(claimed.then_some(Job {
                survey,
                contact: customer.contact,
                channels,
                kind: JobKind::Reminder,
            }))
        }
    }
}

/// Record how sending `job` went: the channels the sender acknowledged and,
/// if one failed, why. Acknowledged channels are kept either way, so a retry
/// sends only the rest. The messages count as issued before the survey's new
/// state is committed, and are taken back unless it lands; what else the
/// change owes (the contact, when to look again) is committed with it as
/// pending effects, so a failure anywhere is finished by a later tick.
pub fn record_sent<S: Storage + ?Sized>(
    store: &S,
    job: &Job,
    acked: &[Channel],
    failure: Option<String>,
    (now, hooks): (DateTime<Utc>, &Webhooks),
    report: &mut TickReport,
) -> Result<(), ApiError> {
    let retry_at = now + Duration::minutes(RETRY_AFTER_MINUTES);
    let day = crate::date_text::compact_day(now.date_naive());
    let mut counts = Tentative::new(store);
    let counted = acked
        .iter()
        .try_for_each(|ch| count_issued(&mut counts, store, &day, &summary_dims(&job.survey, *ch)));
    if let Err(e) = counted {
        counts.take_back();
        return Err(e.into());
    }
    let result = finish_job(store, job, acked, failure.as_deref(), now, retry_at);
    match result {
        Ok(true) => {
            match (&job.kind, &failure) {
                (JobKind::First { .. }, None) => report.sent += 1,
                (JobKind::Reminder, None) => report.reminders += 1,
                (_, Some(_)) => report.failed += 1,
            }
            report.messages += acked.len();
            // Committed and counted: what it owes can be finished later too.
            settle(store, &job.survey.survey_id, hooks, now)
        }
        // Someone else moved the survey on (a tick that took over a lapsed claim).
        Ok(false) => {
            counts.take_back();
            Ok(())
        }
        Err(e) => {
            counts.take_back();
            Err(e)
        }
    }
}

/// The job's new state, committed with what it owes (a contact, when to look
/// again) as pending effects for [`settle`]; `false` if the survey was no
/// longer this job's to change.
fn finish_job<S: Storage + ?Sized>(
    store: &S,
    job: &Job,
    acked: &[Channel],
    failure: Option<&str>,
    now: DateTime<Utc>,
    retry_at: DateTime<Utc>,
) -> Result<bool, ApiError> {
    let id = &job.survey.survey_id;
    let first_message = job.survey.sent_channels.is_empty() && !acked.is_empty();
    let mut owed = Vec::new();
    if first_message || (job.kind == JobKind::Reminder && failure.is_none()) {
        owed.push(SurveyEffect::Contact { at: now });
    }
    let changed = match (&job.kind, failure) {
        (JobKind::First { reminder_at }, None) => {
            owed.extend(reminder_at.map(|at| SurveyEffect::IndexDue { at }));
            change_if(store, id, SurveyState::Sending, |s| {
                s.state = SurveyState::Sent;
                s.claimed_at = None;
                s.sent_channels.extend(acked.iter().copied());
                s.reminder_at = *reminder_at;
                let names: Vec<&str> = s.sent_channels.iter().map(|c| c.as_str()).collect();
                s.note(now, "sent", None, Some(format!("via {}", names.join(", "))));
                s.pending = owed.clone();
            })?
        }
        (JobKind::First { .. }, Some(problem)) => {
            owed.push(SurveyEffect::IndexDue { at: retry_at });
            change_if(store, id, SurveyState::Sending, |s| {
                s.state = SurveyState::Planned;
                s.claimed_at = None;
                s.next_attempt_at = retry_at;
                s.sent_channels.extend(acked.iter().copied());
                let why = Some(SkipReason::SendFailed);
                s.note(
                    now,
                    "send failed, will retry",
                    why,
                    Some(problem.to_string()),
                );
                s.pending = owed.clone();
            })?
        }
        (JobKind::Reminder, None) => change_sent(store, id, |s| {
            let names: Vec<&str> = acked.iter().map(|c| c.as_str()).collect();
            s.note(
                now,
                "reminded",
                None,
                Some(format!("via {}", names.join(", "))),
            );
            s.sent_channels.extend(acked.iter().copied());
            s.pending = owed.clone();
            true
        })?,
        (JobKind::Reminder, Some(problem)) => {
            owed.push(SurveyEffect::IndexDue { at: retry_at });
            change_sent(store, id, |s| {
                s.reminded = false;
                s.reminder_at = Some(retry_at);
                let why = Some(SkipReason::SendFailed);
                s.note(
                    now,
                    "reminder failed, will retry",
                    why,
                    Some(problem.to_string()),
                );
                s.pending = owed.clone();
                true
            })?
        }
    };
    Ok(changed)
}

/// Finish what survey `id`'s last change owes (its `pending` effects, each
/// idempotent), then clear them, unless the survey changed meanwhile.
fn settle<S: Storage + ?Sized>(
    store: &S,
    id: &str,
    hooks: &Webhooks,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    let Some(survey) = store.get_json::<Survey>(&keys::survey(id))? else {
        return Ok(());
    };
    if survey.pending.is_empty() {
        return Ok(());
    }
    for effect in &survey.pending {
        match effect {
            SurveyEffect::Contact { at } => record_contact(store, &survey.customer_id, *at)?,
            SurveyEffect::IndexDue { at } => index_due(store, id, *at)?,
            SurveyEffect::Announce { event } => {
                crate::flows::webhooks::announce(
                    store,
                    hooks,
                    *event,
                    id,
                    None,
                    || crate::webhooks::skipped_data(&survey),
                    now,
                )?;
            }
        }
    }
    let done = survey.pending;
    store.update_if::<Survey, _>(&keys::survey(id), |s| {
        let same = s.pending == done;
        if same {
            s.pending.clear();
        }
        same
    })?;
    Ok(())
}

/// The tick has seen everything due up to `now`.
pub fn advance_cursor<S: Storage + ?Sized>(
    store: &S,
    now: DateTime<Utc>,
    report: &TickReport,
) -> Result<(), ApiError> {
    if report.hold_cursor {
        return Ok(());
    }
    store.update_json::<DateTime<Utc>, _>(keys::TICK_CURSOR, |cur| match cur {
        Some(c) if c >= now => Update::Keep,
        _ => Update::Write(now),
    })?;
    Ok(())
}

/// The summary dimensions a message counts in.
fn summary_dims(survey: &Survey, channel: Channel) -> Vec<(&'static str, String)> {
    vec![
        ("all", "all".to_string()),
        ("channel", channel.as_str().to_string()),
        ("kind", survey.kind.as_str().to_string()),
        (
            "agent",
            survey.agent_id.clone().unwrap_or_else(|| "none".into()),
        ),
    ]
}

/// Change survey `id` under compare-and-swap when `f` says so (`f` edits it
/// and returns `true`); whether this call changed it.
fn change<S: Storage + ?Sized>(
    store: &S,
    id: &str,
    f: impl FnMut(&mut Survey) -> bool,
) -> Result<bool, ApiError> {
    Ok(store
        .update_if::<Survey, _>(&keys::survey(id), f)?
        .is_some())
}

/// Apply `f` to a survey still in state `from`; `false` if someone else moved it first.
fn change_if<S: Storage + ?Sized>(
    store: &S,
    id: &str,
    from: SurveyState,
    mut f: impl FnMut(&mut Survey),
) -> Result<bool, ApiError> {
    change(store, id, |s| {
        s.state == from && {
            f(s);
            true
        }
    })
}

/// Apply `f` to a survey a tick may claim at `now` (see [`claimable`]), as
/// planned again; `false` if someone else moved it first.
fn change_claimable<S: Storage + ?Sized>(
    store: &S,
    id: &str,
    now: DateTime<Utc>,
    mut f: impl FnMut(&mut Survey),
) -> Result<bool, ApiError> {
    change(store, id, |s| {
        claimable(s, now) && {
            s.state = SurveyState::Planned;
            s.claimed_at = None;
            f(s);
            true
        }
    })
}

/// Apply `f` to a sent survey when `f` says so.
fn change_sent<S: Storage + ?Sized>(
    store: &S,
    id: &str,
    f: impl Fn(&mut Survey) -> bool,
) -> Result<bool, ApiError> {
    change(store, id, |s| s.state == SurveyState::Sent && f(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;
    use crate::flows::intake::{begin, finish};
    use crate::storage::{Faulty, KvMode, MemoryStorage};

    /// A store holding one planned survey (a high-value delivery on
    /// 2026-12-01 in Berlin, e-mail only); when it is due.
    fn planned(s: &MemoryStorage) -> DateTime<Utc> {
        delivered(
            s,
            "ev-1",
            "c1",
            "anna@example.de",
            "Europe/Berlin",
            "2026-12-01T10:00:00+01:00",
        )
    }

    /// Intake of a high-value delivery to `customer`: the survey it plans,
    /// stored; when it is due.
    fn delivered(
        s: &MemoryStorage,
        event_id: &str,
        customer: &str,
        email: &str,
        zone: &str,
        at: &str,
    ) -> DateTime<Utc> {
        let e: Event = serde_json::from_value(serde_json::json!({
            "event_id": event_id, "type": "order.delivered",
            "occurred_at": at, "order_id": format!("o-{event_id}"),
            "category": "high_value",
            "customer": {"id": customer, "email": email, "time_zone": zone}
        }))
        .unwrap();
        let policy = SurveyPolicy::default();
        let plan = policy.plan(&e);
        let cx = crate::flows::intake::IntakeContext {
            policy: &policy,
            webhooks: &crate::webhooks::NOBODY,
            merchant: "Shop",
            now: e.occurred_at,
        };
        begin(s, &e, &cx).unwrap();
        finish(s, &e, &plan, e.occurred_at).unwrap();
        plan[0].due_at
    }

    /// One tick at `now` whose sender acknowledges everything; the jobs it sent.
    fn tick<S: Storage + ?Sized>(store: &S, now: DateTime<Utc>) -> Result<Vec<Job>, ApiError> {
        let policy = SurveyPolicy::default();
        let (mut report, mut contacts, mut sent) = (TickReport::default(), BTreeMap::new(), vec![]);
        for survey in due_surveys(store, now)? {
            if let Some(job) = prepare(
                store,
                survey,
                (&policy, &crate::webhooks::NOBODY),
                now,
                &mut contacts,
                &mut report,
            )? {
                record_sent(
                    store,
                    &job,
                    &job.channels,
                    None,
                    (now, &crate::webhooks::NOBODY),
                    &mut report,
                )?;
                sent.push(job);
            }
        }
        advance_cursor(store, now, &report)?;
        Ok(sent)
    }

    fn state(s: &MemoryStorage) -> (SurveyState, i64, usize) {
        let survey: Survey = s.get_json(&keys::survey(&surveys(s)[0])).unwrap().unwrap();
        let day = crate::date_text::compact_day(survey.due_at.date_naive());
        let issued = s
            .counter(&keys::summary_counter(&day, "all", "all", "issued"))
            .unwrap();
        let contacts: Vec<DateTime<Utc>> = s
            .get_json(&keys::contacts("c1"))
            .unwrap()
            .unwrap_or_default();
        (survey.state, issued, contacts.len())
    }

    fn surveys(s: &MemoryStorage) -> Vec<String> {
        s.get_json(&keys::customer_surveys("c1")).unwrap().unwrap()
    }

    /// A sent survey keeps its event's date in the customer's zone (what
    /// the survey page says it is about): a delivery late on 1 December in
    /// Shanghai's evening UTC is 2 December there.
    #[test]
    fn a_sent_survey_knows_its_events_local_date() {
        let s = MemoryStorage::new();
        let occurred: DateTime<Utc> = "2026-12-01T18:30:00Z".parse().unwrap();
        delivered(
            &s,
            "ev-sh",
            "c1",
            "li@example.cn",
            "Asia/Shanghai",
            "2026-12-01T18:30:00Z",
        );
        let before: Survey = s.get_json(&keys::survey(&surveys(&s)[0])).unwrap().unwrap();
        assert_eq!(before.occurred_on, None, "not known before it is sent");
        // Sent at 10:00 in Shanghai three days later (inside calling hours).
        let sent = tick(&s, "2026-12-05T02:00:00Z".parse().unwrap()).unwrap();
        assert_eq!(sent.len(), 1);
        let after: Survey = s.get_json(&keys::survey(&surveys(&s)[0])).unwrap().unwrap();
        assert_eq!(after.occurred_on, "2026-12-02".parse().ok());
        assert_eq!(after.occurred_at, Some(occurred));
    }

    /// A tick that runs out of time leaves the rest to the next one, which
    /// reads the same hours again: every survey sent, none twice.
    #[test]
    fn a_tick_out_of_time_leaves_the_rest_to_the_next() {
        let s = MemoryStorage::new();
        let policy = SurveyPolicy::default();
        let mut due_at = planned(&s);
        for id in ["c2", "c3"] {
            let email = format!("{id}@example.de");
            let at = "2026-12-01T10:00:00+01:00";
            let due = delivered(&s, &format!("ev-{id}"), id, &email, "Europe/Berlin", at);
            due_at = due_at.max(due);
        }
        // The first tick has time for one survey only.
        let (mut report, mut contacts) = (TickReport::default(), BTreeMap::new());
        let due = due_surveys(&s, due_at).unwrap();
        assert_eq!(due.len(), 3);
        let mut sent = Vec::new();
        for (i, survey) in due.into_iter().enumerate() {
            if i == 1 {
                out_of_time(&mut report, 3 - i);
                break;
            }
            let hooks = &crate::webhooks::NOBODY;
            let job = prepare(
                &s,
                survey,
                (&policy, hooks),
                due_at,
                &mut contacts,
                &mut report,
            )
            .unwrap()
            .unwrap();
            record_sent(&s, &job, &job.channels, None, (due_at, hooks), &mut report).unwrap();
            sent.push(job.survey.survey_id);
        }
        advance_cursor(&s, due_at, &report).unwrap();
        assert_eq!((report.sent, report.behind), (1, 2));
        assert_eq!(
            s.get_json::<DateTime<Utc>>(keys::TICK_CURSOR).unwrap(),
            None
        );
        // The next, a minute later, sends the other two and moves the cursor.
        let later = due_at + Duration::minutes(1);
        sent.extend(
            tick(&s, later)
                .unwrap()
                .into_iter()
                .map(|j| j.survey.survey_id),
        );
        let distinct: BTreeSet<&String> = sent.iter().collect();
        assert_eq!((sent.len(), distinct.len()), (3, 3), "{sent:?}");
        assert_eq!(
            s.get_json::<DateTime<Utc>>(keys::TICK_CURSOR).unwrap(),
            Some(later)
        );
    }

    #[test]
    fn racing_ticks_send_a_survey_once() {
        for mode in KvMode::ALL {
            let s = MemoryStorage::in_memory_like(mode);
            let due = planned(&s);
            let barrier = std::sync::Barrier::new(3);
            let sent: usize = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..3)
                    .map(|_| {
                        let (s, barrier) = (&s, &barrier);
                        scope.spawn(move || {
                            barrier.wait();
                            tick(s, due).unwrap().len()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).sum()
            });
            assert_eq!(sent, 1, "{mode:?}");
            assert_eq!(state(&s), (SurveyState::Sent, 1, 1), "{mode:?}");
        }
    }

    /// A store failure at any step of a tick; a later tick (past the claim's
    /// lease) finishes the job: sent, counted and contacted once.
    #[test]
    fn a_store_failure_at_any_step_is_finished_by_a_later_tick() {
        for mode in KvMode::ALL {
            let steps = Faulty::sweep(mode, |s, step| {
                let due = planned(s.inner());
                s.fail_op(step);
                let first = tick(s, due);
                s.disarm();
                let later = tick(s, due + Duration::minutes(CLAIM_LEASE_MINUTES + 1)).unwrap();
                // A message handed over before the failure may go again (at
                // least once); one that was recorded never does.
                if first.as_ref().is_ok_and(|sent| !sent.is_empty()) {
                    assert!(later.is_empty(), "{mode:?} step {step}: sent twice");
                }
                assert_eq!(
                    state(s.inner()),
                    (SurveyState::Sent, 1, 1),
                    "{mode:?} step {step}"
                );
            });
            assert!(steps >= 8, "{mode:?}: only {steps} operations?");
        }
    }

    /// A tick that died between its claim and the result: the next tick
    /// within the lease leaves the survey alone, the first after it sends it.
    #[test]
    fn a_claim_left_by_a_dead_tick_lapses_and_is_sent() {
        let s = MemoryStorage::new();
        let due = planned(&s);
        let policy = SurveyPolicy::default();
        let (mut report, mut contacts) = (TickReport::default(), BTreeMap::new());
        let survey = due_surveys(&s, due).unwrap().remove(0);
        let job = prepare(
            &s,
            survey,
            (&policy, &crate::webhooks::NOBODY),
            due,
            &mut contacts,
            &mut report,
        )
        .unwrap();
        assert!(job.is_some(), "claimed, then the tick dies");
        assert_eq!(state(&s).0, SurveyState::Sending);
        assert!(
            tick(&s, due + Duration::minutes(5)).unwrap().is_empty(),
            "within the lease"
        );
        let later = tick(&s, due + Duration::minutes(CLAIM_LEASE_MINUTES + 1)).unwrap();
        assert_eq!(later.len(), 1);
        assert_eq!(state(&s), (SurveyState::Sent, 1, 1));
    }

    #[test]
    fn a_bad_record_is_skipped_and_looked_at_again() {
        let s = MemoryStorage::new();
        let due = planned(&s);
        // The customer's contact record is corrupt: preparing that survey fails.
        crate::storage::HostKv::set(s.host(), &keys::contact("c1"), b"{not json").unwrap();
        let policy = SurveyPolicy::default();
        let (mut report, mut contacts) = (TickReport::default(), BTreeMap::new());
        let now = due + Duration::minutes(5);
        for survey in due_surveys(&s, now).unwrap() {
            let id = survey.survey_id.clone();
            if let Err(e) = prepare(
                &s,
                survey,
                (&policy, &crate::webhooks::NOBODY),
                now,
                &mut contacts,
                &mut report,
            ) {
                skip(&s, &mut report, &id, &e, now);
            }
        }
        assert_eq!(report.skipped, 1);
        advance_cursor(&s, now, &report).unwrap();
        // Re-indexed: once the record is good again, a later tick sends it.
        s.put_json(
            &keys::contact("c1"),
            &Contact {
                customer_id: "c1".into(),
                email: Some("anna@example.de".into()),
                time_zone: Some("Europe/Berlin".into()),
                ..Default::default()
            },
        )
        .unwrap();
        let sent = tick(&s, now + Duration::minutes(SKIPPED_RETRY_MINUTES)).unwrap();
        assert_eq!(sent.len(), 1);
    }
}
