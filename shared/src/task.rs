//! Callback tasks: created from a low, dropping or notable answer (or an event),
//! owned by someone, due within calling hours, and closed through outcomes.

use std::collections::BTreeMap;

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
use crate::model::{Contact, Survey, WebhookEvent};

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
    pub max_unreachable: u32,
    pub retry_spacing_hours: i64,
    /// Customer tiers that are "key customers" (SPEC 1): only they get a
    /// thank-you call for a first top score or a birthday call.
    #[serde(default = "default_key_tiers")]
    pub key_tiers: Vec<String>,
    /// How long after it happened a call about each reason still makes
    /// sense, in hours (missing reasons: `TaskReason::default_validity_hours`).
    #[serde(default)]
    pub validity_hours: BTreeMap<TaskReason, u32>,
    /// The root causes an agent can record when closing a repair, each with
    /// the department responsible for it (the outer loop).
    #[serde(default = "default_root_causes")]
    pub root_causes: BTreeMap<String, String>,
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

fn default_key_tiers() -> Vec<String> {
    vec!["vip".into(), "key".into()]
}

/// The root causes a new seller starts with, and who fixes each.
pub fn default_root_causes() -> BTreeMap<String, String> {
    [
        ("delivery", "logistics"),
        ("packaging", "logistics"),
        ("product_defect", "quality"),
        ("wrong_item", "warehouse"),
        ("installation", "field_service"),
        ("repair_quality", "field_service"),
        ("billing", "finance"),
        ("staff_attitude", "service"),
        ("response_time", "service"),
        ("other", "service"),
    ]
    .into_iter()
    .map(|(c, d)| (c.to_string(), d.to_string()))
    .collect()
}

/// A work order still open this long after it was booked gets a proactive
/// call (`TaskReason::WorkOrderOverdue`), before the customer has to chase.
pub const WORK_ORDER_OVERDUE_HOURS: i64 = 48;

/// The cause recorded for a closed repair when the agent named none.
pub const UNCLASSIFIED: &str = "unclassified";

impl EscalationPolicy {
    /// Whether the customer is one of the seller's key customers (`key_tiers`).
    pub fn is_key_customer(&self, contact: &Contact) -> bool {
        contact
            .tier
            .as_deref()
            .is_some_and(|t| self.key_tiers.iter().any(|k| k.eq_ignore_ascii_case(t)))
    }

    /// How long after it happened a call about `reason` makes sense.
    pub fn validity(&self, reason: TaskReason) -> Duration {
        let hours = self
            .validity_hours
            .get(&reason)
            .copied()
            .unwrap_or_else(|| reason.default_validity_hours());
        Duration::hours(hours.into())
    }

    /// The department responsible for `cause` (`None`: not a cause we know).
    pub fn department(&self, cause: &str) -> Option<&str> {
        if cause == UNCLASSIFIED {
            return Some("unassigned");
        }
        self.root_causes.get(cause).map(String::as_str)
    }

    /// Check a policy read from JSON; the error says what to change.
    pub fn check(&self) -> Result<(), String> {
        if self.root_causes.is_empty() {
            return Err("escalation policy: at `root_causes`: give at least one cause".into());
        }
        for (cause, dept) in &self.root_causes {
            let ok = |s: &str| {
                !s.is_empty()
                    && s.len() <= 64
                    && s.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                    })
            };
            if !ok(cause) || !ok(dept) || cause == UNCLASSIFIED {
                return Err(format!(
                    "escalation policy: at `root_causes.{cause}`: causes and departments are 1–64 \
                     characters of a-z, 0-9, `_` and `-` (and `{UNCLASSIFIED}` is reserved)"
                ));
            }
        }
        Ok(())
    }
}

/// Of `reasons`, those a human should act on for this customer: a thank-you
/// call for a first top score and a birthday call go to key customers only
/// (SPEC 1: most people do not want to be disturbed).
pub fn wanted_reasons(
    reasons: &[TaskReason],
    contact: &Contact,
    policy: &EscalationPolicy,
) -> Vec<TaskReason> {
    let key = policy.is_key_customer(contact);
    reasons
        .iter()
        .copied()
        .filter(|r| key || !matches!(r, TaskReason::FirstPromoter | TaskReason::Birthday))
        .collect()
}

