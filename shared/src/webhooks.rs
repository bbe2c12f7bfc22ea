//! Outbound webhooks: who is told what (the `webhooks` variable), what a
//! delivery is, when a failed one is tried again, and the bodies sent — the
//! Standard Webhooks format (<https://www.standardwebhooks.com>, as Svix and
//! Formbricks send it) or a Slack incoming-webhook message (Block Kit).
//!
//! Pure rules: the flow (`flows::webhooks`) keeps the outbox and the log, the
//! escalator's tick sends.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::model::WebhookEvent;
use crate::model::{
    derive_id, CallbackTask, Channel, Scale, SkipReason, Survey, SurveyKind, SurveyState,
    TaskReason,
};

/// How an endpoint wants its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointKind {
    /// Standard Webhooks: signed JSON `{type, timestamp, data}`.
    #[default]
    Standard,
    /// A Slack incoming webhook: Block Kit, for a low score or complaint
    /// becoming a task and for a breached deadline.
    Slack,
}

/// One receiver, as the seller registers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    pub url: String,
    #[serde(default)]
    pub kind: EndpointKind,
    pub events: Vec<WebhookEvent>,
    /// `whsec_` + base64 of the key (Standard Webhooks); none for Slack,
    /// whose URL is its secret.
    #[serde(default, skip_serializing)]
    pub secret: Option<String>,
}

/// Every registered endpoint (the `webhooks` variable; empty: nobody).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Webhooks {
    endpoints: Vec<Endpoint>,
}

/// Nobody to tell, for as long as needed.
pub static NOBODY: Webhooks = Webhooks {
    endpoints: Vec::new(),
};

/// The events a Slack endpoint can take (Slack is for people: the alerts).
const SLACK_EVENTS: [WebhookEvent; 2] = [WebhookEvent::TaskCreated, WebhookEvent::TaskBreached];

/// A secret's key bytes: Standard Webhooks asks for 24 to 64.
const SECRET_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

impl Webhooks {
    /// Read the `webhooks` variable: a JSON list of endpoints. Every mistake
    /// is refused with what to fix, so a typo cannot silently drop alerts.
    pub fn parse(text: &str) -> Result<Webhooks, String> {
        if text.trim().is_empty() {
            return Ok(Webhooks::default());
        }
        let endpoints: Vec<Endpoint> = serde_json::from_str(text).map_err(|e| {
            format!(
                "webhooks: {e} (expected a JSON list like [{{\"url\": \"https://…\", \
                 \"events\": [\"task.created\"], \"secret\": \"whsec_…\"}}])"
            )
        })?;
        for (i, e) in endpoints.iter().enumerate() {
            let at = format!("webhooks[{i}]");
            if url_parts(&e.url).is_none() {
                return Err(format!(
                    "{at}: url must be https://host/path (got {:?})",
                    e.url
                ));
            }
            if e.events.is_empty() {
                return Err(format!(
                    "{at}: events is empty: name at least one of {}",
                    names()
                ));
            }
            if endpoints[..i].iter().any(|o| o.url == e.url) {
                return Err(format!("{at}: {} is listed twice", e.url));
            }
            match e.kind {
                EndpointKind::Standard => {
                    let secret = e.secret.as_deref().ok_or_else(|| {
                        format!("{at}: a secret is required (whsec_ and the base64 of 24 to 64 random bytes)")
                    })?;
                    secret_key(secret).map_err(|m| format!("{at}: {m}"))?;
                }
                EndpointKind::Slack => {
                    if let Some(bad) = e.events.iter().find(|v| !SLACK_EVENTS.contains(v)) {
                        return Err(format!(
                            "{at}: Slack endpoints take task.created and task.breached, not {}",
                            bad.as_str()
                        ));
                    }
                }
            }
        }
        Ok(Webhooks { endpoints })
    }

    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    pub fn endpoint(&self, url: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.url == url)
    }

    /// The endpoints that take `event` about `task` (Slack: only when a
    /// person should look now — a low score, a drop or a complaint).
    pub fn subscribers(&self, event: WebhookEvent, task: Option<&CallbackTask>) -> Vec<&Endpoint> {
        self.endpoints
            .iter()
            .filter(|e| e.events.contains(&event))
            .filter(|e| match (e.kind, event, task) {
                (EndpointKind::Slack, WebhookEvent::TaskCreated, Some(t)) => {
                    t.reasons.iter().any(|r| {
                        matches!(
                            r,
                            TaskReason::LowScore | TaskReason::Dropping | TaskReason::Complaint
                        )
                    })
                }
                _ => true,
            })
            .collect()
    }
}

