//! Callback tasks: created from a low, dropping or notable answer (or an event),
//! owned by someone, due within calling hours, and closed through outcomes.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::answer::classify;

use crate::contact::ContactRules;
use crate::model::derive_id;
use crate::model::{Answer, History};
pub use crate::model::{
    Attempt, CallbackTask, EarlierTask, MergedEscalation, Outcome, TaskContext, TaskEffect,
    TaskReason, TaskState, Trend,
};
use crate::model::{Contact, Survey};

/// Who owns new tasks: the staff member who served (`responsible`) or a team.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationPolicy {
    pub owner_mode: OwnerMode,
    /// Staff whose bad scores go to the team even in `responsible` mode (e.g. outsourced staff).
    #[serde(default)]
    pub team_agents: Vec<String>,
    pub team: String,
    pub supervisor: String,
    /// After this many days past the deadline a task is too late to call.
    pub validity_days: i64,
    pub max_unreachable: u32,
    pub retry_spacing_hours: i64,
    /// Calling hours, zones and contact limits: not part of this policy's JSON,
    /// but the one `contact_rules` every component shares (set by the loader).
    #[serde(skip)]
    pub contact: ContactRules,
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
            team_agents: Vec::new(),
            team: "quality-team".into(),
            supervisor: "supervisor".into(),
            validity_days: 14,
            max_unreachable: 3,
            retry_spacing_hours: 2,
            contact: ContactRules::default(),
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
    pub history: Vec<Answer>,
    /// Complaints this customer opened before this one (repeat complaints raise priority).
    #[serde(default)]
    pub prior_complaints: u32,
    /// Set when a low re-survey answer reopens the task it followed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reopens: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

/// What an answer asks of the escalator, judged against the customer's
/// history *before* it: the reasons (none: nothing to do) and, for a low
/// "did we fix it?" re-survey, the task it reopens.
pub fn answer_reasons(
    survey: &Survey,
    before: &History,
    answer: &Answer,
) -> (Vec<TaskReason>, Option<String>) {
    match &survey.resurvey_of {
        // A satisfied re-survey counts as recovery (a counter), nothing more.
        Some(_) if !answer.scale.is_low(answer.score) => (vec![], None),
        Some(task_id) => (vec![TaskReason::LowScore], Some(task_id.clone())),
        None => (classify(before, answer.scale, answer.score), None),
    }
}

/// An answer's escalation, built the same way whether the receiver hands it
/// over at once or the escalator's tick picks it up later.
pub fn answer_escalation(
    survey: &Survey,
    contact: &Contact,
    before: &History,
    answer: &Answer,
    (reasons, reopens): (Vec<TaskReason>, Option<String>),
    question: Option<String>,
) -> EscalationRequest {
    EscalationRequest {
        source_id: survey.survey_id.clone(),
        reasons,
        contact: contact.clone(),
        answer: Some(answer.clone()),
        question,
        order_id: survey.order_id.clone(),
        agent_id: survey.agent_id.clone(),
        work_order_id: survey.work_order_id.clone(),
        history: before.answers.clone(),
        prior_complaints: before.complaints.len() as u32,
        reopens,
        occurred_at: answer.answered_at,
    }
}

/// A thank-you escalation (delight reasons only: nothing urgent) that an
/// answer leaves in an hourly log for the escalator's tick instead of
/// calling the escalator while the customer waits. It holds no personal
/// data, only which answer and why: the tick rebuilds the request from the
/// store, so an erasure in between is respected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeferredEscalation {
    pub survey_id: String,
    pub reasons: Vec<TaskReason>,
}

