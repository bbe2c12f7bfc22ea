//! Callback tasks: created from a low, dropping or notable answer (or an event),
//! owned by someone, due within calling hours, and closed through outcomes.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::answer::{Answer, HistoryEntry};
use crate::calling_hours::{customer_zone, CallingHours};
use crate::error::ApiError;
use crate::signing::derive_id;
use crate::survey::Contact;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskReason {
    LowScore,
    Dropping,
    MissedCall,
    Complaint,
    FirstPromoter,
    Recovered,
    Birthday,
    LateDelivery,
    VipRepeat,
}

impl TaskReason {
    /// Calling hours allowed before the task is breached.
    pub fn deadline_hours(self) -> i64 {
        match self {
            TaskReason::MissedCall => 1,
            TaskReason::LowScore
            | TaskReason::Dropping
            | TaskReason::Complaint
            | TaskReason::VipRepeat => 48,
            TaskReason::FirstPromoter
            | TaskReason::Recovered
            | TaskReason::Birthday
            | TaskReason::LateDelivery => 72,
        }
    }

    /// 1 is the most urgent.
    pub fn priority(self) -> u8 {
        match self {
            TaskReason::MissedCall | TaskReason::Complaint => 1,
            TaskReason::LowScore | TaskReason::VipRepeat => 2,
            TaskReason::Dropping => 3,
            TaskReason::LateDelivery => 4,
            TaskReason::FirstPromoter | TaskReason::Recovered | TaskReason::Birthday => 5,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Open,
    Claimed,
    Reached,
    Resolved,
    Refused,
    Expired,
}

impl TaskState {
    pub fn is_closed(self) -> bool {
        matches!(
            self,
            TaskState::Resolved | TaskState::Refused | TaskState::Expired
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Reached,
    Unreachable,
    Resolved,
    Refused,
}

/// Who owns new tasks: the staff member who served (`responsible`) or a team.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationPolicy {
    pub owner_mode: OwnerMode,
    pub team: String,
    pub supervisor: String,
    /// After this many days past the deadline a task is too late to call.
    pub validity_days: i64,
    pub max_unreachable: u32,
    pub retry_spacing_hours: i64,
    pub calling_hours: CallingHours,
    pub default_time_zone: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnerMode {
    Responsible,
    Team,
}

impl Default for EscalationPolicy {
    fn default() -> EscalationPolicy {
        EscalationPolicy {
            owner_mode: OwnerMode::Responsible,
            team: "quality-team".into(),
            supervisor: "supervisor".into(),
            validity_days: 14,
            max_unreachable: 3,
            retry_spacing_hours: 2,
            calling_hours: CallingHours::default(),
            default_time_zone: "UTC".into(),
        }
    }
}

/// A request to open a callback, from the score receiver or an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EscalationRequest {
    /// What the task is about: a survey id (answers) or an event id.
    pub source_id: String,
    pub reasons: Vec<TaskReason>,
    pub contact: Contact,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<Answer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_order_id: Option<String>,
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
    pub occurred_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub at: DateTime<Utc>,
    pub outcome: Outcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Everything the caller reads before dialling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskContext {
    pub customer: Contact,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<Answer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// Earlier answers, oldest first, to show the trend.
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallbackTask {
    pub task_id: String,
    pub state: TaskState,
    pub reason: TaskReason,
    pub reasons: Vec<TaskReason>,
    pub priority: u8,
    pub owner: String,
    pub customer_id: String,
    pub created_at: DateTime<Utc>,
    pub due_by: DateTime<Utc>,
    /// Past this, calling makes no sense any more: the task expires.
    pub expires_at: DateTime<Utc>,
    #[serde(default)]
    pub breached: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalated_to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_order_id: Option<String>,
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    /// Earliest next call after an unreachable attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_contact_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_satisfied: Option<bool>,
    pub context: TaskContext,
}

/// The task id for a request: one task per answer or event, however often it is delivered.
pub fn task_id_for(source_id: &str) -> String {
    derive_id("task", &[source_id])
}

/// Build the task a request asks for (`None` when it names no reason).
pub fn plan_task(
    req: &EscalationRequest,
    policy: &EscalationPolicy,
    now: DateTime<Utc>,
) -> Option<CallbackTask> {
    let reason = *req.reasons.iter().min_by_key(|r| (r.priority(), **r))?;
    let (tz, _) = customer_zone(req.contact.time_zone.as_deref(), &policy.default_time_zone);
    let arrival = req.occurred_at.max(now - Duration::hours(1)).min(now);
    let due_by = req
        .reasons
        .iter()
        .map(|r| {
            policy
                .calling_hours
                .deadline(arrival, r.deadline_hours(), tz)
        })
        .min()
        .map(floor_to_minute)?;
    let vip = req
        .contact
        .tier
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("vip"));
    let priority = reason.priority().saturating_sub(u8::from(vip)).max(1);
    let owner = match (policy.owner_mode, &req.agent_id) {
        (OwnerMode::Responsible, Some(agent)) => agent.clone(),
        _ => policy.team.clone(),
    };
    Some(CallbackTask {
        task_id: task_id_for(&req.source_id),
        state: TaskState::Open,
        reason,
        reasons: req.reasons.clone(),
        priority,
        owner,
        customer_id: req.contact.customer_id.clone(),
        created_at: now,
        due_by,
        expires_at: due_by + Duration::days(policy.validity_days),
        breached: false,
        escalated_to: None,
        work_order_id: req.work_order_id.clone(),
        attempts: Vec::new(),
        next_attempt_at: None,
        first_contact_at: None,
        closed_at: None,
        resolution: None,
        customer_satisfied: None,
        context: TaskContext {
            customer: req.contact.clone(),
            answer: req.answer.clone(),
            question: req.question.clone(),
            order_id: req.order_id.clone(),
            history: req.history.clone(),
        },
    })
}

/// Deadlines are whole minutes ("due by 10:00"), never later than the rule says.
fn floor_to_minute(t: DateTime<Utc>) -> DateTime<Utc> {
    use chrono::{DurationRound, TimeDelta};
    t.duration_trunc(TimeDelta::minutes(1)).unwrap_or(t)
}

/// An outcome as posted to `POST /callbacks/{id}/outcome`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutcomeInput {
    pub outcome: Outcome,
    #[serde(default)]
    pub resolution: Option<String>,
    #[serde(default)]
    pub customer_satisfied: Option<bool>,
    #[serde(default)]
    pub note: Option<String>,
}

/// Apply an outcome; `409` naming the allowed outcomes when it does not fit.
pub fn apply_outcome(
    task: &CallbackTask,
    input: &OutcomeInput,
    policy: &EscalationPolicy,
    now: DateTime<Utc>,
) -> Result<CallbackTask, ApiError> {
    if task.state.is_closed() {
        return Err(ApiError::conflict(format!(
            "task {} is already {:?}; no outcome can be recorded (allowed next states: none)",
            task.task_id, task.state
        )));
    }
    if input
        .note
        .as_ref()
        .is_some_and(|n| n.chars().count() > 2000)
        || input
            .resolution
            .as_ref()
            .is_some_and(|n| n.chars().count() > 2000)
    {
        return Err(ApiError::unprocessable(
            "note and resolution are limited to 2000 characters",
        ));
    }
    let mut t = task.clone();
    t.attempts.push(Attempt {
        at: now,
        outcome: input.outcome,
        note: input.note.clone(),
    });
    match input.outcome {
        Outcome::Reached => {
            t.state = TaskState::Reached;
            t.first_contact_at.get_or_insert(now);
            t.next_attempt_at = None;
        }
        Outcome::Unreachable => {
            let misses = t
                .attempts
                .iter()
                .filter(|a| a.outcome == Outcome::Unreachable)
                .count() as u32;
            if misses >= policy.max_unreachable {
                t.state = TaskState::Expired;
                t.closed_at = Some(now);
                t.resolution = Some(format!("unreachable {misses} times"));
            } else {
                t.next_attempt_at = Some(now + Duration::hours(policy.retry_spacing_hours));
            }
        }
        Outcome::Resolved => {
            if input
                .resolution
                .as_deref()
                .is_none_or(|r| r.trim().is_empty())
            {
                return Err(ApiError::unprocessable(
                    "a resolved outcome needs `resolution`: what was done",
                ));
            }
            t.state = TaskState::Resolved;
            t.first_contact_at.get_or_insert(now);
            t.closed_at = Some(now);
            t.resolution = input.resolution.clone();
            t.customer_satisfied = input.customer_satisfied;
        }
        Outcome::Refused => {
            t.state = TaskState::Refused;
            t.first_contact_at.get_or_insert(now);
            t.closed_at = Some(now);
            t.resolution = input
                .resolution
                .clone()
                .or_else(|| Some("customer refused the callback".into()));
        }
    }
    Ok(t)
}

/// Mark a task breached when its deadline passed while still open.
/// Returns the updated task when it changed.
pub fn mark_breach(
    task: &CallbackTask,
    supervisor: &str,
    now: DateTime<Utc>,
) -> Option<CallbackTask> {
    if task.state.is_closed() || task.breached || now < task.due_by {
        return None;
    }
    let mut t = task.clone();
    t.breached = true;
    t.escalated_to = Some(supervisor.to_string());
    Some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn request(reasons: Vec<TaskReason>, agent: Option<&str>) -> EscalationRequest {
        EscalationRequest {
            source_id: "sv_1".into(),
            reasons,
            contact: Contact {
                customer_id: "c1".into(),
                time_zone: Some("Europe/Berlin".into()),
                ..Default::default()
            },
            answer: None,
            question: None,
            order_id: Some("o1".into()),
            agent_id: agent.map(str::to_string),
            work_order_id: None,
            history: vec![],
            occurred_at: utc("2026-12-04T10:00:00+01:00"),
        }
    }

    #[test]
    fn low_score_task_is_owned_and_due_in_48h() {
        let now = utc("2026-12-04T10:00:00+01:00");
        let t = plan_task(
            &request(vec![TaskReason::LowScore], Some("agent-7")),
            &EscalationPolicy::default(),
            now,
        )
        .unwrap();
        assert_eq!(t.owner, "agent-7");
        assert_eq!(t.due_by, utc("2026-12-06T10:00:00+01:00"));
        assert_eq!(t.state, TaskState::Open);
        assert_eq!(t.task_id, task_id_for("sv_1"));
        let team = plan_task(
            &request(vec![TaskReason::LowScore], None),
            &EscalationPolicy::default(),
            now,
        )
        .unwrap();
        assert_eq!(team.owner, "quality-team");
        assert!(plan_task(&request(vec![], None), &EscalationPolicy::default(), now).is_none());
    }

    #[test]
    fn deadlines_are_whole_minutes() {
        let now = utc("2026-12-04T10:00:00.750+01:00");
        let t = plan_task(
            &request(vec![TaskReason::LowScore], None),
            &EscalationPolicy::default(),
            now,
        )
        .unwrap();
        assert_eq!(t.due_by, utc("2026-12-06T10:00:00+01:00"));
    }

    #[test]
    fn outcomes_follow_the_lifecycle() {
        let p = EscalationPolicy::default();
        let now = utc("2026-12-04T10:00:00+01:00");
        let t = plan_task(&request(vec![TaskReason::LowScore], None), &p, now).unwrap();
        let input = |o| OutcomeInput {
            outcome: o,
            resolution: Some("refund".into()),
            customer_satisfied: Some(true),
            note: None,
        };
        let t1 = apply_outcome(&t, &input(Outcome::Unreachable), &p, now).unwrap();
        assert_eq!(t1.state, TaskState::Open);
        assert_eq!(t1.next_attempt_at, Some(now + Duration::hours(2)));
        let t2 = apply_outcome(&t1, &input(Outcome::Reached), &p, now).unwrap();
        assert_eq!(t2.first_contact_at, Some(now));
        let t3 = apply_outcome(&t2, &input(Outcome::Resolved), &p, now).unwrap();
        assert_eq!(t3.state, TaskState::Resolved);
        let err = apply_outcome(&t3, &input(Outcome::Reached), &p, now).unwrap_err();
        assert_eq!(err.status, 409);
        let no_resolution = OutcomeInput {
            outcome: Outcome::Resolved,
            resolution: None,
            customer_satisfied: None,
            note: None,
        };
        assert_eq!(
            apply_outcome(&t, &no_resolution, &p, now)
                .unwrap_err()
                .status,
            422
        );
    }

    #[test]
    fn unreachable_three_times_expires() {
        let p = EscalationPolicy::default();
        let now = utc("2026-12-04T10:00:00+01:00");
        let mut t = plan_task(&request(vec![TaskReason::LowScore], None), &p, now).unwrap();
        let miss = OutcomeInput {
            outcome: Outcome::Unreachable,
            resolution: None,
            customer_satisfied: None,
            note: None,
        };
        for _ in 0..3 {
            t = apply_outcome(&t, &miss, &p, now).unwrap();
        }
        assert_eq!(t.state, TaskState::Expired);
    }

    #[test]
    fn breach_once() {
        let p = EscalationPolicy::default();
        let now = utc("2026-12-04T10:00:00+01:00");
        let t = plan_task(&request(vec![TaskReason::LowScore], None), &p, now).unwrap();
        assert!(mark_breach(&t, "sup", now).is_none());
        let b = mark_breach(&t, "sup", t.due_by).unwrap();
        assert!(b.breached);
        assert!(mark_breach(&b, "sup", t.due_by + Duration::hours(1)).is_none());
    }
}