fn names() -> String {
    WebhookEvent::ALL.map(|e| e.as_str()).join(", ")
}

/// The HMAC key in a `whsec_` secret.
pub fn secret_key(secret: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    let b64 = secret
        .strip_prefix("whsec_")
        .ok_or("the secret must start with whsec_ (Standard Webhooks)")?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| "the secret after whsec_ must be base64")?;
    if !SECRET_BYTES.contains(&key.len()) {
        return Err(format!(
            "the secret holds {} bytes; use 24 to 64 random bytes (e.g. `openssl rand -base64 32`)",
            key.len()
        ));
    }
    Ok(key)
}

/// One message to one endpoint, kept in the outbox until it is delivered
/// (a 2xx) or given up on, and in the delivery log after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    /// Stable across retries (`webhook-id`): derived from the event, its
    /// subject and the endpoint, so announcing the same thing twice makes
    /// the same id (the flow sends one of them).
    pub id: String,
    pub event: WebhookEvent,
    pub url: String,
    /// When the event happened: the payload's `timestamp`.
    pub created_at: DateTime<Utc>,
    /// The event's facts; the body is rendered from them, the same each try.
    pub data: Value,
    pub status: DeliveryStatus,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// The receiver's answer to the last try (HTTP status), if it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not tried yet.
    Pending,
    Delivered,
    /// The last try failed: `next_attempt_at` says when the next one is, or
    /// none when the retry schedule ran out.
    Failed,
    /// The same message was already in the outbox: never sent.
    Duplicate,
}

impl DeliveryStatus {
    pub fn parse(s: &str) -> Option<DeliveryStatus> {
        match s {
            "pending" => Some(DeliveryStatus::Pending),
            "delivered" => Some(DeliveryStatus::Delivered),
            "failed" => Some(DeliveryStatus::Failed),
            _ => None,
        }
    }
}

impl Delivery {
    /// A new delivery of `event` about `subject` (a task, survey or answer
    /// id; with a suffix when the same subject can have the event again).
    pub fn new(
        event: WebhookEvent,
        subject: &str,
        endpoint: &Endpoint,
        data: Value,
        now: DateTime<Utc>,
    ) -> Delivery {
        Delivery {
            id: derive_id("msg", &[event.as_str(), subject, &endpoint.url]),
            event,
            url: endpoint.url.clone(),
            created_at: now,
            data,
            status: DeliveryStatus::Pending,
            attempts: 0,
            next_attempt_at: None,
            last_attempt_at: None,
            last_status: None,
            last_error: None,
        }
    }

    /// Whether the outbox still owes it a try (now or later).
    pub fn is_open(&self) -> bool {
        match self.status {
            DeliveryStatus::Pending => true,
            DeliveryStatus::Failed => self.next_attempt_at.is_some(),
            DeliveryStatus::Delivered | DeliveryStatus::Duplicate => false,
        }
    }

    /// Whether it should be tried at `now`.
    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        match self.status {
            DeliveryStatus::Pending => true,
            DeliveryStatus::Failed => self.next_attempt_at.is_some_and(|t| t <= now),
            _ => false,
        }
    }

    /// The delivery after a try at `now` that got `result`.
    pub fn after_attempt(&self, result: &AttemptResult, now: DateTime<Utc>) -> Delivery {
        let mut d = self.clone();
        d.attempts += 1;
        d.last_attempt_at = Some(now);
        match result {
            AttemptResult::Answered(status) if (200..300).contains(status) => {
                d.status = DeliveryStatus::Delivered;
                d.last_status = Some(*status);
                d.last_error = None;
                d.next_attempt_at = None;
            }
            failed => {
                d.status = DeliveryStatus::Failed;
                d.next_attempt_at = retry_delay(d.attempts).map(|wait| now + wait);
                match failed {
                    AttemptResult::Answered(status) => {
                        d.last_status = Some(*status);
                        d.last_error = Some(format!("the receiver answered {status}"));
                    }
                    AttemptResult::Failed(why) => {
                        d.last_status = None;
                        d.last_error = Some(why.clone());
                    }
                }
            }
        }
        d
    }
}

/// How a try went.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptResult {
    /// The receiver answered with this status (2xx: delivered).
    Answered(u16),
    /// No answer: refused, unreachable, timed out (why).
    Failed(String),
}

