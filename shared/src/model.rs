//! The nouns of Revisit: what is stored and passed around, with no rule and
//! no storage. Rules (`policy`, `answer`, `survey`, `task`, `window`, ...)
//! decide about these; flows read and write them; the old module paths
//! re-export them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

// --- Ids

/// Bytes of SHA-256 in a derived id (16 hex digits).
const ID_BYTES: usize = 8;

/// A stable id: `prefix` + 16 hex digits of SHA-256 over the parts. The same
/// inputs always give the same id, which makes retried writes idempotent; the
/// hash keeps keys short and free of whatever the parts contain.
pub fn derive_id(prefix: &str, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    format!("{prefix}_{}", hex::encode(&h.finalize()[..ID_BYTES]))
}

// --- Channels, scales and kinds of survey (rules: `policy`)

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
    Whatsapp,
}

impl Channel {
    pub fn code(self) -> u8 {
        match self {
            Channel::Email => 1,
            Channel::Sms => 2,
            Channel::Whatsapp => 3,
        }
    }

    pub fn from_code(c: u8) -> Option<Channel> {
        match c {
            1 => Some(Channel::Email),
            2 => Some(Channel::Sms),
            3 => Some(Channel::Whatsapp),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Whatsapp => "whatsapp",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scale {
    /// 1–5; low ≤ 2.
    Csat,
    /// 0–10; low ≤ 6.
    Nps,
}

impl Scale {
    pub fn as_str(self) -> &'static str {
        match self {
            Scale::Csat => "csat",
            Scale::Nps => "nps",
        }
    }

    pub fn range(self) -> std::ops::RangeInclusive<u8> {
        match self {
            Scale::Csat => 1..=5,
            Scale::Nps => 0..=10,
        }
    }

    pub fn is_low(self, score: u8) -> bool {
        match self {
            Scale::Csat => score <= 2,
            Scale::Nps => score <= 6,
        }
    }

    /// How far below the previous answer counts as dropping (SPEC 2).
    pub fn drop_threshold(self) -> u8 {
        match self {
            Scale::Csat => 2,
            Scale::Nps => 3,
        }
    }

    /// The top answer: "very satisfied" (CSAT 5) or a promoter (NPS 9–10).
    pub fn is_top(self, score: u8) -> bool {
        match self {
            Scale::Csat => score == 5,
            Scale::Nps => score >= 9,
        }
    }

    /// Satisfied: CSAT 4–5, NPS 9–10.
    pub fn is_satisfied(self, score: u8) -> bool {
        match self {
            Scale::Csat => score >= 4,
            Scale::Nps => score >= 9,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SurveyKind {
    Service,
    Usage,
    Installation,
    Product,
}

impl SurveyKind {
    pub const ALL: [SurveyKind; 4] = [
        SurveyKind::Service,
        SurveyKind::Usage,
        SurveyKind::Installation,
        SurveyKind::Product,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SurveyKind::Service => "service",
            SurveyKind::Usage => "usage",
            SurveyKind::Installation => "installation",
            SurveyKind::Product => "product",
        }
    }
}

// --- Events (rules: `event`)

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "order.delivered")]
    OrderDelivered,
    #[serde(rename = "work_order.opened")]
    WorkOrderOpened,
    #[serde(rename = "service.completed")]
    ServiceCompleted,
    #[serde(rename = "repair.completed")]
    RepairCompleted,
    #[serde(rename = "installation.completed")]
    InstallationCompleted,
    #[serde(rename = "inquiry.opened")]
    InquiryOpened,
    #[serde(rename = "complaint.opened")]
    ComplaintOpened,
    #[serde(rename = "return.requested")]
    ReturnRequested,
    #[serde(rename = "case.closed")]
    CaseClosed,
    #[serde(rename = "call.missed")]
    CallMissed,
    /// The customer got through to us (a missed call of theirs needs no callback now).
    #[serde(rename = "call.answered")]
    CallAnswered,
    #[serde(rename = "customer.opted_out")]
    CustomerOptedOut,
}

impl EventType {
    /// The type as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::OrderDelivered => "order.delivered",
            EventType::WorkOrderOpened => "work_order.opened",
            EventType::ServiceCompleted => "service.completed",
            EventType::RepairCompleted => "repair.completed",
            EventType::InstallationCompleted => "installation.completed",
            EventType::InquiryOpened => "inquiry.opened",
            EventType::ComplaintOpened => "complaint.opened",
            EventType::ReturnRequested => "return.requested",
            EventType::CaseClosed => "case.closed",
            EventType::CallMissed => "call.missed",
            EventType::CallAnswered => "call.answered",
            EventType::CustomerOptedOut => "customer.opted_out",
        }
    }

    /// Events that record a work order as done.
    pub fn completes_work_order(self) -> bool {
        matches!(
            self,
            EventType::ServiceCompleted
                | EventType::RepairCompleted
                | EventType::InstallationCompleted
        )
    }
}

