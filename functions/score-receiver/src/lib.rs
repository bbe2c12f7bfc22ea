//! score-receiver: the customer's survey page and answer, and the summary report.
//!
//! Routes: `GET|POST /s/:token`, `GET /reports/summary`. A GET never records
//! anything (mail scanners open links); the first answer to a survey wins across
//! all its channels' links; a low, dropping or notable answer is handed to the
//! escalator through an outbox, so the hand-off is never lost.

mod page;

use chrono::{DateTime, NaiveDate, Utc};
use revisit_shared::answer::{classify, validate_answer, Answer, History, HistoryEntry};
use revisit_shared::erasure::erase_customer;
use revisit_shared::i18n::{texts, Lang};
use revisit_shared::integrity::{self, device_id, AnswerSignals};
use revisit_shared::keys;
use revisit_shared::policy::Channel;
use revisit_shared::report::{
    answer_metrics, bump_summary, days, dimension_index_key, summary_keys, summary_row,
};
use revisit_shared::signing::LinkToken;
use revisit_shared::spin::{self as shell, SpinStore};
use revisit_shared::storage::{Storage, StorageExt, Update};
use revisit_shared::survey::{Contact, Survey, SurveyState};
use revisit_shared::task::{plan_task, EscalationRequest, TaskReason};
use revisit_shared::window::WorkOrder;
use revisit_shared::ApiError;
use serde::Deserialize;
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: Request) -> Response {
    let route = req
        .header("spin-matched-route")
        .and_then(|h| h.as_str())
        .unwrap_or("")
        .to_string();
    match (route.as_str(), req.method()) {
        ("/s/:token", Method::Get) => show(&req),
        ("/s/:token", Method::Post) => answer(&req).await,
        ("/s/:token", _) => shell::error(&ApiError::method_not_allowed("GET or POST")),
        ("/reports/summary", Method::Get) => shell::render(summary(&req)),
        ("/reports/integrity", Method::Get) => shell::render(integrity_report(&req)),
        ("/reports/summary" | "/reports/integrity", _) => {
            shell::error(&ApiError::method_not_allowed("GET"))
        }
        ("/customers/:customer_id", Method::Delete) => shell::render(erase(&req)),
        ("/customers/:customer_id", _) => shell::error(&ApiError::method_not_allowed("DELETE")),
        _ => shell::error(&ApiError::not_found("no such endpoint")),
    }
}

/// What a link leads to, once the token checks out.
struct Opened {
    token: LinkToken,
    survey: Survey,
    lang: Lang,
    store: SpinStore,
    contact: Contact,
}

/// Guessing tokens from one network: this many failures a minute, then 429.
const NETWORK_FAILURES_PER_MINUTE: i64 = 30;
/// Posts to one survey link a minute before 429.
const LINK_POSTS_PER_MINUTE: i64 = 60;

fn minute(now: chrono::DateTime<chrono::Utc>) -> String {
    now.format("%Y%m%d%H%M").to_string()
}

/// The client's network: an IPv4 /24 or an IPv6 /64 (never stored as such: hashed).
fn network(req: &Request) -> String {
    let addr = req
        .header("spin-client-addr")
        .and_then(|h| h.as_str())
        .unwrap_or("");
    let ip = addr
        .rsplit_once(':')
        .map(|(ip, _)| ip)
        .unwrap_or(addr)
        .trim_matches(['[', ']']);
    let net = if ip.contains('.') {
        ip.rsplitn(2, '.').nth(1).unwrap_or(ip).to_string()
    } else {
        ip.split(':').take(4).collect::<Vec<_>>().join(":")
    };
    revisit_shared::signing::derive_id("net", &[&net])
}

fn too_many(now: chrono::DateTime<chrono::Utc>) -> Response {
    use chrono::Timelike;
    let e = ApiError::new(
        429,
        "rate_limited",
        "too many attempts; wait a minute and try again",
    );
    let mut r = shell::error(&e);
    r.set_header("retry-after", (60 - now.second()).max(1).to_string());
    r
}