/// After the `attempts`-th failed try, how long until the next: the Standard
/// Webhooks schedule (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h) at the
/// tick's grain; `None`: give up (after about 28 hours; the log keeps it).
pub fn retry_delay(attempts: u32) -> Option<Duration> {
    let minutes = match attempts {
        1 => 1,
        2 => 5,
        3 => 30,
        4 => 120,
        5 => 300,
        6 | 7 => 600,
        _ => return None,
    };
    Some(Duration::minutes(minutes))
}

/// What goes over the wire for one try.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookRequest {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

/// A receiver's URL as an HTTP request names it: scheme (`http` or
/// `https`), authority (`host[:port]`) and path with query (a fragment is
/// never sent); `None` for anything else.
pub fn url_parts(url: &str) -> Option<(&str, &str, String)> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let rest = rest.split('#').next().unwrap_or_default();
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    if authority.is_empty() || authority.contains(['@', ' ']) {
        return None;
    }
    let path = match tail {
        "" => "/".to_string(),
        t if t.starts_with('/') => t.to_string(),
        t => format!("/{t}"),
    };
    Some((scheme, authority, path))
}

/// Where the agents' page is (the link in a Slack message).
pub struct Links<'a> {
    pub public_base_url: &'a str,
}

/// A Standard Webhooks body: `{type, timestamp, data}`.
#[derive(Serialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    event: &'a str,
    timestamp: String,
    data: &'a Value,
}

/// The request for `delivery` to `endpoint`, tried at `now`.
pub fn request(
    delivery: &Delivery,
    endpoint: &Endpoint,
    links: &Links,
    now: DateTime<Utc>,
) -> Result<WebhookRequest, String> {
    let json_type = ("content-type", "application/json".to_string());
    match endpoint.kind {
        EndpointKind::Standard => {
            let body = serde_json::to_vec(&Envelope {
                event: delivery.event.as_str(),
                timestamp: delivery
                    .created_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                data: &delivery.data,
            })
            .expect("JSON values serialize");
            let key = secret_key(endpoint.secret.as_deref().unwrap_or_default())?;
            let ts = now.timestamp();
            let signature =
                crate::signing::standard_webhook_signature(&key, &delivery.id, ts, &body);
            Ok(WebhookRequest {
                url: endpoint.url.clone(),
                headers: vec![
                    json_type,
                    ("webhook-id", delivery.id.clone()),
                    ("webhook-timestamp", ts.to_string()),
                    ("webhook-signature", signature),
                ],
                body,
            })
        }
        EndpointKind::Slack => {
            let body =
                serde_json::to_vec(&slack_message(delivery, links)).expect("JSON values serialize");
            Ok(WebhookRequest {
                url: endpoint.url.clone(),
                headers: vec![json_type],
                body,
            })
        }
    }
}

/// What `task.created`, `task.breached` and `task.closed` carry: the task's
/// facts (no phone or e-mail: a helpdesk looks the customer up by id; Slack
/// shows the name).
#[derive(Serialize)]
struct TaskData<'a> {
    task_id: &'a str,
    state: &'static str,
    reason: &'static str,
    reasons: Vec<&'static str>,
    priority: u8,
    owner: &'a str,
    escalated_to: &'a Option<String>,
    customer_id: &'a str,
    customer_name: &'a Option<String>,
    order_id: &'a Option<String>,
    work_order_id: &'a Option<String>,
    score: Option<u8>,
    scale: Option<Scale>,
    comment: Option<&'a str>,
    customer_reasons: &'a [String],
    created_at: DateTime<Utc>,
    due_by: DateTime<Utc>,
    breached: bool,
    closed_at: Option<DateTime<Utc>>,
    resolution: &'a Option<String>,
    root_cause: &'a Option<String>,
    department: &'a Option<String>,
}

/// A task's facts as receivers get them ([`TaskData`]).
pub fn task_data(task: &CallbackTask) -> Value {
    let answer = task.context.answer.as_ref();
    to_value(&TaskData {
        task_id: &task.task_id,
        state: task.state.as_str(),
        reason: task.reason.as_str(),
        reasons: task.reasons.iter().map(|r| r.as_str()).collect(),
        priority: task.priority,
        owner: &task.owner,
        escalated_to: &task.escalated_to,
        customer_id: &task.customer_id,
        customer_name: &task.context.customer.name,
        order_id: &task.context.order_id,
        work_order_id: &task.work_order_id,
        score: answer.map(|a| a.score),
        scale: answer.map(|a| a.scale),
        comment: answer.and_then(|a| a.comment.as_deref()),
        customer_reasons: answer.map(|a| a.reasons.as_slice()).unwrap_or_default(),
        created_at: task.created_at,
        due_by: task.due_by,
        breached: task.breached,
        closed_at: task.closed_at,
        resolution: &task.resolution,
        root_cause: &task.root_cause,
        department: &task.department,
    })
}