// --- Answers and a customer's history (rules: `answer`)

/// How many past answers a customer's history keeps at least…
pub(crate) const HISTORY_LEN: usize = 20;

/// …and for how long every answer is kept: longer than any survey link can
/// live (policies cap `link_validity_days` at 365).
pub const KEEP_ANSWERS_DAYS: i64 = 366;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub survey_id: String,
    pub channel: Channel,
    pub kind: SurveyKind,
    pub scale: Scale,
    pub score: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default)]
    pub reasons: Vec<String>,
    pub answered_at: DateTime<Utc>,
    /// Its entry in the answer log ([`LoggedAnswer`]): the one entry that
    /// counts it (absent on answers recorded before the log existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_seq: Option<u64>,
}

/// An answer's entry in the append-only answer log, written (under a number
/// from one counter) *before* the answer is swapped into the customer's
/// history. The log is folded into the reports by a tick, which counts an
/// entry only when the history holds the survey's answer under that same
/// number: a retry after a crash, or a submission that lost the race, leaves
/// an entry nobody confirms, and it is skipped. No personal data: the
/// customer is their pseudonym.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedAnswer {
    pub survey_id: String,
    /// `keys::pseudonym` of the customer.
    pub customer: String,
    /// Who served (the tally's agent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The survey re-asks after a repair (the loop's counters).
    #[serde(default)]
    pub resurvey: bool,
    /// The answering device (salted hash), for the integrity signals.
    pub device: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_order_id: Option<String>,
    /// Why the answer asks for a call (`task::answer_reasons`: a repair for a
    /// low or dropping score, a thank-you for delight), judged against the
    /// history it was recorded on; the fold makes the task. (Entries logged
    /// before repairs came this way named only their thank-you calls.)
    #[serde(default, alias = "thank_you", skip_serializing_if = "Vec::is_empty")]
    pub call: Vec<TaskReason>,
    /// The task a low "did we fix it?" answer reopens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reopens: Option<String>,
    pub logged_at: DateTime<Utc>,
}

/// A task an escalation is about to create, logged first under the next
/// number of one counter (`flows::task_log`). The task counts as created when
/// the customer's [`CustomerCallbacks`] names it under that number; the
/// escalator's tick folds the log into the queues, the open lists, the day's
/// log and the loop's `created` counts. No personal data: the customer is
/// their pseudonym.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedTask {
    pub task_id: String,
    /// `keys::pseudonym` of the customer.
    pub customer: String,
    pub logged_at: DateTime<Utc>,
}

/// A customer's callback tasks in one record (`keys::customer_callbacks`),
/// swapped last by every escalation, as its commit marker: the open task
/// later escalations merge into, and every task they ever had with the
/// task-log entry that created it and the escalation sources that went to
/// it (so a source delivered again finds its task and changes nothing).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CustomerCallbacks {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open: Option<String>,
    #[serde(default)]
    pub tasks: Vec<CommittedTask>,
}

/// One of a customer's tasks: the task-log entry it counts under, and the
/// escalation sources (answers, events) that created it or merged into it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommittedTask {
    pub task_id: String,
    pub logged: u64,
    #[serde(default)]
    pub sources: Vec<String>,
}

