//! score-receiver: the customer's survey page and answer, and the summary report.
//!
//! Routes: `GET|POST /s/:token`, `GET /reports/summary`, `GET /reports/integrity`,
//! `GET /reports/findings`, `POST /findings/fixes`, `DELETE /customers/:customer_id`. A GET never records anything (mail
//! scanners open links); the first answer to a survey wins across all its
//! channels' links; a low or dropping answer is promised a call at once, and
//! that call, a thank-you call, and the answer's place in the reports come
//! from the answer log the escalator's tick folds, so none is ever lost and
//! the customer waits for none.
//!
//! An answer is recorded by `revisit_shared::flows::answer::record_answer`.

mod link;
mod page;
mod reply;
mod reports;
mod submission;

use link::{open, Opened};
use reply::{too_many, Reply};
use submission::{parse_submission, Submitted};

use chrono::{DateTime, Utc};

use revisit_shared::answer::{asks_for_reasons, Answer, History};
use revisit_shared::flows::answer::{
    may_need_repair, parse_history, promised_call, record_answer, Recording, Submission,
};
use revisit_shared::flows::erasure::erase_customer;
use revisit_shared::i18n::texts;
use revisit_shared::integrity::device_id;
use revisit_shared::keys;
use revisit_shared::model::LoggedAnswer;
use revisit_shared::routes::receiver::{
    CUSTOMER, FINDINGS_REPORT, FIXES, INTEGRITY, LINK, SUMMARY,
};
use revisit_shared::spin::{self as shell, SpinStore};
use revisit_shared::storage::Storage;
use revisit_shared::ApiError;
use spin_sdk::http::{IncomingRequest, Method, Request, Response, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
fn handle(incoming: IncomingRequest, out: ResponseOutparam) {
    shell::serve(incoming, out, dispatch);
}

fn dispatch(req: Request) -> Response {
    let route = shell::matched_route(&req);
    match (route.as_str(), req.method()) {
        (LINK, Method::Get) => show(&req),
        (LINK, Method::Post) => answer(&req),
        (LINK, _) => shell::error(&ApiError::method_not_allowed("GET or POST")),
        (SUMMARY, Method::Get) => shell::render(reports::summary(&req)),
        (INTEGRITY, Method::Get) => shell::render(reports::integrity(&req)),
        (FINDINGS_REPORT, Method::Get) => shell::render(reports::findings(&req)),
        (FIXES, Method::Post) => shell::render(reports::record_fix(&req)),
        (SUMMARY | INTEGRITY | FINDINGS_REPORT, _) => {
            shell::error(&ApiError::method_not_allowed("GET"))
        }
        (FIXES, _) => shell::error(&ApiError::method_not_allowed("POST")),
        (CUSTOMER, Method::Delete) => shell::render(erase(&req)),
        (CUSTOMER, _) => shell::error(&ApiError::method_not_allowed("DELETE")),
        _ => shell::error(&ApiError::not_found("no such endpoint")),
    }
}

/// The seller's name on the customer's pages (read only for a page: a JSON
/// reply does not show it).
pub(crate) fn merchant() -> String {
    shell::optional_variable("merchant_name").unwrap_or_else(|| "Revisit".into())
}

/// `GET /s/:token`: the question page (or what was already answered).
fn show(req: &Request) -> Response {
    let o = match open(req) {
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
        o.remember_contact(c);
    }
    let lang = o.lang();
    let merchant = merchant();
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
    // `?score=N` (an e-mail's one-tap button) pre-selects N; a low one
    // offers its reasons on this page at once.
    let raw = shell::query_param(req, "score");
    let offered = raw
        .as_ref()
        .map(|_| o.labelled(&shell::low_score_reasons()))
        .unwrap_or_default();
    let low = asks_for_reasons(
        o.survey.scale,
        raw.as_deref(),
        true,
        !offered.is_empty(),
        &[],
    );
    let about = o.about();
    let shown = page::Question {
        about: about.as_deref(),
        preselect: raw.and_then(|s| s.parse::<u8>().ok()),
        reasons: if low.is_some() { &offered } else { &[] },
        error: None,
    };
    shell::html(200, page::question(lang, &merchant, &o.survey, &shown))
}

/// A low score from the page's first step is not recorded yet: the second
/// step asks for reasons (`answer::asks_for_reasons`), carrying the score
/// and the comment.
fn reasons_first(o: &Opened, submitted: &Submitted) -> Option<Response> {
    // Nothing is read for an answer recorded at once (the customer's record
    // only for the page that asks), nor is the policy: it is asked only
    // whether reasons are offered for a low score from the first step.
    let score = asks_for_reasons(
        o.survey.scale,
        submitted.score.as_deref(),
        submitted.step.as_deref() == Some("score"),
        true,
        &submitted.reasons,
    )?;
    let policy = shell::low_score_reasons();
    let offered = o.labelled(&policy);
    if offered.is_empty() {
        return None;
    }
    let about = o.about();
    let comment = submitted.comment.as_deref();
    let step = page::reasons_step(
        o.lang(),
        &merchant(),
        about.as_deref(),
        score,
        comment,
        &offered,
    );
    Some(shell::html(200, step))
}

/// `POST /s/:token`: first answer wins (200); again → 409; bad score → 422.
fn answer(req: &Request) -> Response {
    let o = match open(req) {
        Ok(o) => o,
        Err(resp) => return resp,
    };
    let submitted = match parse_submission(req) {
        Ok(s) => s,
        Err(e) => return shell::error(&e),
    };
    let reply = Reply {
        json: submitted.wants_json,
        opened: &o,
    };
    let now = shell::now();
    if now >= o.survey.expires_at {
        return reply.expired();
    }
    if let Some(step) = reasons_first(&o, &submitted) {
        return step;
    }
    let submission = Submission {
        score: submitted.score.as_deref(),
        comment: submitted.comment.as_deref(),
        reasons: &submitted.reasons,
    };
    let (store, survey, channel) = (&o.store, &o.survey, o.token.channel);
    match record_answer(store, survey, channel, &submission, &device(req, &o), now) {
        Ok(Recording::Recorded {
            answer,
            before,
            logged,
        }) => {
            let callback_by = promise(&o, (&before, &answer, &logged), now).unwrap_or_else(|e| {
                // Recorded, and its call will be made (the answer log holds
                // it): only the promise is left out, not the answer failed.
                eprintln!(
                    "the call promised for survey {} is unknown: {}",
                    o.survey.survey_id, e.message
                );
                None
            });
            reply.recorded(&answer, callback_by)
        }
        Ok(Recording::AlreadyAnswered { .. } | Recording::Invalid(_))
            if o.refuse_after_rejection(now) =>
        {
            too_many(now)
        }
        Ok(Recording::AlreadyAnswered { existing }) => reply.conflict(&existing),
        Ok(Recording::LostRace { existing }) => reply.conflict(&existing),
        Ok(Recording::Invalid(e)) => reply.invalid(e.into()),
        Err(e) => shell::error(&e),
    }
}

/// The answering device: a salted hash of the network and the user agent.
fn device(req: &Request, o: &Opened) -> String {
    let header = |name: &str| req.header(name).and_then(|h| h.as_str()).unwrap_or("");
    let salt = o.link_keys.key(revisit_shared::signing::purpose::DEVICE);
    device_id(&salt, header("spin-client-addr"), header("user-agent"))
}

/// When the customer will be called, if their answer asks for a repair
/// (`flows::answer::promised_call`; the escalator's tick makes the task
/// from the answer log). Their records are read only for an answer that
/// may need one.
fn promise(
    o: &Opened,
    recorded: (&History, &Answer, &LoggedAnswer),
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    if !may_need_repair(recorded.2) {
        return Ok(None);
    }
    let policy = shell::escalation_policy()?;
    let promise = promised_call(&o.store, &o.survey, recorded, &policy, now)?;
    // The reply's language comes from the record just read.
    o.remember_contact(promise.contact);
    Ok(promise.callback_by)
}

/// `DELETE /customers/:customer_id`: erase the customer's personal data.
fn erase(req: &Request) -> Result<Response, ApiError> {
    shell::require_admin(req)?;
    let id = shell::path_param(req, "customer_id")?;
    let store = SpinStore::open()?;
    let erased = erase_customer(&store, &id)?;
    if !erased.found {
        return Err(ApiError::not_found(format!(
            "no customer {id:?} is known here; nothing was erased (check the id the seller's system uses)"
        )));
    }
    Ok(shell::json(200, &erased))
}