/// The trend of a customer's answers, each read as a share of its scale's top.
pub fn trend(history: &[Answer], latest: Option<&Answer>) -> Option<Trend> {
    let mut points: Vec<f64> = history
        .iter()
        .map(|h| (h.scale, h.score))
        .chain(latest.map(|a| (a.scale, a.score)))
        .map(|(scale, score)| score as f64 / *scale.range().end() as f64)
        .collect();
    if points.len() < 2 {
        return None;
    }
    let last = points.pop()?;
    let before = points.iter().sum::<f64>() / points.len() as f64;
    Some(if last > before + 0.1 {
        Trend::Rising
    } else if last < before - 0.1 {
        Trend::Falling
    } else {
        Trend::Steady
    })
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
    if req.contact.opted_out && req.reasons.iter().all(|r| r.is_delight()) {
        // A thank-you call to someone who asked not to be contacted (or was
        // erased) would only clutter a queue: it is never planned.
        return None;
    }
    let reason = *req.reasons.iter().min_by_key(|r| (r.priority(), **r))?;
    let place = policy.contact.place(&req.contact, now);
    let arrival = req.occurred_at.max(now - Duration::hours(1)).min(now);
    let due_by = req
        .reasons
        .iter()
        .map(|r| place.hours.deadline(arrival, r.deadline_hours(), place.tz))
        .min()
        .map(floor_to_minute)?;
    let priority = priority_for(req, reason);
    let owner = match (policy.owner_mode, &req.agent_id) {
        (OwnerMode::Responsible, Some(agent)) if !policy.team_agents.contains(agent) => {
            agent.clone()
        }
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
            merged: Vec::new(),
            earlier_tasks: Vec::new(),
            trend: trend(&req.history, req.answer.as_ref()),
            events: Vec::new(),
            open_cases: Vec::new(),
        },
        resolutions: 0,
        pending: Vec::new(),
    })
}

/// 1 is the most urgent: the reason's own rank, raised one step each for a VIP,
/// a very low score (NPS 0–2, CSAT 1) and a repeat complaint.
pub fn priority_for(req: &EscalationRequest, reason: TaskReason) -> u8 {
    let vip = req
        .contact
        .tier
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("vip"));
    let very_low = req.answer.as_ref().is_some_and(|a| match a.scale {
        crate::model::Scale::Nps => a.score <= 2,
        crate::model::Scale::Csat => a.score <= 1,
    });
    let repeat = req.prior_complaints >= 1 && req.reasons.contains(&TaskReason::Complaint);
    let raise = u8::from(vip) + u8::from(very_low) + u8::from(repeat);
    reason.priority().saturating_sub(raise).max(1)
}

/// Merge a later escalation for the same customer into their open task: one
/// caller, one conversation. The new reasons are added, the priority raised,
/// the deadline kept the earliest.
pub fn merge_into(
    task: &CallbackTask,
    req: &EscalationRequest,
    policy: &EscalationPolicy,
    now: DateTime<Utc>,
) -> CallbackTask {
    let mut t = task.clone();
    if t.context
        .merged
        .iter()
        .any(|m| m.source_id == req.source_id)
    {
        return t;
    }
    if let Some(incoming) = plan_task(req, policy, now) {
        for r in &req.reasons {
            if !t.reasons.contains(r) {
                t.reasons.push(*r);
            }
        }
        t.priority = t.priority.min(incoming.priority);
        t.due_by = t.due_by.min(incoming.due_by);
        t.expires_at = t.expires_at.max(incoming.expires_at);
        if incoming.priority < task.priority {
            t.reason = incoming.reason;
        }
        if t.work_order_id.is_none() {
            t.work_order_id = req.work_order_id.clone();
        }
    }
    t.context.merged.push(MergedEscalation {
        source_id: req.source_id.clone(),
        reasons: req.reasons.clone(),
        answer: req.answer.clone(),
        at: now,
    });
    t
}

