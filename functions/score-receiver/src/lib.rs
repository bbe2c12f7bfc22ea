//! score-receiver: the customer's survey page and answer, and the summary report.
//!
//! Routes: `GET|POST /s/:token`, `GET /reports/summary`, `GET /reports/integrity`,
//! `DELETE /customers/:customer_id`. A GET never records anything (mail
//! scanners open links); the first answer to a survey wins across all its
//! channels' links; a low or dropping answer is handed to the escalator at once
//! (through an outbox when it cannot take it), a notable one (a thank-you call)
//! through an hourly log its tick reads, so neither is ever lost.
//!
//! An answer is recorded by `revisit_shared::flows::answer::record_answer`.

mod page;

use chrono::{DateTime, NaiveDate, Utc};
use std::cell::OnceCell;

use revisit_shared::answer::{Answer, History};
use revisit_shared::flows::answer::{parse_history, record_answer, Recording, Submission};
use revisit_shared::flows::erasure::erase_customer;
use revisit_shared::flows::report::{read_tallies, summary_report};
use revisit_shared::i18n::{texts, Lang};
use revisit_shared::integrity::{self, device_id};
use revisit_shared::keys;
use revisit_shared::routes::receiver::{CUSTOMER, INTEGRITY, LINK, SUMMARY};
use revisit_shared::signing::LinkToken;
use revisit_shared::spin::{self as shell, SpinStore};
use revisit_shared::storage::{decode_counter, Storage, StorageExt};
use revisit_shared::survey::{Contact, Survey};
use revisit_shared::task::{answer_escalation, answer_reasons, plan_task, DeferredEscalation};
use revisit_shared::ApiError;
use serde::Deserialize;
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: Request) -> Response {
    let route = shell::matched_route(&req);
    match (route.as_str(), req.method()) {
        (LINK, Method::Get) => show(&req),
        (LINK, Method::Post) => answer(&req).await,
        (LINK, _) => shell::error(&ApiError::method_not_allowed("GET or POST")),
        (SUMMARY, Method::Get) => shell::render(summary(&req)),
        (INTEGRITY, Method::Get) => shell::render(integrity_report(&req)),
        (SUMMARY | INTEGRITY, _) => shell::error(&ApiError::method_not_allowed("GET")),
        (CUSTOMER, Method::Delete) => shell::render(erase(&req)),
        (CUSTOMER, _) => shell::error(&ApiError::method_not_allowed("DELETE")),
        _ => shell::error(&ApiError::not_found("no such endpoint")),
    }
}

/// What a link leads to, once the token checks out: the survey and the rate
/// counters (one batch read). The customer's contact is read only when
/// something needs it: a page in their language, a callback hand-off.
struct Opened {
    token: LinkToken,
    survey: Survey,
    store: SpinStore,
    /// This minute's rejected posts to the link (see [`LINK_REJECTIONS_PER_MINUTE`]).
    link_rejections: (String, i64),
    contact: OnceCell<Contact>,
}

impl Opened {
    /// Count a post that recorded nothing.
    fn reject(&self) {
        let _ = self.store.increment(&self.link_rejections.0, 1);
    }

    /// The customer's contact record (read once), or a bare one.
    fn contact(&self) -> &Contact {
        self.contact.get_or_init(|| {
            self.store
                .get_json(&keys::contact(&self.survey.customer_id))
                .ok()
                .flatten()
                .unwrap_or_else(|| Contact {
                    customer_id: self.survey.customer_id.clone(),
                    ..Default::default()
                })
        })
    }

    fn lang(&self) -> Lang {
        Lang::from_locale(self.contact().locale.as_deref())
    }
}