/// What `answer.recorded` carries: the answer, and what it was about.
#[derive(Serialize)]
pub struct AnswerData<'a> {
    pub survey_id: &'a str,
    pub customer_id: &'a str,
    pub kind: SurveyKind,
    pub channel: Channel,
    pub scale: Scale,
    pub score: u8,
    pub comment: &'a Option<String>,
    pub reasons: &'a [String],
    pub answered_at: DateTime<Utc>,
    pub agent: &'a Option<String>,
    pub work_order_id: &'a Option<String>,
    pub resurvey: bool,
}

/// What `survey.skipped` carries: which survey, and why (the last reason its
/// timeline gives).
pub fn skipped_data(survey: &Survey) -> Value {
    #[derive(Serialize)]
    struct SkippedData<'a> {
        survey_id: &'a str,
        customer_id: &'a str,
        kind: SurveyKind,
        order_id: &'a Option<String>,
        work_order_id: &'a Option<String>,
        state: SurveyState,
        reason: Option<SkipReason>,
        at: Option<DateTime<Utc>>,
    }
    let last = survey.timeline.last();
    to_value(&SkippedData {
        survey_id: &survey.survey_id,
        customer_id: &survey.customer_id,
        kind: survey.kind,
        order_id: &survey.order_id,
        work_order_id: &survey.work_order_id,
        state: survey.state,
        reason: last.and_then(|t| t.reason),
        at: last.map(|t| t.at),
    })
}

/// A payload as a JSON value (the outbox keeps every event's data alike).
pub fn to_value(data: &impl Serialize) -> Value {
    serde_json::to_value(data).expect("payloads serialize")
}

/// Slack's limits on a header and on a field's text (Block Kit reference).
const SLACK_HEADER_MAX: usize = 150;
const SLACK_FIELD_MAX: usize = 2000;
const SLACK_COMMENT_MAX: usize = 500;

/// A Slack incoming-webhook message (the part of Block Kit this app sends).
#[derive(Serialize)]
pub struct SlackMessage {
    /// What notifications and screen readers show.
    pub text: String,
    pub blocks: Vec<Block>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Block {
    Header {
        text: Text,
    },
    Section {
        #[serde(skip_serializing_if = "Option::is_none")]
        text: Option<Text>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        fields: Vec<Text>,
    },
    Actions {
        elements: Vec<Button>,
    },
}

/// A text object: `plain_text` or `mrkdwn`.
#[derive(Serialize)]
pub struct Text {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emoji: Option<bool>,
}

impl Text {
    fn plain(text: String) -> Text {
        Text {
            kind: "plain_text",
            text,
            emoji: Some(true),
        }
    }

