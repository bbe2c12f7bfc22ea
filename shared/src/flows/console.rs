//! What the supervisor's console reads and does, through the same flows and
//! counters as the API (`GET /reports/summary`, `GET /reports/loop`,
//! `GET /callbacks`), so the console and the API can never disagree: the
//! overview of a period, the open callbacks filtered, a reassignment, and the
//! development outbox that keeps what a first run would have sent.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::flows::escalation::{commit, list_tasks};
use crate::flows::report::{loop_report_now, summary_report};
use crate::flows::survey::index_due;
use crate::keys;
use crate::model::{
    Answer, CallbackTask, History, Outcome, Survey, SurveyState, TaskReason, TaskState,
};
use crate::policy::SurveyPolicy;
use crate::report::SummaryReport;
use crate::storage::{Storage, StorageExt};
use crate::survey::{decide_send, SendDecision};
use crate::ApiError;

/// The longest period the overview shows at once.
pub const MAX_DAYS: i64 = 92;

/// One period of the loop at a glance.
#[derive(Debug, Serialize)]
pub struct Overview {
    pub by_day: SummaryReport,
    pub by_agent: SummaryReport,
    pub by_channel: SummaryReport,
    /// `GET /reports/loop`, as it stands now.
    pub loop_report: serde_json::Value,
    pub open_now: usize,
    pub breached_now: usize,
}

pub fn overview<S: Storage + ?Sized>(
    store: &S,
    from: NaiveDate,
    to: NaiveDate,
    today: NaiveDate,
) -> Result<Overview, ApiError> {
    let open = list_tasks(store, None, Some(TaskState::Open), 1, today)?;
    Ok(Overview {
        by_day: summary_report(store, from, to, "day", MAX_DAYS)?,
        by_agent: summary_report(store, from, to, "agent", MAX_DAYS)?,
        by_channel: summary_report(store, from, to, "channel", MAX_DAYS)?,
        loop_report: loop_report_now(store)?,
        open_now: open.len(),
        breached_now: open.iter().filter(|t| t.breached).count(),
    })
}

/// Which open callbacks the console lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskFilter {
    pub owner: Option<String>,
    pub reason: Option<TaskReason>,
    pub breached_only: bool,
    /// Due before the end of this UTC day.
    pub due_today: bool,
}

impl TaskFilter {
    pub fn keeps(&self, t: &CallbackTask, now: DateTime<Utc>) -> bool {
        let end_of_day = (now.date_naive() + chrono::Duration::days(1))
            .and_hms_opt(0, 0, 0)
            .map(|d| d.and_utc());
        self.owner.as_ref().is_none_or(|o| *o == t.owner)
            && self.reason.is_none_or(|r| t.reasons.contains(&r))
            && (!self.breached_only || t.breached)
            && (!self.due_today || end_of_day.is_some_and(|e| t.due_by < e))
    }
}

/// The callbacks not closed yet that `filter` keeps, most urgent first.
pub fn open_callbacks<S: Storage + ?Sized>(
    store: &S,
    filter: &TaskFilter,
    now: DateTime<Utc>,
) -> Result<Vec<CallbackTask>, ApiError> {
    let mut tasks: Vec<CallbackTask> = list_tasks(store, None, None, 1, now.date_naive())?
        .into_iter()
        .filter(|t| !t.state.is_closed() && filter.keeps(t, now))
        .collect();
    tasks.sort_by_key(|t| (t.priority, t.due_by));
    Ok(tasks)
}

/// One callback as `GET /callbacks/:id` shows it (`queue::task_view`).
pub fn task_context<S: Storage + ?Sized>(
    store: &S,
    id: &str,
    policy: &crate::task::EscalationPolicy,
    now: DateTime<Utc>,
) -> Result<serde_json::Value, ApiError> {
    let task: CallbackTask = store
        .get_json(&keys::task(id))?
        .ok_or_else(|| ApiError::not_found(format!("no callback task {id}")))?;
    crate::flows::queue::task_view(store, &task, policy, now)
}

/// Give task `id` to `owner` (its queue changes with it, exactly once).
pub fn reassign<S: Storage + ?Sized>(
    store: &S,
    id: &str,
    owner: &str,
    owed: crate::flows::escalation::Owed,
    now: DateTime<Utc>,
) -> Result<CallbackTask, ApiError> {
    let step = |t: &CallbackTask| Ok(crate::task::reassign(t, owner, "supervisor", now)?);
    let (_, after) = commit(store, id, None, Some(Outcome::Claimed), owed, now, step)?;
    Ok(after)
}