/// Guessing tokens from one network: this many failures a minute, then 429.
const NETWORK_FAILURES_PER_MINUTE: i64 = 30;
/// Posts to one survey link that record nothing (already answered, invalid)
/// allowed a minute before 429.
const LINK_REJECTIONS_PER_MINUTE: i64 = 60;

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
        ip.rsplit_once('.').map_or(ip, |(net, _)| net).to_string()
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
    let not_found = || {
        shell::html(
            404,
            page::message(Lang::En, merchant, texts(Lang::En).not_found),
        )
    };
    let store = SpinStore::open().map_err(|e| shell::error(&e))?;
    let now = shell::now();
    let failures_key = keys::rate(&format!("net/{}", network(req)), &minute(now));
    let secret = shell::variable("link_secret").map_err(|e| shell::error(&e))?;
    let token = shell::path_param(req, "token")
        .ok()
        .and_then(|t| LinkToken::decode(&t, &secret));
    let Some(token) = token else {
        // A forged or mangled token: one increment both counts and checks.
        return Err(match store.increment(&failures_key, 1) {
            Ok(n) if n > NETWORK_FAILURES_PER_MINUTE => too_many(now),
            _ => not_found(),
        });
    };
    let link_key = keys::rate(&format!("link/{}", token.survey_id), &minute(now));
    let store_error = |e: revisit_shared::storage::StoreError| shell::error(&e.into());
    let first = store
        .get_many(&[
            failures_key.clone(),
            keys::survey(&token.survey_id),
            link_key.clone(),
        ])
        .map_err(store_error)?;
    let counter = |v: &Option<Vec<u8>>| v.as_deref().map(decode_counter).unwrap_or(0);
    if counter(&first[0]) >= NETWORK_FAILURES_PER_MINUTE {
        return Err(too_many(now));
    }
    let Some(survey) = first[1]
        .as_deref()
        .and_then(|b| serde_json::from_slice::<Survey>(b).ok())
    else {
        let _ = store.increment(&failures_key, 1);
        return Err(not_found());
    };
    Ok(Opened {
        token,
        survey,
        store,
        link_rejections: (link_key, counter(&first[2])),
        contact: OnceCell::new(),
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
    // The contact (for the language) and the history (answered already?) in one read.
    let customer = &o.survey.customer_id;
    let read = match o
        .store
        .get_many(&[keys::contact(customer), keys::history(customer)])
    {
        Ok(r) => r,
        Err(e) => return shell::error(&e.into()),
    };
    if let Some(c) = read[0]
        .as_deref()
        .and_then(|b| serde_json::from_slice(b).ok())
    {
        let _ = o.contact.set(c);
    }
    let lang = o.lang();
    let history = match parse_history(read[1].as_deref()) {
        Ok(h) => h,
        Err(e) => return shell::error(&e),
    };
    if shell::now() >= o.survey.expires_at {
        return shell::html(410, page::message(lang, &merchant, texts(lang).expired));
    }
    if let Some(existing) = history.answer_to(&o.survey.survey_id) {
        return shell::html(200, page::already_answered(lang, &merchant, existing));
    }
    let preselect = shell::query_param(req, "score").and_then(|s| s.parse::<u8>().ok());
    shell::html(
        200,
        page::question(lang, &merchant, &o.survey, preselect, None),
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
    // Pages speak the customer's language (one read); JSON needs no contact.
    let lang = || if json { Lang::En } else { o.lang() };
    let fail = |status: u16, e: ApiError, html: &dyn Fn(Lang) -> String| {
        if json {
            shell::error(&ApiError { status, ..e })
        } else {
            shell::html(status, html(o.lang()))
        }
    };
    let now = shell::now();
    if now >= o.survey.expires_at {
        return fail(
            410,
            ApiError::new(410, "expired", "this survey link has expired"),
            &|l| page::message(l, &merchant, texts(l).expired),
        );
    }
    if o.link_rejections.1 >= LINK_REJECTIONS_PER_MINUTE {
        return too_many(now);
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
    let submission = Submission {
        score: submitted.score.as_deref(),
        comment: submitted.comment.as_deref(),
        reasons: &submitted.reasons,
    };
    let recording = record_answer(
        &o.store,
        &o.survey,
        o.token.channel,
        &submission,
        &device,
        now,
    );
    let (answer, before) = match recording {
        Ok(Recording::Recorded { answer, before }) => (answer, before),
        Ok(Recording::AlreadyAnswered { existing, before }) => {
            o.reject();
            // Possibly the retry of a request that failed after recording: hand
            // the answer over again (the escalator keeps one task per answer).
            if let Err(e) = escalate(&o, &before, &existing, now).await {
                return shell::error(&e);
            }
            return conflict(json, lang(), &merchant, &existing);
        }
        Ok(Recording::LostRace { existing }) => {
            return conflict(json, lang(), &merchant, &existing)
        }
        Ok(Recording::Invalid(e)) => {
            o.reject();
            let message = e.message.clone();
            return fail(422, e, &|l| {
                page::question(l, &merchant, &o.survey, None, Some(&message))
            });
        }
        Err(e) => return shell::error(&e),
    };
    match escalate(&o, &before, &answer, now).await {
        Ok(callback_by) => {
            if json {
                shell::json(
                    200,
                    &serde_json::json!({"recorded": true, "survey_id": answer.survey_id, "score": answer.score,
                        "channel": answer.channel, "callback_by": callback_by}),
                )
            } else {
                let tz = shell::contact_rules()
                    .map(|r| r.place(o.contact(), now).tz)
                    .unwrap_or(chrono_tz::UTC);
                shell::html(
                    200,
                    page::thanks(
                        o.lang(),
                        &merchant,
                        callback_by.map(|t| t.with_timezone(&tz)),
                    ),
                )
            }
        }
        // The answer is recorded and counted; the hand-off could be neither
        // delivered nor kept. The retry (a 409) hands it over again.
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

/// Hand an answer that needs a human to the escalator (judged against the
/// history `before` it). Returns when a callback is due, if one is. A
/// thank-you call is not urgent: it is left in an hourly log for the
/// escalator's tick (`DeferredEscalation`) rather than called for while the
/// customer waits.
async fn escalate(
    o: &Opened,
    before: &History,
    answer: &Answer,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    let survey = &o.survey;
    let (reasons, reopens) = answer_reasons(survey, before, answer);
    if reasons.is_empty() {
        return Ok(None);
    }
    if reopens.is_none() && reasons.iter().all(|r| r.is_delight()) {
        let deferred = DeferredEscalation {
            survey_id: survey.survey_id.clone(),
            reasons,
        };
        o.store.append_to_log(
            &keys::deferred_escalations(&keys::hour_bucket(now)),
            &serde_json::to_string(&deferred).unwrap_or_default(),
        )?;
        return Ok(None);
    }
    let question = texts(o.lang()).question(answer.scale, answer.kind, &merchant());
    let request = answer_escalation(
        survey,
        o.contact(),
        before,
        answer,
        (reasons, reopens),
        Some(question),
    );
    shell::hand_off(&o.store, &request).await?;
    let policy = shell::escalation_policy()?;
    Ok(plan_task(&request, &policy, now).map(|t| t.due_by))
}

/// `GET /reports/integrity`: signals of coached or forged scores.
fn integrity_report(req: &Request) -> Result<Response, ApiError> {
    shell::require_admin(req)?;
    let store = SpinStore::open()?;
    let today = shell::now().date_naive();
    let days: Vec<NaiveDate> = (0..integrity::STAFF_WINDOW_DAYS)
        .rev()
        .map(|d| today - chrono::Duration::days(d))
        .collect();
    let tallies = read_tallies(&store, &days)?;
    Ok(shell::json(
        200,
        &revisit_shared::flows::integrity::report(&store, &tallies)?,
    ))
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
    let store = SpinStore::open()?;
    let report = summary_report(&store, from, to, &group_by, MAX_REPORT_DAYS)?;
    Ok(shell::json(200, &report))
}