    fn mrkdwn(text: String) -> Text {
        Text {
            kind: "mrkdwn",
            text,
            emoji: None,
        }
    }
}

/// A link button.
#[derive(Serialize)]
pub struct Button {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub text: Text,
    pub url: String,
    pub action_id: &'static str,
}

/// A Slack incoming-webhook message for a task event: a header, the
/// customer's words, the facts as fields, the deadline in each reader's own
/// time (Slack's date token) and a button to the task on the agents' page.
pub fn slack_message(delivery: &Delivery, links: &Links) -> SlackMessage {
    let d = &delivery.data;
    let text = |k: &str| {
        d.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let customer = match d.get("customer_name").and_then(Value::as_str) {
        Some(name) => format!("{name} ({})", text("customer_id")),
        None => text("customer_id"),
    };
    let score = match (
        d.get("score").and_then(Value::as_u64),
        d.get("scale").and_then(Value::as_str),
    ) {
        (Some(s), Some("zero_to_ten")) => Some(format!("{s}/10")),
        (Some(s), Some(_)) => Some(format!("{s}/5")),
        _ => None,
    };
    let reason = text("reason").replace('_', " ");
    let headline = match (delivery.event, &score) {
        (WebhookEvent::TaskBreached, _) => format!("Callback overdue: {reason}"),
        (_, Some(score)) => format!("Callback needed: {reason}, score {score}"),
        (_, None) => format!("Callback needed: {reason}"),
    };
    let due = d
        .get("due_by")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok());
    // Slack shows the date in each reader's own time zone (its own token:
    // not escaped).
    let deadline = match due {
        Some(t) => format!(
            "<!date^{}^{{date_short_pretty}} {{time}}|{} UTC>",
            t.timestamp(),
            crate::date_text::minute(&t.with_timezone(&Utc))
        ),
        None => "—".into(),
    };
    let mut fields = vec![
        ("Customer", slack_escape(&customer)),
        ("Callback by", deadline),
        ("Owner", slack_escape(&text("owner"))),
        (
            "Priority",
            d.get("priority").map(|p| p.to_string()).unwrap_or_default(),
        ),
    ];
    if let Some(order) = d.get("order_id").and_then(Value::as_str) {
        fields.push(("Order", slack_escape(order)));
    }
    if let Some(score) = &score {
        fields.push(("Score", score.clone()));
    }
    let said: Vec<String> = d
        .get("customer_reasons")
        .and_then(Value::as_array)
        .map(|v| {
            v.iter()
                .filter_map(|r| r.as_str())
                .map(|r| r.replace('_', " "))
                .collect()
        })
        .unwrap_or_default();
    if !said.is_empty() {
        fields.push(("Customer said", slack_escape(&said.join(", "))));
    }
    let mut blocks = vec![Block::Header {
        text: Text::plain(clip(&headline, SLACK_HEADER_MAX)),
    }];
    if let Some(comment) = d
        .get("comment")
        .and_then(Value::as_str)
        .filter(|c| !c.trim().is_empty())
    {
        let quoted = format!(
            "> {}",
            slack_escape(&clip(comment, SLACK_COMMENT_MAX)).replace('\n', "\n> ")
        );
        blocks.push(Block::Section {
            text: Some(Text::mrkdwn(quoted)),
            fields: Vec::new(),
        });
    }
    blocks.push(Block::Section {
        text: None,
        fields: fields
            .iter()
            .map(|(label, value)| {
                Text::mrkdwn(clip(&format!("*{label}*\n{value}"), SLACK_FIELD_MAX))
            })
            .collect(),
    });
    let link = format!(
        "{}/queue/page#task-{}",
        links.public_base_url.trim_end_matches('/'),
        text("task_id")
    );
    blocks.push(Block::Actions {
        elements: vec![Button {
            kind: "button",
            text: Text {
                emoji: None,
                ..Text::plain("Open the task".into())
            },
            url: link,
            action_id: "open_task",
        }],
    });
    SlackMessage {
        text: slack_escape(&format!("{headline} — {customer}")),
        blocks,
    }
}

/// Slack's three control characters in text (its "formatting" reference).
pub fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn parse(text: &str) -> Result<Webhooks, String> {
        Webhooks::parse(text)
    }