/// The surveys due on one day, as the issuer's due index has them (one read
/// per hour bucket, never a key listing), each with its answer if any.
#[derive(Debug, Default)]
pub struct SurveyDay {
    pub surveys: Vec<(Survey, Option<Answer>)>,
    /// How many are in each state; `deferred`: planned, held back at least once.
    pub counts: BTreeMap<&'static str, usize>,
}

/// The most surveys one day's page shows (an export reads them all).
pub const SURVEYS_PER_DAY_SHOWN: usize = 1000;

pub fn surveys_of_day<S: Storage + ?Sized>(
    store: &S,
    day: NaiveDate,
    cap: usize,
) -> Result<SurveyDay, ApiError> {
    let start = day
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc())
        .unwrap_or_default();
    let buckets: Vec<String> = (0..24)
        .map(|h| keys::due_log(&keys::hour_bucket(start + chrono::Duration::hours(h))))
        .collect();
    let ids: BTreeSet<String> = store.read_logs(&buckets)?.into_iter().collect();
    let ids: Vec<String> = ids.into_iter().take(cap).collect();
    let mut surveys: Vec<Survey> = store
        .get_many(&ids.iter().map(|i| keys::survey(i)).collect::<Vec<_>>())?
        .into_iter()
        .flatten()
        .filter_map(|b| serde_json::from_slice(&b).ok())
        .collect();
    // Answers live in the customers' histories: one batch read.
    let histories: BTreeMap<String, History> =
        store.get_json_by(surveys.iter().map(|s| s.customer_id.clone()), keys::history)?;
    let mut day_view = SurveyDay::default();
    surveys.sort_by_key(|s| s.due_at);
    for mut survey in surveys {
        let answer = histories
            .get(&survey.customer_id)
            .and_then(|h| h.answer_to(&survey.survey_id).cloned());
        if let Some(h) = histories.get(&survey.customer_id) {
            survey.settle_answer(h);
        }
        let held = survey.state == SurveyState::Planned && !survey.skip_reasons().is_empty();
        let state = if held {
            "deferred"
        } else {
            state_name(survey.state)
        };
        *day_view.counts.entry(state).or_default() += 1;
        day_view.surveys.push((survey, answer));
    }
    Ok(day_view)
}

/// Which answers the console lists.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnswerFilter {
    pub low_only: bool,
    pub agent: Option<String>,
    pub channel: Option<String>,
}

/// The answers to the surveys due from `from` to `to` (the due index, day by
/// day), newest first, that `filter` keeps.
pub fn answers<S: Storage + ?Sized>(
    store: &S,
    from: NaiveDate,
    to: NaiveDate,
    filter: &AnswerFilter,
) -> Result<Vec<(Survey, Answer)>, ApiError> {
    let days = crate::report::days(from, to, MAX_DAYS).map_err(ApiError::bad_request)?;
    let mut out = Vec::new();
    for day in days {
        for (survey, answer) in surveys_of_day(store, day, SURVEYS_PER_DAY_SHOWN)?.surveys {
            let Some(a) = answer else { continue };
            let keep = (!filter.low_only || a.scale.is_low(a.score))
                && filter
                    .agent
                    .as_ref()
                    .is_none_or(|g| survey.agent_id.as_ref() == Some(g))
                && filter
                    .channel
                    .as_ref()
                    .is_none_or(|c| a.channel.as_str() == c);
            if keep {
                out.push((survey, a));
            }
        }
    }
    out.sort_by(|x, y| y.1.answered_at.cmp(&x.1.answered_at));
    Ok(out)
}

pub fn state_name(s: SurveyState) -> &'static str {
    match s {
        SurveyState::Planned => "planned",
        SurveyState::Sending => "sending",
        SurveyState::Sent => "sent",
        SurveyState::Answered => "answered",
        SurveyState::Expired => "expired",
        SurveyState::Cancelled => "cancelled",
    }
}

/// Cancel a survey that has not gone out (`false`: it had, or is gone).
pub fn cancel_survey<S: Storage + ?Sized>(
    store: &S,
    id: &str,
    now: DateTime<Utc>,
) -> Result<bool, ApiError> {
    let changed = store.update_if::<Survey, _>(&keys::survey(id), |s| {
        s.state == SurveyState::Planned && {
            s.state = SurveyState::Cancelled;
            s.note(now, "cancelled", None, Some("by the supervisor".into()));
            true
        }
    })?;
    Ok(changed.is_some())
}