/// Decode the token and load the survey; the HTML error page otherwise.
/// Failed look-ups are counted per network, and a network that keeps failing is
/// told to wait (`429`), so tokens cannot be guessed at speed.
fn open(req: &Request, merchant: &str) -> Result<Opened, Response> {
    let not_found = |lang| shell::html(404, page::message(lang, merchant, texts(lang).not_found));
    let store = SpinStore::open().map_err(|e| shell::error(&e))?;
    let now = shell::now();
    let failures_key = keys::rate(&format!("net/{}", network(req)), &minute(now));
    if store.counter(&failures_key).unwrap_or(0) >= NETWORK_FAILURES_PER_MINUTE {
        return Err(too_many(now));
    }
    let failed = |store: &SpinStore| {
        let _ = store.increment(&failures_key, 1);
        not_found(Lang::En)
    };
    let Ok(token) = shell::path_param(req, "token") else {
        return Err(failed(&store));
    };
    let secret = shell::variable("link_secret").map_err(|e| shell::error(&e))?;
    let Some(token) = LinkToken::decode(&token, &secret) else {
        return Err(failed(&store));
    };
    let survey: Survey = match store.get_json(&keys::survey(&token.survey_id)) {
        Ok(Some(s)) => s,
        Ok(None) => return Err(failed(&store)),
        Err(e) => return Err(shell::error(&e.into())),
    };
    let contact: Contact = store
        .get_json(&keys::contact(&survey.customer_id))
        .ok()
        .flatten()
        .unwrap_or_else(|| Contact {
            customer_id: survey.customer_id.clone(),
            ..Default::default()
        });
    let lang = Lang::from_locale(contact.locale.as_deref());
    Ok(Opened {
        token,
        survey,
        lang,
        store,
        contact,
    })
}

fn merchant() -> String {
    shell::optional_variable("merchant_name").unwrap_or_else(|| "Revisit".into())
}

/// `GET /s/:token`: the question page (or what was already answered).
fn show(req: &Request) -> Response {
    let merchant = merchant();
    let o = match open(req, &merchant) {
        Ok(o) => o,
        Err(resp) => return resp,
    };
    let now = shell::now();
    if now >= o.survey.expires_at {
        return shell::html(410, page::message(o.lang, &merchant, texts(o.lang).expired));
    }
    if let Ok(Some(existing)) = o
        .store
        .get_json::<Answer>(&keys::answer(&o.survey.survey_id))
    {
        return shell::html(200, page::already_answered(o.lang, &merchant, &existing));
    }
    let preselect = shell::query_param(req, "score").and_then(|s| s.parse::<u8>().ok());
    shell::html(
        200,
        page::question(o.lang, &merchant, &o.survey, preselect, None),
    )
}

#[derive(Deserialize)]
struct JsonAnswer {
    score: Option<serde_json::Value>,
    #[serde(default)]
    comment: Option<String>,
    #[serde(default)]
    reasons: Vec<String>,
}

struct Submitted {
    score: Option<String>,
    comment: Option<String>,
    reasons: Vec<String>,
    wants_json: bool,
}