impl CustomerCallbacks {
    /// The task-log entry `task_id` counts under, if it is committed here.
    pub fn logged(&self, task_id: &str) -> Option<u64> {
        self.tasks
            .iter()
            .find(|t| t.task_id == task_id)
            .map(|t| t.logged)
    }

    /// The task escalation `source` went to, if it was handled.
    pub fn task_for(&self, source: &str) -> Option<&str> {
        self.tasks
            .iter()
            .find(|t| t.sources.iter().any(|s| s == source))
            .map(|t| t.task_id.as_str())
    }

    /// Note that `source` went to `task_id` (listed here already, or a task
    /// that counts under no entry).
    pub fn note(&mut self, source: &str, task_id: &str) {
        match self.tasks.iter_mut().find(|t| t.task_id == task_id) {
            Some(t) => t.sources.push(source.to_string()),
            None => self.tasks.push(CommittedTask {
                task_id: task_id.to_string(),
                logged: 0,
                sources: vec![source.to_string()],
            }),
        }
    }

    pub fn task_ids(&self) -> Vec<String> {
        self.tasks.iter().map(|t| t.task_id.clone()).collect()
    }
}

/// A customer's answers and complaints. It is also where an answer is
/// recorded: one compare-and-swap on this record decides "first answer wins"
/// for the survey *and* updates the history the next answer is judged against,
/// so the two can never disagree (and the answer path saves a round trip).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// Oldest first.
    #[serde(default)]
    pub answers: Vec<Answer>,
    /// Complaints opened since the customer's last satisfied answer.
    #[serde(default)]
    pub complaints_since_satisfied: u32,
    /// Complaints opened (most recent last, bounded), with their topic if given.
    #[serde(default)]
    pub complaints: Vec<ComplaintEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplaintEntry {
    pub event_id: String,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

impl History {
    /// The answer recorded for `survey_id`, if any.
    pub fn answer_to(&self, survey_id: &str) -> Option<&Answer> {
        self.answers.iter().find(|a| a.survey_id == survey_id)
    }

    /// The history as it was just before `survey_id` was answered (what that
    /// answer was judged against).
    pub fn before(&self, survey_id: &str) -> History {
        let mut h = self.clone();
        if let Some(i) = h.answers.iter().position(|a| a.survey_id == survey_id) {
            h.answers.truncate(i);
        }
        h
    }

    /// Record an answer. `false` when the survey already has one: the first
    /// answer wins. Old answers are forgotten only past [`HISTORY_LEN`] *and*
    /// [`KEEP_ANSWERS_DAYS`], so a link can never be answered twice while valid.
    pub fn record(&mut self, answer: Answer) -> bool {
        if self.answer_to(&answer.survey_id).is_some() {
            return false;
        }
        if answer.scale.is_satisfied(answer.score) {
            self.complaints_since_satisfied = 0;
        }
        let keep_from = answer.answered_at - chrono::Duration::days(KEEP_ANSWERS_DAYS);
        self.answers.push(answer);
        while self.answers.len() > HISTORY_LEN && self.answers[0].answered_at < keep_from {
            self.answers.remove(0);
        }
        true
    }
}

impl History {
    /// Record a complaint (idempotent per event); returns how many complaints the
    /// customer had opened before it, and how many of those were about the same topic.
    pub fn record_complaint(&mut self, entry: ComplaintEntry) -> (u32, u32) {
        let before: Vec<&ComplaintEntry> = self
            .complaints
            .iter()
            .filter(|c| c.event_id != entry.event_id)
            .collect();
        let prior = before.len() as u32;
        let same_topic = match &entry.topic {
            Some(t) => before
                .iter()
                .filter(|c| c.topic.as_deref() == Some(t.as_str()))
                .count() as u32,
            None => 0,
        };
        if !self.complaints.iter().any(|c| c.event_id == entry.event_id) {
            self.complaints_since_satisfied += 1;
            self.complaints.push(entry);
            if self.complaints.len() > HISTORY_LEN {
                self.complaints.remove(0);
            }
        }
        (prior, same_topic)
    }
}

// --- Surveys and contacts (rules: `survey`)

/// One thing a survey's change owes the rest of the store; each idempotent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case", try_from = "StoredEffect")]
pub enum SurveyEffect {
    /// The customer was contacted at `at` (counts toward contact limits).
    Contact { at: DateTime<Utc> },
    /// Look at the survey again at `at` (its reminder, or a retry).
    IndexDue { at: DateTime<Utc> },
    /// Tell the webhook endpoints that take `event` (a survey not sent, and why).
    Announce { event: WebhookEvent },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SurveyState {
    Planned,
    /// Claimed by one tick while its messages are handed to the sender.
    Sending,
    Sent,
    Answered,
    Expired,
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Deferred, not dropped: sent when calling hours open.
    QuietHours,
    OptedOut,
    /// The validity window passed before it could be sent.
    Expired,
    /// No address for any of the policy's channels.
    NoChannel,
    /// The customer was contacted too often already (surveys and callbacks together).
    ContactLimit,
    /// An inquiry or complaint of the customer's is open for the order: held
    /// until it is closed (or the window closes).
    OpenCase,
    /// The goods of the order were returned (or a return requested): never sent.
    Returned,
    /// A work order of the order is booked and not completed: a survey about
    /// the result waits for it (or the window closes).
    ServiceNotCompleted,
    /// The sender could not be reached or refused; retried by a later tick.
    SendFailed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    pub what: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<SkipReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Survey {
    pub survey_id: String,
    pub event_id: String,
    pub kind: SurveyKind,
    pub scale: Scale,
    pub customer_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_order_id: Option<String>,
    /// When what the survey asks about happened (the delivery, the visit),
    /// so the page can say which order or visit is meant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<DateTime<Utc>>,
    /// That moment's date in the customer's zone, set when the survey is
    /// sent (the zone is known then): the survey page shows it without
    /// looking the zone up on every view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_on: Option<chrono::NaiveDate>,
    pub due_at: DateTime<Utc>,
    pub send_by: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// When the tick should look at it next (due_at, or after a deferral).
    pub next_attempt_at: DateTime<Utc>,
    pub state: SurveyState,
    #[serde(default)]
    pub sent_channels: Vec<Channel>,
    #[serde(default)]
    pub timeline: Vec<TimelineEntry>,
    /// Set on the "did we fix it?" survey after a resolved callback: the task it follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resurvey_of: Option<String>,
    /// When the one reminder is due (set when the survey is sent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminder_at: Option<DateTime<Utc>>,
    /// The reminder went out (or was given up): never another.
    #[serde(default)]
    pub reminded: bool,
    /// When a tick claimed it for sending (`sending`): a claim older than the
    /// lease was left by a tick that died, and may be taken again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_at: Option<DateTime<Utc>>,
    /// What the survey's last change still owes the rest of the store,
    /// written with the change and cleared once done (a later tick finishes
    /// what an interrupted one left).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<SurveyEffect>,
}

/// What the contact record says about the customer at send time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    pub customer_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whatsapp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birthday: Option<String>,
    /// ISO 3166 country of their phone number, worked out once at intake
    /// (`phone::phone_country`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    #[serde(default)]
    pub opted_out: bool,
    /// The time of the latest event whose details this record holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<DateTime<Utc>>,
}

impl Contact {
    pub fn address(&self, channel: Channel) -> Option<&str> {
        match channel {
            Channel::Email => self.email.as_deref(),
            Channel::Sms => self.phone.as_deref(),
            // Only a WhatsApp number the seller gave: a phone number says
            // nothing about WhatsApp (little used in mainland China, say).
            Channel::Whatsapp => self.whatsapp.as_deref(),
        }
    }
}

// --- A customer's timeline (rules: `contact`)

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventLogEntry {
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub occurred_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

// --- Work orders (rules: `window`)

/// A work order as the issuer records it from `work_order.opened` / `*.completed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkOrder {
    pub work_order_id: String,
    /// Whose and for which order (known from the events that named it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
}

// --- Callback tasks (rules: `task`)

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
    /// A work order still open 48 h after it was booked: we call first.
    WorkOrderOverdue,
}

impl TaskReason {
    /// Every reason, in the contract's order.
    pub const ALL: [TaskReason; 10] = [
        TaskReason::LowScore,
        TaskReason::Dropping,
        TaskReason::MissedCall,
        TaskReason::Complaint,
        TaskReason::FirstPromoter,
        TaskReason::Recovered,
        TaskReason::Birthday,
        TaskReason::LateDelivery,
        TaskReason::VipRepeat,
        TaskReason::WorkOrderOverdue,
    ];

    /// The reason as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskReason::LowScore => "low_score",
            TaskReason::Dropping => "dropping",
            TaskReason::MissedCall => "missed_call",
            TaskReason::Complaint => "complaint",
            TaskReason::FirstPromoter => "first_promoter",
            TaskReason::Recovered => "recovered",
            TaskReason::Birthday => "birthday",
            TaskReason::LateDelivery => "late_delivery",
            TaskReason::VipRepeat => "vip_repeat",
            TaskReason::WorkOrderOverdue => "work_order_overdue",
        }
    }

    /// Calling hours allowed before the task is breached.
    pub fn deadline_hours(self) -> i64 {
        match self {
            TaskReason::MissedCall => 1,
            TaskReason::LowScore
            | TaskReason::Dropping
            | TaskReason::Complaint
            | TaskReason::VipRepeat => 48,
            TaskReason::WorkOrderOverdue => 24,
            TaskReason::FirstPromoter
            | TaskReason::Recovered
            | TaskReason::Birthday
            | TaskReason::LateDelivery => 72,
        }
    }

    /// Callbacks that are a service moment rather than a repair: never made to a
    /// customer with an open complaint or callback.
    pub fn is_delight(self) -> bool {
        matches!(
            self,
            TaskReason::FirstPromoter
                | TaskReason::Recovered
                | TaskReason::Birthday
                | TaskReason::LateDelivery
        )
    }

    /// Calls that ask about the *result* of a service (a satisfaction check):
    /// they wait until the work order is completed. Every other call is one
    /// the customer waits for (or a repair) and never waits for the work.
    pub fn asks_about_result(self) -> bool {
        matches!(
            self,
            TaskReason::FirstPromoter | TaskReason::Recovered | TaskReason::Birthday
        )
    }

    /// How long after the thing *happened* (the event's `occurred_at`, the
    /// answer's time) a call still makes sense, in hours; past it the task is
    /// recorded as expired and never called (SPEC 1). A missed call is
    /// returned the same or the next morning, not days later.
    pub fn default_validity_hours(self) -> u32 {
        match self {
            TaskReason::MissedCall => 24,
            TaskReason::Complaint | TaskReason::VipRepeat | TaskReason::WorkOrderOverdue => 7 * 24,
            TaskReason::LateDelivery => 7 * 24,
            TaskReason::LowScore
            | TaskReason::Dropping
            | TaskReason::FirstPromoter
            | TaskReason::Recovered
            | TaskReason::Birthday => 14 * 24,
        }
    }

    /// 1 is the most urgent.
    pub fn priority(self) -> u8 {
        match self {
            TaskReason::MissedCall | TaskReason::Complaint => 1,
            TaskReason::LowScore | TaskReason::VipRepeat | TaskReason::WorkOrderOverdue => 2,
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
    /// Closed by itself: the customer got through to us before we called
    /// back (a later `call.answered` or `case.closed`).
    Superseded,
}

impl TaskState {
    /// The state as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Open => "open",
            TaskState::Claimed => "claimed",
            TaskState::Reached => "reached",
            TaskState::Resolved => "resolved",
            TaskState::Refused => "refused",
            TaskState::Expired => "expired",
            TaskState::Superseded => "superseded",
        }
    }

    pub fn is_closed(self) -> bool {
        matches!(
            self,
            TaskState::Resolved | TaskState::Refused | TaskState::Expired | TaskState::Superseded
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Recorded by `claim`; posting it as an outcome is refused (422).
    Claimed,
    Reached,
    Unreachable,
    Resolved,
    Refused,
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
    pub history: Vec<Answer>,
    /// Later escalations for the same customer, merged into this task.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged: Vec<MergedEscalation>,
    /// Earlier tasks for this customer and how they ended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier_tasks: Vec<EarlierTask>,
    /// Whether the customer's answers are rising, falling or steady.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trend: Option<Trend>,
    /// The customer's events, oldest first (deliveries, visits, complaints, calls).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<EventLogEntry>,
    /// Inquiries, complaints and returns still open.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub open_cases: Vec<EventLogEntry>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    Rising,
    Falling,
    Steady,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergedEscalation {
    pub source_id: String,
    pub reasons: Vec<TaskReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<Answer>,
    /// The order, work order and topic the escalation was about: a merged
    /// complaint keeps what it said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EarlierTask {
    pub task_id: String,
    pub reason: TaskReason,
    pub state: TaskState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_satisfied: Option<bool>,
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
    /// When what the task is about happened (its validity counts from it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurred_at: Option<DateTime<Utc>>,
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
    /// Why the customer was unhappy (a repair's root cause) and the
    /// department responsible for it: the outer loop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_cause: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// How often it was resolved (a low re-survey reopens it).
    #[serde(default)]
    pub resolutions: u32,
    pub context: TaskContext,
    /// What the task's last change still owes the rest of the store, written
    /// with the change and cleared once done: whoever reads the task next (a
    /// retry, the escalator's tick) finishes what an interrupted request left.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<TaskEffect>,
}

// --- What outbound webhooks announce (rules: `webhooks`)

/// What happened, as webhook receivers subscribe to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WebhookEvent {
    #[serde(rename = "answer.recorded")]
    AnswerRecorded,
    #[serde(rename = "task.created")]
    TaskCreated,
    #[serde(rename = "task.breached")]
    TaskBreached,
    #[serde(rename = "task.closed")]
    TaskClosed,
    #[serde(rename = "survey.skipped")]
    SurveySkipped,
}

impl WebhookEvent {
    pub const ALL: [WebhookEvent; 5] = [
        WebhookEvent::AnswerRecorded,
        WebhookEvent::TaskCreated,
        WebhookEvent::TaskBreached,
        WebhookEvent::TaskClosed,
        WebhookEvent::SurveySkipped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::AnswerRecorded => "answer.recorded",
            WebhookEvent::TaskCreated => "task.created",
            WebhookEvent::TaskBreached => "task.breached",
            WebhookEvent::TaskClosed => "task.closed",
            WebhookEvent::SurveySkipped => "survey.skipped",
        }
    }
}