/// What "send now" did: queued for the next tick, or why not (the rules
/// still hold: quiet hours, the contact limit, an open case…).
#[derive(Debug, PartialEq)]
pub enum SendNow {
    Queued,
    Refused(String),
}

/// Ask for a planned survey to go out now: judged by the send-time rules as
/// if it were due; if they allow it, the next tick sends it.
pub fn send_now<S: Storage + ?Sized>(
    store: &S,
    id: &str,
    policy: &SurveyPolicy,
    now: DateTime<Utc>,
) -> Result<SendNow, ApiError> {
    let Some(survey) = store.get_json::<Survey>(&keys::survey(id))? else {
        return Err(ApiError::not_found(format!("no survey {id}")));
    };
    if survey.state != SurveyState::Planned {
        return Ok(SendNow::Refused(format!(
            "it is {}",
            state_name(survey.state)
        )));
    }
    let customer = crate::flows::issuer_tick::customer_now(store, &survey.customer_id)?;
    let due_now = Survey {
        next_attempt_at: now,
        ..survey
    };
    match decide_send(&due_now, &customer, policy, now) {
        SendDecision::Send(_) => {
            store.update_if::<Survey, _>(&keys::survey(id), |s| {
                s.state == SurveyState::Planned && {
                    s.next_attempt_at = now;
                    s.note(
                        now,
                        "send now",
                        None,
                        Some("asked by the supervisor".into()),
                    );
                    true
                }
            })?;
            index_due(store, id, now)?;
            Ok(SendNow::Queued)
        }
        SendDecision::Defer { reason, until } => Ok(SendNow::Refused(format!(
            "{} (allowed from {})",
            serde_json::to_value(reason)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            until.to_rfc3339()
        ))),
        SendDecision::Drop(reason) => Ok(SendNow::Refused(
            serde_json::to_value(reason)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        )),
        SendDecision::Nothing => Ok(SendNow::Refused("nothing to send".into())),
    }
}

/// A message the generic sender would have delivered, kept for a first run
/// without a sender (the development outbox).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldMessage {
    pub received_at: DateTime<Utc>,
    pub message: serde_json::Value,
}

/// How many held messages the development outbox keeps (the newest).
const DEV_OUTBOX_KEPT: usize = 200;