    #[test]
    fn the_variable_is_checked_with_what_to_fix() {
        assert!(parse("").unwrap().is_empty());
        let ok = format!(
            r#"[{{"url":"https://crm.example/hooks","events":["task.created","answer.recorded"],"secret":"{SECRET}"}},
            {{"url":"https://hooks.slack.com/services/T/B/X","kind":"slack","events":["task.breached"]}}]"#
        );
        let hooks = parse(&ok).unwrap();
        assert_eq!(
            hooks.subscribers(WebhookEvent::AnswerRecorded, None).len(),
            1
        );
        assert_eq!(hooks.subscribers(WebhookEvent::TaskBreached, None).len(), 1);
        assert!(hooks
            .subscribers(WebhookEvent::SurveySkipped, None)
            .is_empty());
        for (bad, says) in [
            (
                r#"[{"url":"ftp://x","events":["task.created"],"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}]"#,
                "https://",
            ),
            (
                r#"[{"url":"https://x","events":[],"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}]"#,
                "events is empty",
            ),
            (
                r#"[{"url":"https://x","events":["task.created"]}]"#,
                "secret is required",
            ),
            (
                r#"[{"url":"https://x","events":["task.created"],"secret":"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}]"#,
                "whsec_",
            ),
            (
                r#"[{"url":"https://x","events":["task.created"],"secret":"whsec_c2hvcnQ="}]"#,
                "24 to 64",
            ),
            (
                r#"[{"url":"https://x","events":["task.opened"],"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}]"#,
                "unknown variant",
            ),
            (
                r#"[{"url":"https://x","kind":"slack","events":["answer.recorded"]}]"#,
                "Slack endpoints take",
            ),
            (r#"{"url":"https://x"}"#, "JSON list"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn a_failed_delivery_backs_off_then_gives_up_and_a_2xx_ends_it() {
        let hooks = parse(&format!(
            r#"[{{"url":"https://crm.example/h","events":["task.created"],"secret":"{SECRET}"}}]"#
        ))
        .unwrap();
        let endpoint = hooks.endpoint("https://crm.example/h").unwrap();
        let t0: DateTime<Utc> = "2026-12-01T10:00:00Z".parse().unwrap();
        let mut d = Delivery::new(WebhookEvent::TaskCreated, "ct_1", endpoint, json!({}), t0);
        assert!(d.is_due(t0));
        let mut now = t0;
        let mut waits = Vec::new();
        while d.is_open() {
            d = d.after_attempt(&AttemptResult::Answered(503), now);
            if let Some(next) = d.next_attempt_at {
                assert!(!d.is_due(now));
                waits.push((next - now).num_minutes());
                now = next;
            }
        }
        assert_eq!(waits, [1, 5, 30, 120, 300, 600, 600]);
        assert_eq!(
            (d.status, d.attempts, d.last_status),
            (DeliveryStatus::Failed, 8, Some(503))
        );
        let ok = Delivery::new(WebhookEvent::TaskCreated, "ct_1", endpoint, json!({}), t0)
            .after_attempt(&AttemptResult::Failed("timed out".into()), t0)
            .after_attempt(&AttemptResult::Answered(204), t0 + Duration::minutes(1));
        assert_eq!(
            (ok.status, ok.is_open(), ok.last_error),
            (DeliveryStatus::Delivered, false, None)
        );
        // The same event, subject and endpoint: the same id.
        assert_eq!(
            ok.id,
            Delivery::new(
                WebhookEvent::TaskCreated,
                "ct_1",
                endpoint,
                json!({"x":1}),
                now
            )
            .id
        );
        assert_ne!(
            ok.id,
            Delivery::new(WebhookEvent::TaskClosed, "ct_1", endpoint, json!({}), t0).id
        );
    }

    #[test]
    fn a_standard_delivery_is_signed_over_id_timestamp_and_body() {
        use base64::Engine;
        use hmac::{Hmac, Mac};
        let hooks = parse(&format!(
            r#"[{{"url":"https://crm.example/h","events":["task.created"],"secret":"{SECRET}"}}]"#
        ))
        .unwrap();
        let endpoint = hooks.endpoint("https://crm.example/h").unwrap();
        let t0: DateTime<Utc> = "2026-12-01T10:00:00Z".parse().unwrap();
        let d = Delivery::new(
            WebhookEvent::TaskCreated,
            "ct_1",
            endpoint,
            json!({"task_id":"ct_1"}),
            t0,
        );
        let links = Links {
            public_base_url: "https://app.example",
        };
        let now = t0 + Duration::seconds(90);
        let r = request(&d, endpoint, &links, now).unwrap();
        let header = |n: &str| {
            r.headers
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert_eq!(header("webhook-id"), d.id);
        assert_eq!(header("webhook-timestamp"), now.timestamp().to_string());
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(
            body,
            json!({"type":"task.created","timestamp":"2026-12-01T10:00:00Z","data":{"task_id":"ct_1"}})
        );
        // Checked the way a receiver's library checks it.
        let key = base64::engine::general_purpose::STANDARD
            .decode(&SECRET[6..])
            .unwrap();
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
        mac.update(format!("{}.{}.", d.id, now.timestamp()).as_bytes());
        mac.update(&r.body);
        let expected =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(header("webhook-signature"), format!("v1,{expected}"));
    }

    #[test]
    fn a_receivers_url_splits_as_a_request_names_it() {
        let parts = |u| url_parts(u).map(|(s, a, p)| format!("{s} {a} {p}"));
        assert_eq!(
            parts("https://crm.example/hooks?x=1#top").unwrap(),
            "https crm.example /hooks?x=1"
        );
        assert_eq!(
            parts("http://127.0.0.1:8080").unwrap(),
            "http 127.0.0.1:8080 /"
        );
        assert_eq!(
            parts("https://crm.example?x=1").unwrap(),
            "https crm.example /?x=1"
        );
        for bad in [
            "ftp://x/y",
            "https://",
            "https:///path",
            "crm.example/h",
            "https://u:p@x/h",
        ] {
            assert_eq!(parts(bad), None, "{bad}");
        }
    }

    #[test]
    fn slack_text_escapes_its_control_characters_and_clips() {
        assert_eq!(slack_escape("<b>&co</b>"), "&lt;b&gt;&amp;co&lt;/b&gt;");
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("abc", 4), "abc");
    }
}