/// One thing a task's change owes the rest of the store. Each is idempotent:
/// applying it twice leaves the store as applying it once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case", try_from = "StoredEffect")]
pub enum TaskEffect {
    /// Closed: out of the open indexes and the customer's open-task pointer.
    Unlist,
    /// A conversation with the customer at `at` (counts toward contact limits).
    Contact { at: DateTime<Utc> },
    /// The first contact, `minutes` after the task was created (loop report).
    FirstContact { minutes: u32 },
    /// Resolved a repair: plan the "did we fix it?" re-survey as of `at`.
    Resurvey { at: DateTime<Utc> },
    /// Breached: into `supervisor`'s queue.
    Escalate { supervisor: String },
    /// Reassigned: out of `from`'s queue, into the new owner's.
    Reassign { from: String },
    /// Tell the webhook endpoints that take `event` (breached, closed).
    Announce { event: WebhookEvent },
}

/// An effect as stored: `{"effect": name, …its fields}`, as the effect
/// enums write themselves (internally tagged). Both read through this plain
/// struct: serde reads an internally tagged enum by buffering it first, which
/// cost about 15 KB of wasm per enum in every component that reads tasks.
#[derive(Deserialize)]
struct StoredEffect {
    effect: String,
    at: Option<DateTime<Utc>>,
    minutes: Option<u32>,
    supervisor: Option<String>,
    from: Option<String>,
    event: Option<WebhookEvent>,
}