/// A low answer to the re-survey after a resolution reopens the task.
pub fn reopen(
    task: &CallbackTask,
    answer: &Answer,
    policy: &EscalationPolicy,
    now: DateTime<Utc>,
) -> CallbackTask {
    let mut t = task.clone();
    let place = policy.contact.place(&t.context.customer, now);
    t.state = TaskState::Open;
    t.closed_at = None;
    t.breached = false;
    t.escalated_to = None;
    t.next_attempt_at = None;
    t.due_by = floor_to_minute(place.hours.deadline(
        now,
        TaskReason::LowScore.deadline_hours(),
        place.tz,
    ));
    t.expires_at = t.due_by + Duration::days(policy.validity_days);
    if !t.reasons.contains(&TaskReason::LowScore) {
        t.reasons.push(TaskReason::LowScore);
    }
    t.context.merged.push(MergedEscalation {
        source_id: answer.survey_id.clone(),
        reasons: vec![TaskReason::LowScore],
        answer: Some(answer.clone()),
        at: now,
    });
    t
}

/// Who is asking: a supervisor (the admin token) sees and changes everything; an
/// agent only the tasks they own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Supervisor,
    Agent(String),
}

impl Role {
    pub fn may_access(&self, task: &CallbackTask) -> bool {
        match self {
            Role::Supervisor => true,
            Role::Agent(a) => *a == task.owner,
        }
    }
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

/// Why a task cannot take a step: a decision, mapped to HTTP by the flows.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskRefusal {
    /// The task is `state`, which the step does not fit (`409`).
    WrongState {
        task_id: String,
        state: TaskState,
        /// What the step needs, in words.
        needs: &'static str,
    },
    /// The step's input is not acceptable (`422`): what is wrong.
    BadInput(&'static str),
}

impl TaskRefusal {
    /// What a person reads: the problem, and the steps allowed from here.
    pub fn message(&self) -> String {
        match self {
            TaskRefusal::WrongState {
                task_id,
                state,
                needs,
            } => format!(
                "task {task_id} is {state:?}; {needs} (allowed next states from here: {})",
                allowed_next(*state).join(", ")
            ),
            TaskRefusal::BadInput(why) => why.to_string(),
        }
    }
}

/// Apply an outcome, or the reason it does not fit.
pub fn apply_outcome(
    task: &CallbackTask,
    input: &OutcomeInput,
    policy: &EscalationPolicy,
    now: DateTime<Utc>,
) -> Result<CallbackTask, TaskRefusal> {
    if task.state.is_closed() {
        return Err(TaskRefusal::WrongState {
            task_id: task.task_id.clone(),
            state: task.state,
            needs: "no outcome can be recorded on a closed task",
        });
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
        return Err(TaskRefusal::BadInput(
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
                return Err(TaskRefusal::BadInput(
                    "a resolved outcome needs `resolution`: what was done",
                ));
            }
            t.state = TaskState::Resolved;
            t.first_contact_at.get_or_insert(now);
            t.closed_at = Some(now);
            t.resolutions += 1;
            t.resolution = input.resolution.clone();
            t.customer_satisfied = input.customer_satisfied;
        }
        Outcome::Claimed => {
            return Err(TaskRefusal::BadInput(
                "use POST /callbacks/{id}/claim to claim a task",
            ));
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

/// Claim an open task: someone is on it.
pub fn claim(
    task: &CallbackTask,
    by: &str,
    now: DateTime<Utc>,
) -> Result<CallbackTask, TaskRefusal> {
    if task.state != TaskState::Open {
        return Err(TaskRefusal::WrongState {
            task_id: task.task_id.clone(),
            state: task.state,
            needs: "only an open task can be claimed",
        });
    }
    let mut t = task.clone();
    t.state = TaskState::Claimed;
    t.attempts.push(Attempt {
        at: now,
        outcome: Outcome::Claimed,
        note: Some(format!("claimed by {by}")),
    });
    Ok(t)
}

/// The states a task may move to from `state`.
pub fn allowed_next(state: TaskState) -> Vec<&'static str> {
    match state {
        TaskState::Open => vec!["claimed", "reached", "resolved", "refused", "expired"],
        TaskState::Claimed | TaskState::Reached => {
            vec!["reached", "resolved", "refused", "expired"]
        }
        TaskState::Resolved => vec!["open (when the re-survey is low)"],
        TaskState::Refused | TaskState::Expired => vec!["none"],
    }
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

/// What changing a task from `before` to `after` at `now` owes the rest of
/// the store ([`TaskEffect`]), and the loop-report metrics it adds one to.
pub fn effects_of(
    before: &CallbackTask,
    after: &CallbackTask,
    outcome: Option<Outcome>,
    now: DateTime<Utc>,
) -> (Vec<TaskEffect>, Vec<&'static str>) {
    let mut effects = Vec::new();
    let mut metrics = Vec::new();
    // A conversation counts toward the contact limits; a call nobody answered
    // does not (retry spacing already keeps those apart).
    let was_a_call = matches!(outcome, Some(Outcome::Reached | Outcome::Refused))
        || (outcome == Some(Outcome::Resolved) && before.first_contact_at.is_none());
    if was_a_call {
        effects.push(TaskEffect::Contact { at: now });
    }
    if before.first_contact_at.is_none() {
        if let Some(first) = after.first_contact_at {
            let minutes = (first - after.created_at).num_minutes().max(0) as u32;
            effects.push(TaskEffect::FirstContact { minutes });
        }
    }
    if after.state.is_closed() && !before.state.is_closed() {
        effects.push(TaskEffect::Unlist);
        metrics.push("closed");
        if after.closed_at.unwrap_or(after.created_at) <= after.due_by {
            metrics.push("closed_within_deadline");
        }
        if after.state == TaskState::Resolved {
            metrics.push("resolved");
            // "Did we fix it?" follows a repair, not a thank-you call.
            if after.reasons.iter().any(|r| !r.is_delight()) {
                effects.push(TaskEffect::Resurvey { at: now });
            }
        }
    }
    if after.breached && !before.breached {
        if let Some(supervisor) = &after.escalated_to {
            effects.push(TaskEffect::Escalate {
                supervisor: supervisor.clone(),
            });
        }
        metrics.push("breached");
    }
    (effects, metrics)
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
            prior_complaints: 0,
            reopens: None,
            occurred_at: utc("2026-12-04T10:00:00+01:00"),
        }
    }

    #[test]
    fn merging_adds_reasons_raises_priority_keeps_earliest_deadline() {
        let p = EscalationPolicy::default();
        let now = utc("2026-12-04T10:00:00+01:00");
        let low = plan_task(&request(vec![TaskReason::LowScore], None), &p, now).unwrap();
        let mut missed = request(vec![TaskReason::MissedCall], None);
        missed.source_id = "call-1".into();
        let merged = merge_into(&low, &missed, &p, now);
        assert_eq!(merged.task_id, low.task_id);
        assert_eq!(
            merged.reasons,
            vec![TaskReason::LowScore, TaskReason::MissedCall]
        );
        assert_eq!(merged.priority, 1);
        assert_eq!(merged.reason, TaskReason::MissedCall);
        assert_eq!(merged.due_by, utc("2026-12-04T11:00:00+01:00"));
        // The same escalation again changes nothing.
        assert_eq!(merge_into(&merged, &missed, &p, now), merged);
    }

    #[test]
    fn priority_rises_for_vip_very_low_scores_and_repeat_complaints() {
        let mut r = request(vec![TaskReason::Complaint], None);
        assert_eq!(priority_for(&r, TaskReason::Complaint), 1);
        r.reasons = vec![TaskReason::Dropping];
        assert_eq!(priority_for(&r, TaskReason::Dropping), 3);
        r.contact.tier = Some("VIP".into());
        assert_eq!(priority_for(&r, TaskReason::Dropping), 2);
        r.reasons = vec![TaskReason::LowScore];
        r.answer = Some(Answer {
            survey_id: "s".into(),
            channel: crate::model::Channel::Email,
            kind: crate::model::SurveyKind::Product,
            scale: crate::model::Scale::Nps,
            score: 1,
            comment: None,
            reasons: vec![],
            answered_at: utc("2026-12-04T10:00:00Z"),
        });
        assert_eq!(priority_for(&r, TaskReason::LowScore), 1);
    }

    #[test]
    fn no_thank_you_call_for_someone_who_opted_out() {
        let now = utc("2026-12-04T10:00:00+01:00");
        let p = EscalationPolicy::default();
        let mut thanks = request(vec![TaskReason::FirstPromoter], None);
        assert!(plan_task(&thanks, &p, now).is_some());
        thanks.contact.opted_out = true;
        assert!(plan_task(&thanks, &p, now).is_none());
        let mut repair = request(vec![TaskReason::LowScore], None);
        repair.contact.opted_out = true;
        assert!(
            plan_task(&repair, &p, now).is_some(),
            "a repair is still recorded (the window says opted out)"
        );
    }

    #[test]
    fn team_agents_route_to_the_team() {
        let p = EscalationPolicy {
            team_agents: vec!["ext-1".into()],
            ..Default::default()
        };
        let now = utc("2026-12-04T10:00:00+01:00");
        assert_eq!(
            plan_task(&request(vec![TaskReason::LowScore], Some("ext-1")), &p, now)
                .unwrap()
                .owner,
            "quality-team"
        );
        assert_eq!(
            plan_task(&request(vec![TaskReason::LowScore], Some("own-1")), &p, now)
                .unwrap()
                .owner,
            "own-1"
        );
    }

    #[test]
    fn roles_limit_agents_to_their_own_tasks() {
        let now = utc("2026-12-04T10:00:00+01:00");
        let t = plan_task(
            &request(vec![TaskReason::LowScore], Some("a1")),
            &EscalationPolicy::default(),
            now,
        )
        .unwrap();
        assert!(Role::Supervisor.may_access(&t));
        assert!(Role::Agent("a1".into()).may_access(&t));
        assert!(!Role::Agent("a2".into()).may_access(&t));
    }

    #[test]
    fn deadlines_across_zones_and_daylight_saving() {
        let p = EscalationPolicy::default();
        let mut r = request(vec![TaskReason::MissedCall], None);
        // New York, the night the clocks go back (1 Nov 2026): 21:40 EDT → 10:00 EST next morning.
        r.contact.time_zone = Some("America/New_York".into());
        let at = utc("2026-10-31T21:40:00-04:00");
        r.occurred_at = at;
        assert_eq!(
            plan_task(&r, &p, at).unwrap().due_by,
            utc("2026-11-01T10:00:00-05:00")
        );
        // Kolkata (+05:30): 48 h from 20:00 is 20:00 two days later, still open.
        let mut r = request(vec![TaskReason::LowScore], None);
        r.contact.time_zone = Some("Asia/Kolkata".into());
        let at = utc("2026-12-04T20:00:00+05:30");
        r.occurred_at = at;
        assert_eq!(
            plan_task(&r, &p, at).unwrap().due_by,
            utc("2026-12-06T20:00:00+05:30")
        );
        // Shanghai, a complaint at 23:00: the clock starts at 09:00, due 48 h later at 09:00.
        let mut r = request(vec![TaskReason::Complaint], None);
        r.contact.time_zone = Some("Asia/Shanghai".into());
        let at = utc("2026-12-04T23:00:00+08:00");
        r.occurred_at = at;
        assert_eq!(
            plan_task(&r, &p, at).unwrap().due_by,
            utc("2026-12-07T09:00:00+08:00")
        );
        // Berlin, spring forward (29 Mar 2026): 48 elapsed hours from Friday 21:00 CET is
        // Sunday 22:00 CEST — after hours — so the deadline moves to Monday 09:00 CEST.
        let mut r = request(vec![TaskReason::LowScore], None);
        let at = utc("2026-03-27T21:00:00+01:00");
        r.occurred_at = at;
        assert_eq!(
            plan_task(&r, &p, at).unwrap().due_by,
            utc("2026-03-30T09:00:00+02:00")
        );
    }

    #[test]
    fn a_low_resurvey_reopens() {
        let p = EscalationPolicy::default();
        let now = utc("2026-12-04T10:00:00+01:00");
        let t = plan_task(&request(vec![TaskReason::Dropping], None), &p, now).unwrap();
        let done = apply_outcome(
            &t,
            &OutcomeInput {
                outcome: Outcome::Resolved,
                resolution: Some("fixed".into()),
                customer_satisfied: Some(true),
                note: None,
            },
            &p,
            now,
        )
        .unwrap();
        let answer = Answer {
            survey_id: "sv_re".into(),
            channel: crate::model::Channel::Email,
            kind: crate::model::SurveyKind::Service,
            scale: crate::model::Scale::Csat,
            score: 1,
            comment: None,
            reasons: vec![],
            answered_at: now,
        };
        let again = reopen(&done, &answer, &p, utc("2026-12-05T10:00:00+01:00"));
        assert_eq!(again.state, TaskState::Open);
        assert!(again.reasons.contains(&TaskReason::LowScore));
        assert_eq!(again.due_by, utc("2026-12-07T10:00:00+01:00"));
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
        assert!(matches!(
            err,
            TaskRefusal::WrongState {
                state: TaskState::Resolved,
                ..
            }
        ));
        assert_eq!(crate::ApiError::from(err).status, 409);
        let no_resolution = OutcomeInput {
            outcome: Outcome::Resolved,
            resolution: None,
            customer_satisfied: None,
            note: None,
        };
        assert_eq!(
            apply_outcome(&t, &no_resolution, &p, now)
                .map_err(crate::ApiError::from)
                .unwrap_err()
                .status,
            422
        );
    }

    #[test]
    fn claim_then_outcomes_and_trend() {
        let p = EscalationPolicy::default();
        let now = utc("2026-12-04T10:00:00+01:00");
        let t = plan_task(&request(vec![TaskReason::LowScore], None), &p, now).unwrap();
        let c = claim(&t, "agent-1", now).unwrap();
        assert_eq!(c.state, TaskState::Claimed);
        let err = crate::ApiError::from(claim(&c, "agent-2", now).unwrap_err());
        assert_eq!(err.status, 409);
        assert!(err.message.contains("reached"), "{}", err.message);
        let reached = apply_outcome(
            &c,
            &OutcomeInput {
                outcome: Outcome::Reached,
                resolution: None,
                customer_satisfied: None,
                note: None,
            },
            &p,
            now,
        )
        .unwrap();
        assert_eq!(reached.state, TaskState::Reached);
        let posted: OutcomeInput = serde_json::from_str(r#"{"outcome":"claimed"}"#).unwrap();
        assert_eq!(
            apply_outcome(&reached, &posted, &p, now)
                .map_err(crate::ApiError::from)
                .unwrap_err()
                .status,
            422
        );
        // A claimed task survives a round trip through the store.
        let stored: CallbackTask =
            serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(stored, c);
        let h = |score| Answer {
            survey_id: "s".into(),
            channel: crate::model::Channel::Sms,
            kind: crate::model::SurveyKind::Product,
            scale: crate::model::Scale::Nps,
            score,
            comment: None,
            reasons: vec![],
            answered_at: now,
        };
        assert_eq!(trend(&[h(10), h(9)], None), Some(Trend::Steady));
        assert_eq!(trend(&[h(10), h(9), h(3)], None), Some(Trend::Falling));
        assert_eq!(trend(&[h(2), h(9)], None), Some(Trend::Rising));
        assert_eq!(trend(&[h(2)], None), None);
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