fn parse_submission(req: &Request) -> Result<Submitted, ApiError> {
    let body = shell::body(req)?;
    let content_type = req
        .header("content-type")
        .and_then(|h| h.as_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("application/json") {
        let a: JsonAnswer = revisit_shared::error::parse_json(body)?;
        let score = a.score.map(|v| match v {
            serde_json::Value::String(s) => s,
            other => other.to_string(),
        });
        return Ok(Submitted {
            score,
            comment: a.comment,
            reasons: a.reasons,
            wants_json: true,
        });
    }
    let mut s = Submitted {
        score: None,
        comment: None,
        reasons: Vec::new(),
        wants_json: false,
    };
    for (k, v) in form_urlencoded::parse(body) {
        match k.as_ref() {
            "score" => s.score = Some(v.into_owned()),
            "comment" => s.comment = Some(v.into_owned()),
            "reasons" => s.reasons.push(v.into_owned()),
            _ => {}
        }
    }
    let accept = req.header("accept").and_then(|h| h.as_str()).unwrap_or("");
    s.wants_json = accept.contains("application/json") && !accept.contains("text/html");
    Ok(s)
}

/// `POST /s/:token`: first answer wins (200); again → 409; bad score → 422.
async fn answer(req: &Request) -> Response {
    let merchant = merchant();
    let o = match open(req, &merchant) {
        Ok(o) => o,
        Err(resp) => return resp,
    };
    let submitted = match parse_submission(req) {
        Ok(s) => s,
        Err(e) => return shell::error(&e),
    };
    let json = submitted.wants_json;
    let fail = |status: u16, e: ApiError, html: String| {
        if json {
            shell::error(&ApiError { status, ..e })
        } else {
            shell::html(status, html)
        }
    };
    let now = shell::now();
    let t = texts(o.lang);
    if now >= o.survey.expires_at {
        return fail(
            410,
            ApiError::new(410, "expired", "this survey link has expired"),
            page::message(o.lang, &merchant, t.expired),
        );
    }
    let link_posts = o.store.increment(
        &keys::rate(&format!("link/{}", o.survey.survey_id), &minute(now)),
        1,
    );
    if link_posts.is_ok_and(|n| n > LINK_POSTS_PER_MINUTE) {
        return too_many(now);
    }
    let answer_key = keys::answer(&o.survey.survey_id);
    match o.store.get_json::<Answer>(&answer_key) {
        Ok(Some(existing)) => return conflict(json, o.lang, &merchant, &existing),
        Ok(None) => {}
        Err(e) => return shell::error(&e.into()),
    }
    let (score, comment, reasons) = match validate_answer(
        o.survey.scale,
        submitted.score.as_deref(),
        submitted.comment.as_deref(),
        &submitted.reasons,
    ) {
        Ok(v) => v,
        Err(e) => {
            let html = page::question(o.lang, &merchant, &o.survey, None, Some(&e.message));
            return fail(422, e, html);
        }
    };
    let answer = Answer {
        survey_id: o.survey.survey_id.clone(),
        channel: o.token.channel,
        kind: o.survey.kind,
        scale: o.survey.scale,
        score,
        comment,
        reasons,
        answered_at: now,
    };
    match o.store.create_json(&answer_key, &answer) {
        Ok(true) => {}
        Ok(false) => {
            let existing = o
                .store
                .get_json::<Answer>(&answer_key)
                .ok()
                .flatten()
                .unwrap_or(answer);
            return conflict(json, o.lang, &merchant, &existing);
        }
        Err(e) => return shell::error(&e.into()),
    }
    let device = device_id(
        &shell::variable("link_secret").unwrap_or_default(),
        req.header("spin-client-addr")
            .and_then(|h| h.as_str())
            .unwrap_or(""),
        req.header("user-agent")
            .and_then(|h| h.as_str())
            .unwrap_or(""),
    );
    match after_answer(&o.store, &o.survey, &o.contact, &answer, &device, now).await {
        Ok(callback_by) => {
            if json {
                shell::json(
                    200,
                    &serde_json::json!({"recorded": true, "survey_id": answer.survey_id, "score": answer.score,
                        "channel": answer.channel, "callback_by": callback_by}),
                )
            } else {
                let tz = shell::contact_rules()
                    .map(|r| r.place(&o.contact, now).tz)
                    .unwrap_or(chrono_tz::UTC);
                shell::html(
                    200,
                    page::thanks(o.lang, &merchant, callback_by.map(|t| t.with_timezone(&tz))),
                )
            }
        }
        // The answer itself is stored; what failed is bookkeeping a retry cannot repeat.
        Err(e) => shell::error(&e),
    }
}

fn conflict(json: bool, lang: Lang, merchant: &str, existing: &Answer) -> Response {
    if json {
        shell::json(
            409,
            &serde_json::json!({"error": {"code": "already_answered", "message": "this survey was already answered; the first answer counts"},
                "answer": {"score": existing.score, "comment": existing.comment, "answered_at": existing.answered_at, "channel": existing.channel}}),
        )
    } else {
        shell::html(409, page::already_answered(lang, merchant, existing))
    }
}

/// Everything after the answer is stored: survey state, history, counters, and
/// the hand-off to the escalator. Returns when a callback is due, if one is.
async fn after_answer(
    store: &SpinStore,
    survey: &Survey,
    contact: &Contact,
    answer: &Answer,
    device: &str,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    let completed_at = match &survey.work_order_id {
        Some(w) => store
            .get_json::<WorkOrder>(&keys::work_order(w))?
            .and_then(|w| w.completed_at),
        None => None,
    };
    integrity::record(
        store,
        &AnswerSignals {
            survey_id: &survey.survey_id,
            customer_id: &survey.customer_id,
            device,
            agent: survey.agent_id.as_deref(),
            top_silent: answer.scale.is_top(answer.score) && answer.comment.is_none(),
            completed_at,
            answered_at: now,
        },
    )?;
    store.update_json::<Survey, _>(&keys::survey(&survey.survey_id), |cur| match cur {
        Some(mut s) if s.state != SurveyState::Answered => {
            s.state = SurveyState::Answered;
            s.note(
                now,
                "answered",
                None,
                Some(format!(
                    "score {} via {}",
                    answer.score,
                    answer.channel.as_str()
                )),
            );
            Update::Write(s)
        }
        _ => Update::Keep,
    })?;
    let mut before = History::default();
    store.update_json::<History, _>(&keys::history(&survey.customer_id), |cur| {
        let h = cur.unwrap_or_default();
        before = h.clone();
        let mut next = h;
        next.record(HistoryEntry {
            survey_id: survey.survey_id.clone(),
            scale: answer.scale,
            score: answer.score,
            at: now,
        });
        Update::Write(next)
    })?;
    let day = now.format("%Y%m%d").to_string();
    let dims = [
        ("all", "all".to_string()),
        ("channel", answer.channel.as_str().to_string()),
        ("kind", answer.kind.as_str().to_string()),
        (
            "agent",
            survey.agent_id.clone().unwrap_or_else(|| "none".into()),
        ),
    ];
    for metric in answer_metrics(answer.scale, answer.score) {
        bump_summary(store, &day, &dims, metric)?;
    }

    // The contact record was read when the link was opened: no second round trip.
    let lang = Lang::from_locale(contact.locale.as_deref());
    let mut request = EscalationRequest {
        source_id: survey.survey_id.clone(),
        reasons: vec![],
        contact: contact.clone(),
        answer: Some(answer.clone()),
        question: Some(texts(lang).question(answer.scale, answer.kind, &merchant())),
        order_id: survey.order_id.clone(),
        agent_id: survey.agent_id.clone(),
        work_order_id: survey.work_order_id.clone(),
        history: before.answers.clone(),
        prior_complaints: before.complaints.len() as u32,
        reopens: None,
        occurred_at: now,
    };
    if let Some(task_id) = &survey.resurvey_of {
        // The "did we fix it?" answer: it measures recovery, or reopens the task.
        let owner = survey.agent_id.clone().unwrap_or_default();
        let mut metrics = vec!["resurveys_answered"];
        if answer.scale.is_satisfied(answer.score) {
            metrics.push("recovered");
        }
        for m in metrics {
            store.increment(&keys::loop_counter(m), 1)?;
            store.increment(&keys::loop_counter(&format!("owner/{owner}/{m}")), 1)?;
        }
        if !answer.scale.is_low(answer.score) {
            return Ok(None);
        }
        request.reasons = vec![TaskReason::LowScore];
        request.reopens = Some(task_id.clone());
    } else {
        request.reasons = classify(&before, answer.scale, answer.score);
        if request.reasons.is_empty() {
            return Ok(None);
        }
    }
    shell::hand_off(store, &request).await?;
    if request.reasons.iter().all(|r| r.is_delight()) {
        return Ok(None);
    }
    let policy = shell::escalation_policy()?;
    Ok(plan_task(&request, &policy, now).map(|t| t.due_by))
}

/// `GET /reports/integrity`: signals of coached or forged scores.
fn integrity_report(req: &Request) -> Result<Response, ApiError> {
    shell::require_admin(req)?;
    let store = SpinStore::open()?;
    Ok(shell::json(200, &integrity::report(&store)?))
}

/// `DELETE /customers/:customer_id`: erase the customer's personal data.
fn erase(req: &Request) -> Result<Response, ApiError> {
    shell::require_admin(req)?;
    let id = shell::path_param(req, "customer_id")?;
    let store = SpinStore::open()?;
    Ok(shell::json(200, &erase_customer(&store, &id)?))
}

const MAX_REPORT_DAYS: i64 = 92;

/// `GET /reports/summary?from=&to=&group_by=day|agent|channel|kind`.
fn summary(req: &Request) -> Result<Response, ApiError> {
    shell::require_admin(req)?;
    let date = |name: &str| -> Result<NaiveDate, ApiError> {
        let v = shell::query_param(req, name)
            .ok_or_else(|| ApiError::bad_request(format!("`{name}` is required (YYYY-MM-DD)")))?;
        v.parse().map_err(|_| {
            ApiError::bad_request(format!("`{name}` must be a date as YYYY-MM-DD (got {v:?})"))
        })
    };
    let (from, to) = (date("from")?, date("to")?);
    let group_by = shell::query_param(req, "group_by").unwrap_or_else(|| "day".into());
    let days = days(from, to, MAX_REPORT_DAYS).map_err(ApiError::bad_request)?;
    let store = SpinStore::open()?;
    let groups: Vec<String> = match group_by.as_str() {
        "day" => vec![],
        "channel" => [Channel::Email, Channel::Sms, Channel::Whatsapp]
            .iter()
            .map(|c| c.as_str().to_string())
            .collect(),
        "kind" => ["service", "usage", "installation", "product"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        "agent" => {
            let idx: Vec<String> = days
                .iter()
                .map(|d| dimension_index_key(&d.format("%Y%m%d").to_string(), "agent"))
                .collect();
            let mut agents: Vec<String> = store
                .get_many(&idx)?
                .into_iter()
                .flatten()
                .filter_map(|v| serde_json::from_slice::<Vec<String>>(&v).ok())
                .flatten()
                .collect();
            agents.sort();
            agents.dedup();
            agents
        }
        other => {
            return Err(ApiError::bad_request(format!(
                "group_by must be day, agent, channel or kind (got {other:?})"
            )))
        }
    };
    let rows = if group_by == "day" {
        let keys: Vec<String> = days
            .iter()
            .flat_map(|d| summary_keys(*d, "all", "all"))
            .collect();
        let values = store.counters(&keys)?;
        days.iter()
            .zip(values.chunks(7))
            .map(|(d, v)| summary_row(d.to_string(), v))
            .collect::<Vec<_>>()
    } else {
        let dimension = group_by.as_str();
        let days = &days;
        let keys: Vec<String> = groups
            .iter()
            .flat_map(|g| {
                days.iter()
                    .flat_map(move |d| summary_keys(*d, dimension, g))
            })
            .collect();
        let values = store.counters(&keys)?;
        groups
            .iter()
            .zip(values.chunks(7 * days.len()))
            .map(|(g, per_day)| {
                let mut total = [0i64; 7];
                for day in per_day.chunks(7) {
                    for (t, v) in total.iter_mut().zip(day) {
                        *t += v;
                    }
                }
                summary_row(g.clone(), &total)
            })
            .collect()
    };
    let all_keys: Vec<String> = days
        .iter()
        .flat_map(|d| summary_keys(*d, "all", "all"))
        .collect();
    let mut totals = [0i64; 7];
    for day in store.counters(&all_keys)?.chunks(7) {
        for (t, v) in totals.iter_mut().zip(day) {
            *t += v;
        }
    }
    Ok(shell::json(
        200,
        &serde_json::json!({"from": from, "to": to, "group_by": group_by, "rows": rows, "total": summary_row("total".into(), &totals)}),
    ))
}