/// `field` of effect `effect`, which it cannot do without.
fn needs<T>(field: Option<T>, name: &str, effect: &str) -> Result<T, String> {
    field.ok_or_else(|| format!("the `{effect}` effect needs `{name}`"))
}

impl TryFrom<StoredEffect> for TaskEffect {
    type Error = String;

    fn try_from(s: StoredEffect) -> Result<TaskEffect, String> {
        let e = s.effect.as_str();
        Ok(match e {
            "unlist" => TaskEffect::Unlist,
            "contact" => TaskEffect::Contact {
                at: needs(s.at, "at", e)?,
            },
            "first_contact" => TaskEffect::FirstContact {
                minutes: needs(s.minutes, "minutes", e)?,
            },
            "resurvey" => TaskEffect::Resurvey {
                at: needs(s.at, "at", e)?,
            },
            "escalate" => TaskEffect::Escalate {
                supervisor: needs(s.supervisor, "supervisor", e)?,
            },
            "reassign" => TaskEffect::Reassign {
                from: needs(s.from, "from", e)?,
            },
            "announce" => TaskEffect::Announce {
                event: needs(s.event, "event", e)?,
            },
            other => return Err(format!("no task effect is called `{other}`")),
        })
    }
}

impl TryFrom<StoredEffect> for SurveyEffect {
    type Error = String;