impl Default for EscalationPolicy {
    fn default() -> EscalationPolicy {
        EscalationPolicy {
            owner_mode: OwnerMode::Responsible,
            team_agents: Vec::new(),
            team: "quality-team".into(),
            supervisor: "supervisor".into(),
            max_unreachable: 3,
            retry_spacing_hours: 2,
            key_tiers: default_key_tiers(),
            validity_hours: BTreeMap::new(),
            root_causes: default_root_causes(),
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
    /// What a complaint was about, in the seller's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// When the thing happened (the event's `occurred_at`, the answer's
    /// time): the task's validity is counted from it.
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

/// An answer whose reasons for a call (see [`answer_reasons`]) are all
/// delight: a thank-you call (never promised to the customer, and let go
/// if it cannot be made); any other reason is a repair.
pub fn is_thank_you(reasons: &[TaskReason], reopens: Option<&str>) -> bool {
    reopens.is_none() && !reasons.is_empty() && reasons.iter().all(|r| r.is_delight())
}

/// The call an answer asks for, as the escalator receives it.
#[derive(Debug)]
pub enum AnswerCall {
    /// Low, dropping, a failed "did we fix it?": promised to the customer,
    /// and never let go.
    Repair(EscalationRequest),
    /// Delight: optional, and never promised.
    ThankYou(EscalationRequest),
}

impl AnswerCall {
    pub fn request(&self) -> &EscalationRequest {
        match self {
            AnswerCall::Repair(r) | AnswerCall::ThankYou(r) => r,
        }
    }
}

/// The call `answer` asks for with `reasons` (see [`answer_reasons`],
/// judged against the history `before` it), of those this customer's
/// record wants ([`wanted_reasons`]); `None` when it wants none. The answer
/// log's fold hands it to `flows::escalation::receive`; the receiver plans
/// a repair to promise the customer a call.
pub fn answer_call(
    survey: &Survey,
    contact: &Contact,
    (before, answer): (&History, &Answer),
    (reasons, reopens): (&[TaskReason], Option<String>),
    policy: &EscalationPolicy,
    question: Option<String>,
) -> Option<AnswerCall> {
    let reasons = wanted_reasons(reasons, contact, policy);
    if reasons.is_empty() {
        return None;
    }
    let thank_you = is_thank_you(&reasons, reopens.as_deref());
    let request = EscalationRequest {
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
        topic: None,
        occurred_at: answer.answered_at,
    };
    Some(match thank_you {
        true => AnswerCall::ThankYou(request),
        false => AnswerCall::Repair(request),
    })
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

/// When the customer is promised a call for `request`: as [`plan_task`]
/// plans it now (the answer log's fold makes the task from the answer's
/// time, and a merge into an earlier open task only brings it forward);
/// none when it plans no task, or one born too late to call about.
pub fn promised_callback(
    request: &EscalationRequest,
    policy: &EscalationPolicy,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let task = plan_task(request, policy, now)?;
    (!task.state.is_closed()).then_some(task.due_by)
}

/// Build the task a request asks for (`None` when it names no reason a
/// human should act on). A request that arrives past its validity, counted
/// from when the thing happened, gives a task born `expired`: recorded, never
/// called (a missed call reported days late, a delivery late months ago).
pub fn plan_task(
    req: &EscalationRequest,
    policy: &EscalationPolicy,
    now: DateTime<Utc>,
) -> Option<CallbackTask> {
    let reasons = wanted_reasons(&req.reasons, &req.contact, policy);
    if req.contact.opted_out && reasons.iter().all(|r| r.is_delight()) {
        // A thank-you call to someone who asked not to be contacted (or was
        // erased) would only clutter a queue: it is never planned.
        return None;
    }
    let reason = *reasons.iter().min_by_key(|r| (r.priority(), **r))?;
    let place = policy.contact.place(&req.contact, now);
    let arrival = req.occurred_at.max(now - Duration::hours(1)).min(now);
    let due_by = reasons
        .iter()
        .map(|r| place.hours.deadline(arrival, r.deadline_hours(), &place.tz))
        .min()
        .map(floor_to_minute)?;
    let valid_until = reasons
        .iter()
        .map(|r| req.occurred_at + policy.validity(*r))
        .max()?;
    let too_late = now >= valid_until;
    let priority = priority_for(req, reason);
    let owner = match (policy.owner_mode, &req.agent_id) {
        (OwnerMode::Responsible, Some(agent)) if !policy.team_agents.contains(agent) => {
            agent.clone()
        }
        _ => policy.team.clone(),
    };
    Some(CallbackTask {
        task_id: task_id_for(&req.source_id),
        state: if too_late {
            TaskState::Expired
        } else {
            TaskState::Open
        },
        reason,
        reasons,
        priority,
        owner,
        customer_id: req.contact.customer_id.clone(),
        created_at: now,
        occurred_at: Some(req.occurred_at),
        due_by,
        expires_at: valid_until,
        breached: false,
        escalated_to: None,
        work_order_id: req.work_order_id.clone(),
        attempts: Vec::new(),
        next_attempt_at: None,
        first_contact_at: None,
        closed_at: too_late.then_some(now),
        resolution: too_late.then(|| {
            format!(
                "too late: it happened at {}, past the {} h a call about it makes sense",
                req.occurred_at.to_rfc3339(),
                policy.validity(reason).num_hours()
            )
        }),
        customer_satisfied: None,
        root_cause: None,
        department: None,
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
    let incoming = plan_task(req, policy, now).filter(|i| !i.state.is_closed());
    if let Some(incoming) = incoming {
        for r in &incoming.reasons {
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
        if t.context.order_id.is_none() {
            t.context.order_id = req.order_id.clone();
        }
    }
    t.context.merged.push(MergedEscalation {
        source_id: req.source_id.clone(),
        reasons: req.reasons.clone(),
        answer: req.answer.clone(),
        order_id: req.order_id.clone(),
        work_order_id: req.work_order_id.clone(),
        topic: req.topic.clone(),
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
        &place.tz,
    ));
    t.expires_at = now + policy.validity(TaskReason::LowScore);
    if !t.reasons.contains(&TaskReason::LowScore) {
        t.reasons.push(TaskReason::LowScore);
    }
    t.context.merged.push(MergedEscalation {
        source_id: answer.survey_id.clone(),
        reasons: vec![TaskReason::LowScore],
        answer: Some(answer.clone()),
        order_id: t.context.order_id.clone(),
        work_order_id: t.work_order_id.clone(),
        topic: None,
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
    /// Why the customer was unhappy, from the policy's `root_causes` (the
    /// outer loop: its department sees it in `GET /reports/findings`).
    #[serde(default)]
    pub root_cause: Option<String>,
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
    /// The root cause is not one of the policy's (`422`).
    UnknownCause { cause: String, known: Vec<String> },
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
            TaskRefusal::UnknownCause { cause, known } => format!(
                "`root_cause` {cause:?} is not one of the seller's causes; use one of: {} \
                 (the list is the escalation policy's `root_causes`)",
                known.join(", ")
            ),
        }
    }
}

/// Refuse a step on a closed task, saying what the step needs.
fn not_closed(task: &CallbackTask, needs: &'static str) -> Result<(), TaskRefusal> {
    if task.state.is_closed() {
        return Err(TaskRefusal::WrongState {
            task_id: task.task_id.clone(),
            state: task.state,
            needs,
        });
    }
    Ok(())
}

/// The most attempts a task keeps (a task reached again and again stays small).
pub const MAX_ATTEMPTS: usize = 50;

/// Apply an outcome, or the reason it does not fit.
pub fn apply_outcome(
    task: &CallbackTask,
    input: &OutcomeInput,
    policy: &EscalationPolicy,
    now: DateTime<Utc>,
) -> Result<CallbackTask, TaskRefusal> {
    not_closed(task, "no outcome can be recorded on a closed task")?;
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
    let repair = is_repair(task);
    if let Some(cause) = &input.root_cause {
        if policy.department(cause).is_none() {
            return Err(TaskRefusal::UnknownCause {
                cause: cause.clone(),
                known: policy.root_causes.keys().cloned().collect(),
            });
        }
    }
    if repair && input.outcome == Outcome::Resolved && input.customer_satisfied == Some(false) {
        // SPEC 1: a repair is closed only when the customer confirms it is solved.
        return Err(TaskRefusal::BadInput(
            "a repair is resolved only when the customer confirms the problem is solved; \
             the customer is not satisfied, so record `reached` (the task stays open) \
             and call again once it is fixed",
        ));
    }
    let mut t = task.clone();
    t.attempts.push(Attempt {
        at: now,
        outcome: input.outcome,
        note: input.note.clone(),
    });
    if t.attempts.len() > MAX_ATTEMPTS {
        // The first attempt and the latest stay; the oldest "reached" in
        // between goes (unreachable ones close the task at three).
        let i = t.attempts[1..]
            .iter()
            .position(|a| a.outcome == Outcome::Reached)
            .map_or(1, |i| i + 1);
        t.attempts.remove(i);
    }
    if let Some(cause) = &input.root_cause {
        t.root_cause = Some(cause.clone());
        t.department = policy.department(cause).map(str::to_string);
    }
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
            if repair && t.root_cause.is_none() {
                // Counted, and shown as work left for the supervisor.
                t.root_cause = Some(UNCLASSIFIED.into());
                t.department = policy.department(UNCLASSIFIED).map(str::to_string);
            }
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

/// A repair: a task about something that went wrong (a low or dropping
/// score, a complaint, a missed call, an overdue work order), as opposed to a
/// thank-you call. Only repairs count in the resolution rate and the findings.
pub fn is_repair(task: &CallbackTask) -> bool {
    task.reasons.iter().any(|r| !r.is_delight())
}

/// Close a task by itself because the customer got through to us first (a
/// missed call followed by `call.answered`, or its case closed): only a task
/// about missed calls alone, still open, and only for a contact after it.
pub fn supersede(
    task: &CallbackTask,
    by_event: &str,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<CallbackTask> {
    let only_missed_calls = task.reasons.iter().all(|r| *r == TaskReason::MissedCall);
    if task.state.is_closed() || !only_missed_calls || task.occurred_at.is_some_and(|o| at < o) {
        return None;
    }
    let mut t = task.clone();
    t.state = TaskState::Superseded;
    t.closed_at = Some(now);
    t.resolution = Some(format!("the customer got through to us ({by_event})"));
    Some(t)
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

/// Give an open task to another owner (the supervisor's console).
pub fn reassign(
    task: &CallbackTask,
    owner: &str,
    by: &str,
    now: DateTime<Utc>,
) -> Result<CallbackTask, TaskRefusal> {
    not_closed(task, "only an open task can be reassigned")?;
    let owner = owner.trim();
    if owner.is_empty() || owner.len() > 200 {
        return Err(TaskRefusal::BadInput(
            "the new owner is 1 to 200 characters",
        ));
    }
    let mut t = task.clone();
    if t.owner != owner {
        t.attempts.push(Attempt {
            at: now,
            outcome: Outcome::Claimed,
            note: Some(format!("reassigned from {} to {owner} by {by}", t.owner)),
        });
        t.owner = owner.to_string();
    }
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
        TaskState::Refused | TaskState::Expired | TaskState::Superseded => vec!["none"],
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
        effects.push(TaskEffect::Announce {
            event: WebhookEvent::TaskClosed,
        });
        if after.state == TaskState::Superseded {
            // Nobody called: not a closure of ours, not a resolution.
            metrics.push("superseded");
        } else {
            metrics.push("closed");
            if is_repair(after) {
                metrics.push("repairs_closed");
            }
        }
        // Only a resolution counts as closing the loop in time: an expired,
        // refused or unreachable task is closed, not "closed within deadline".
        let resolved = after.state == TaskState::Resolved;
        if resolved && after.closed_at.unwrap_or(after.created_at) <= after.due_by {
            metrics.push("closed_within_deadline");
        }
        if resolved {
            metrics.push("resolved");
            // "Did we fix it?" follows a repair, not a thank-you call.
            if is_repair(after) {
                metrics.push("repairs_resolved");
                effects.push(TaskEffect::Resurvey { at: now });
            }
        }
    }
    if after.owner != before.owner && !after.state.is_closed() {
        effects.push(TaskEffect::Reassign {
            from: before.owner.clone(),
        });
    }
    if after.breached && !before.breached {
        if let Some(supervisor) = &after.escalated_to {
            effects.push(TaskEffect::Escalate {
                supervisor: supervisor.clone(),
            });
        }
        effects.push(TaskEffect::Announce {
            event: WebhookEvent::TaskBreached,
        });
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
            topic: None,
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
            log_seq: None,
        });
        assert_eq!(priority_for(&r, TaskReason::LowScore), 1);
    }

    #[test]
    fn an_answer_asks_for_a_repair_a_thank_you_for_key_customers_or_nothing() {
        let p = EscalationPolicy::default();
        let survey: Survey = serde_json::from_value(serde_json::json!({
            "survey_id": "sv_1", "event_id": "e1", "kind": "product", "scale": "nps",
            "customer_id": "c1", "agent_id": "agent-1",
            "due_at": "2026-12-04T09:00:00Z", "send_by": "2026-12-05T09:00:00Z",
            "expires_at": "2026-12-18T09:00:00Z", "next_attempt_at": "2026-12-04T09:00:00Z",
            "state": "sent"
        }))
        .unwrap();
        let answer = Answer {
            survey_id: "sv_1".into(),
            channel: crate::model::Channel::Email,
            kind: crate::model::SurveyKind::Product,
            scale: crate::model::Scale::Nps,
            score: 2,
            comment: None,
            reasons: vec![],
            answered_at: utc("2026-12-04T10:00:00Z"),
            log_seq: None,
        };
        let mut contact = request(vec![], None).contact;
        let before = History::default();
        let call = |reasons: &[TaskReason], reopens: Option<&str>, contact: &Contact| {
            let reopens = reopens.map(str::to_string);
            answer_call(
                &survey,
                contact,
                (&before, &answer),
                (reasons, reopens),
                &p,
                None,
            )
        };
        let Some(AnswerCall::Repair(r)) = call(&[TaskReason::LowScore], None, &contact) else {
            panic!("a low score asks for a repair");
        };
        assert_eq!(
            (r.source_id.as_str(), r.occurred_at),
            ("sv_1", answer.answered_at)
        );
        assert!(matches!(
            call(&[TaskReason::Recovered], Some("task_1"), &contact),
            Some(AnswerCall::Repair(_))
        ));
        // A first top score: a thank-you call for key customers only.
        assert!(call(&[TaskReason::FirstPromoter], None, &contact).is_none());
        contact.tier = Some("key".into());
        assert!(matches!(
            call(&[TaskReason::FirstPromoter], None, &contact),
            Some(AnswerCall::ThankYou(_))
        ));
        assert!(call(&[], None, &contact).is_none());
    }

    #[test]
    fn the_customer_is_promised_the_call_as_planned_unless_too_late() {
        let p = EscalationPolicy::default();
        let now = utc("2026-12-04T10:00:00+01:00");
        let low = request(vec![TaskReason::LowScore], None);
        let planned = plan_task(&low, &p, now).unwrap().due_by;
        assert!(planned > now);
        assert_eq!(promised_callback(&low, &p, now), Some(planned));
        // Too late to call about: no promise.
        let months_later = now + Duration::days(90);
        assert_eq!(promised_callback(&low, &p, months_later), None);
        // Nothing a human should act on: no promise.
        assert_eq!(promised_callback(&request(vec![], None), &p, now), None);
    }

    #[test]
    fn no_thank_you_call_for_someone_who_opted_out() {
        let now = utc("2026-12-04T10:00:00+01:00");
        let p = EscalationPolicy::default();
        let mut thanks = request(vec![TaskReason::FirstPromoter], None);
        thanks.contact.tier = Some("vip".into());
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
                root_cause: None,
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
            log_seq: None,
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
            root_cause: None,
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
            root_cause: None,
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
                root_cause: None,
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
            log_seq: None,
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
            root_cause: None,
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

    #[test]
    fn thank_you_and_birthday_calls_are_for_key_customers_only() {
        let now = utc("2026-12-04T10:00:00+01:00");
        let p = EscalationPolicy::default();
        let mut r = request(vec![TaskReason::FirstPromoter], None);
        assert!(
            plan_task(&r, &p, now).is_none(),
            "an ordinary customer is not disturbed"
        );
        r.contact.tier = Some("Key".into());
        assert_eq!(
            plan_task(&r, &p, now).unwrap().reason,
            TaskReason::FirstPromoter
        );
        r.contact.tier = Some("gold".into());
        assert!(plan_task(&r, &p, now).is_none());
        let gold = EscalationPolicy {
            key_tiers: vec!["gold".into()],
            ..EscalationPolicy::default()
        };
        assert!(
            plan_task(&r, &gold, now).is_some(),
            "the seller says who is key"
        );
        // Recovery and repairs are for everyone.
        let mut c = request(vec![TaskReason::Recovered, TaskReason::Birthday], None);
        assert_eq!(
            plan_task(&c, &p, now).unwrap().reasons,
            vec![TaskReason::Recovered]
        );
        c.reasons = vec![TaskReason::LowScore];
        assert!(plan_task(&c, &p, now).is_some());
    }

    #[test]
    fn validity_counts_from_when_it_happened() {
        let now = utc("2026-12-04T10:00:00+01:00");
        let p = EscalationPolicy::default();
        let mut missed = request(vec![TaskReason::MissedCall], None);
        missed.occurred_at = now - Duration::hours(3);
        let t = plan_task(&missed, &p, now).unwrap();
        assert_eq!(t.state, TaskState::Open);
        assert_eq!(t.expires_at, missed.occurred_at + Duration::hours(24));
        // Reported 90 days late: recorded, born expired, never callable.
        missed.occurred_at = now - Duration::days(90);
        let t = plan_task(&missed, &p, now).unwrap();
        assert_eq!(t.state, TaskState::Expired);
        assert_eq!(t.closed_at, Some(now));
        assert!(
            t.resolution.as_deref().unwrap().starts_with("too late"),
            "{:?}",
            t.resolution
        );
        // A delivery late three months ago opens no thank-you call today.
        let mut late = request(vec![TaskReason::LateDelivery], None);
        late.occurred_at = now - Duration::days(90);
        assert_eq!(plan_task(&late, &p, now).unwrap().state, TaskState::Expired);
        late.occurred_at = now - Duration::days(2);
        assert_eq!(plan_task(&late, &p, now).unwrap().state, TaskState::Open);
        // A too-late escalation merged into an open task changes nothing but the record of it.
        let open = plan_task(&request(vec![TaskReason::LowScore], None), &p, now).unwrap();
        let mut old = request(vec![TaskReason::MissedCall], None);
        old.source_id = "call-old".into();
        old.occurred_at = now - Duration::days(90);
        let merged = merge_into(&open, &old, &p, now);
        assert_eq!(
            (merged.due_by, merged.reasons.clone()),
            (open.due_by, open.reasons.clone())
        );
    }

    #[test]
    fn a_repair_closes_only_when_the_customer_confirms_and_carries_its_cause() {
        let now = utc("2026-12-04T10:00:00+01:00");
        let p = EscalationPolicy::default();
        let t = plan_task(&request(vec![TaskReason::Complaint], None), &p, now).unwrap();
        let input = |satisfied, cause: Option<&str>| OutcomeInput {
            root_cause: cause.map(str::to_string),
            outcome: Outcome::Resolved,
            resolution: Some("sent a new part".into()),
            customer_satisfied: satisfied,
            note: None,
        };
        let refused = apply_outcome(&t, &input(Some(false), None), &p, now).unwrap_err();
        assert!(
            refused.message().contains("reached"),
            "{}",
            refused.message()
        );
        let unknown = apply_outcome(&t, &input(Some(true), Some("gremlins")), &p, now).unwrap_err();
        assert!(
            unknown.message().contains("product_defect"),
            "{}",
            unknown.message()
        );
        let done = apply_outcome(&t, &input(Some(true), Some("delivery")), &p, now).unwrap();
        assert_eq!(
            (done.root_cause.as_deref(), done.department.as_deref()),
            (Some("delivery"), Some("logistics"))
        );
        let unnamed = apply_outcome(&t, &input(Some(true), None), &p, now).unwrap();
        assert_eq!(unnamed.root_cause.as_deref(), Some(UNCLASSIFIED));
        let (_, metrics) = effects_of(&t, &done, Some(Outcome::Resolved), now);
        assert!(
            metrics.contains(&"repairs_resolved") && metrics.contains(&"closed_within_deadline")
        );
        // A thank-you call is no repair: resolved without a confirmation, not in the rate.
        let mut thanks = request(vec![TaskReason::FirstPromoter], None);
        thanks.contact.tier = Some("vip".into());
        let thanks = plan_task(&thanks, &p, now).unwrap();
        let closed = apply_outcome(&thanks, &input(None, None), &p, now).unwrap();
        assert_eq!(closed.root_cause, None);
        let (_, metrics) = effects_of(&thanks, &closed, Some(Outcome::Resolved), now);
        assert!(!metrics.contains(&"repairs_closed") && metrics.contains(&"resolved"));
        // An expired task is closed, never "closed within deadline".
        let mut expired = t.clone();
        expired.state = TaskState::Expired;
        expired.closed_at = Some(now);
        let (_, metrics) = effects_of(&t, &expired, None, now);
        assert_eq!(metrics, vec!["closed", "repairs_closed"]);
    }

    #[test]
    fn a_missed_call_closes_by_itself_when_the_customer_gets_through() {
        let now = utc("2026-12-04T10:00:00+01:00");
        let p = EscalationPolicy::default();
        let t = plan_task(&request(vec![TaskReason::MissedCall], None), &p, now).unwrap();
        let after = t.occurred_at.unwrap() + Duration::minutes(20);
        let done = supersede(&t, "call.answered ev-2", after, now).unwrap();
        assert_eq!(done.state, TaskState::Superseded);
        assert!(
            supersede(&t, "call.answered ev-0", after - Duration::hours(1), now).is_none(),
            "a call before it"
        );
        let mut both = t.clone();
        both.reasons.push(TaskReason::Complaint);
        assert!(
            supersede(&both, "x", after, now).is_none(),
            "the complaint still needs a call"
        );
        let (_, metrics) = effects_of(&t, &done, None, now);
        assert_eq!(metrics, vec!["superseded"]);
    }

    #[test]
    fn a_task_keeps_at_most_fifty_attempts() {
        let now = utc("2026-12-04T10:00:00+01:00");
        let p = EscalationPolicy::default();
        let mut t = plan_task(&request(vec![TaskReason::Complaint], None), &p, now).unwrap();
        let reached = OutcomeInput {
            root_cause: None,
            outcome: Outcome::Reached,
            resolution: None,
            customer_satisfied: None,
            note: Some("talked".into()),
        };
        for i in 0..60 {
            t = apply_outcome(&t, &reached, &p, now + Duration::minutes(i)).unwrap();
        }
        assert_eq!(t.attempts.len(), MAX_ATTEMPTS);
        assert_eq!(t.attempts[0].at, now, "the first stays");
        assert_eq!(
            t.attempts.last().unwrap().at,
            now + Duration::minutes(59),
            "the latest stays"
        );
    }
}