/// Keep `message` in the development outbox.
pub fn hold_message<S: Storage + ?Sized>(
    store: &S,
    mut message: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<(), ApiError> {
    // An e-mail's HTML part (a few KB) is not kept: the outbox shows the
    // text and the link, and 200 HTML parts would pass a hosted store's
    // 1 MB value limit.
    if let Some(m) = message.as_object_mut() {
        m.remove("html");
    }
    store.update_json::<Vec<HeldMessage>, _>(keys::DEV_OUTBOX, |cur| {
        let mut held = cur.unwrap_or_default();
        let id = message.get("message_id").cloned();
        if id.is_some()
            && held
                .iter()
                .any(|h| h.message.get("message_id") == id.as_ref())
        {
            return crate::storage::Update::Keep;
        }
        held.push(HeldMessage {
            received_at: now,
            message: message.clone(),
        });
        if held.len() > DEV_OUTBOX_KEPT {
            held.remove(0);
        }
        crate::storage::Update::Write(held)
    })?;
    Ok(())
}

/// The development outbox, newest first.
pub fn held_messages<S: Storage + ?Sized>(store: &S) -> Result<Vec<HeldMessage>, ApiError> {
    let mut held: Vec<HeldMessage> = store.get_json(keys::DEV_OUTBOX)?.unwrap_or_default();
    held.reverse();
    Ok(held)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::escalation::receive;
    use crate::flows::testing::{at, request};
    use crate::storage::{KvMode, MemoryStorage};
    use crate::task::EscalationPolicy;

    #[test]
    fn reassigning_moves_the_task_between_queues_once() {
        for mode in KvMode::ALL {
            let s = MemoryStorage::in_memory_like(mode);
            let now = at("2026-12-04T10:00:00+01:00");
            let p = EscalationPolicy::default();
            let t = receive(
                &s,
                &request("sv_1", TaskReason::LowScore),
                (&p, &crate::webhooks::NOBODY),
                now,
            )
            .unwrap()
            .unwrap();
            assert_eq!(t.owner, "agent-1");
            let after = reassign(
                &s,
                &t.task_id,
                "agent-2",
                (&SurveyPolicy::default(), &crate::webhooks::NOBODY),
                now,
            )
            .unwrap();
            assert_eq!(after.owner, "agent-2");
            let queue = |o: &str| {
                s.get_json::<Vec<String>>(&keys::owner_tasks(o))
                    .unwrap()
                    .unwrap_or_default()
            };
            assert_eq!(
                (queue("agent-1").len(), queue("agent-2").len()),
                (0, 1),
                "{mode:?}"
            );
            let filter = TaskFilter {
                owner: Some("agent-2".into()),
                ..Default::default()
            };
            assert_eq!(open_callbacks(&s, &filter, now).unwrap().len(), 1);
            let filter = TaskFilter {
                reason: Some(TaskReason::Complaint),
                ..Default::default()
            };
            assert!(open_callbacks(&s, &filter, now).unwrap().is_empty());
        }
    }

    #[test]
    fn the_dev_outbox_keeps_each_message_once() {
        let s = MemoryStorage::new();
        let now = at("2026-12-04T10:00:00+01:00");
        let m = serde_json::json!({"message_id": "msg_1", "channel": "sms"});
        hold_message(&s, m.clone(), now).unwrap();
        hold_message(&s, m, now).unwrap();
        hold_message(&s, serde_json::json!({"message_id": "msg_2"}), now).unwrap();
        let held = held_messages(&s).unwrap();
        assert_eq!(held.len(), 2);
        assert_eq!(held[0].message["message_id"], "msg_2", "newest first");
    }

    #[test]
    fn a_days_pipeline_and_the_supervisors_actions_keep_to_the_rules() {
        use crate::event::Event;
        use crate::flows::intake::{begin, finish, IntakeContext};
        let s = MemoryStorage::new();
        let policy = SurveyPolicy::default();
        let take_in = |id: &str, customer: &str| {
            let e: Event = serde_json::from_value(serde_json::json!({
                "event_id": id, "type": "order.delivered", "occurred_at": "2026-12-01T10:00:00+01:00",
                "order_id": format!("o-{id}"), "category": "high_value",
                "customer": {"id": customer, "email": format!("{customer}@example.de"), "time_zone": "Europe/Berlin"}
            }))
            .unwrap();
            let cx = IntakeContext {
                policy: &policy,
                webhooks: &crate::webhooks::NOBODY,
                merchant: "Shop",
                now: e.occurred_at,
            };
            begin(&s, &e, &cx).unwrap();
            finish(&s, &e, &policy.plan(&e), e.occurred_at).unwrap();
            policy.plan(&e)[0].survey_id.clone()
        };
        let (a, b) = (take_in("e-a", "ca"), take_in("e-b", "cb"));
        let day = surveys_of_day(&s, "2026-12-04".parse().unwrap(), SURVEYS_PER_DAY_SHOWN).unwrap();
        assert_eq!(day.surveys.len(), 2);
        assert_eq!(day.counts.get("planned"), Some(&2));
        assert!(cancel_survey(&s, &a, at("2026-12-02T10:00:00+01:00")).unwrap());
        assert!(
            !cancel_survey(&s, &a, at("2026-12-02T10:00:00+01:00")).unwrap(),
            "once"
        );
        // Send now at night: refused with the reason; by day: queued for the tick.
        let night = send_now(&s, &b, &policy, at("2026-12-02T23:00:00+01:00")).unwrap();
        assert!(
            matches!(&night, SendNow::Refused(r) if r.starts_with("quiet_hours")),
            "{night:?}"
        );
        assert_eq!(
            send_now(&s, &b, &policy, at("2026-12-02T11:00:00+01:00")).unwrap(),
            SendNow::Queued
        );
        assert!(matches!(
            send_now(&s, &a, &policy, at("2026-12-02T11:00:00+01:00")).unwrap(),
            SendNow::Refused(_)
        ));
        let day = surveys_of_day(&s, "2026-12-04".parse().unwrap(), SURVEYS_PER_DAY_SHOWN).unwrap();
        assert_eq!(day.counts.get("cancelled"), Some(&1));
    }
}