    fn try_from(s: StoredEffect) -> Result<SurveyEffect, String> {
        let e = s.effect.as_str();
        Ok(match e {
            "contact" => SurveyEffect::Contact {
                at: needs(s.at, "at", e)?,
            },
            "index_due" => SurveyEffect::IndexDue {
                at: needs(s.at, "at", e)?,
            },
            "announce" => SurveyEffect::Announce {
                event: needs(s.event, "event", e)?,
            },
            other => return Err(format!("no survey effect is called `{other}`")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effects_read_back_what_they_write() {
        let at = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let tasks = [
            TaskEffect::Unlist,
            TaskEffect::Contact { at },
            TaskEffect::FirstContact { minutes: 42 },
            TaskEffect::Resurvey { at },
            TaskEffect::Escalate {
                supervisor: "sup".into(),
            },
            TaskEffect::Reassign { from: "a1".into() },
            TaskEffect::Announce {
                event: WebhookEvent::TaskClosed,
            },
        ];
        for effect in tasks {
            let json = serde_json::to_string(&effect).unwrap();
            assert_eq!(
                serde_json::from_str::<TaskEffect>(&json).unwrap(),
                effect,
                "{json}"
            );
        }
        let surveys = [
            SurveyEffect::Contact { at },
            SurveyEffect::IndexDue { at },
            SurveyEffect::Announce {
                event: WebhookEvent::SurveySkipped,
            },
        ];
        for effect in surveys {
            let json = serde_json::to_string(&effect).unwrap();
            assert_eq!(
                serde_json::from_str::<SurveyEffect>(&json).unwrap(),
                effect,
                "{json}"
            );
        }
        // What was written by the derived enum before reads the same.
        assert_eq!(
            serde_json::from_str::<TaskEffect>(r#"{"effect":"first_contact","minutes":7}"#)
                .unwrap(),
            TaskEffect::FirstContact { minutes: 7 }
        );
        let err = serde_json::from_str::<TaskEffect>(r#"{"effect":"contact"}"#).unwrap_err();
        assert!(err.to_string().contains("needs `at`"), "{err}");
        let err = serde_json::from_str::<SurveyEffect>(r#"{"effect":"unlist"}"#).unwrap_err();
        assert!(err.to_string().contains("no survey effect"), "{err}");
    }

    #[test]
    fn task_states_are_written_as_serde_writes_them() {
        for state in [
            TaskState::Open,
            TaskState::Claimed,
            TaskState::Reached,
            TaskState::Resolved,
            TaskState::Refused,
            TaskState::Expired,
            TaskState::Superseded,
        ] {
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
    }

    #[test]
    fn task_reasons_are_written_as_serde_writes_them() {
        for r in TaskReason::ALL {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
    }
}
