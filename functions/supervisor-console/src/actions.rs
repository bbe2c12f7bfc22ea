//! What the supervisor changes from the console (reassign a callback,
//! cancel or send a survey now: each back to its page with what happened),
//! and the development outbox the default `sender_url` points at.

use revisit_shared::flows::console;
use revisit_shared::routes::console::{CALLBACKS, SURVEYS};
use revisit_shared::spin::{self as shell, SpinStore};
use revisit_shared::ApiError;
use spin_sdk::http::{Request, Response};

use crate::{day, form, lang, supervisor};

/// `POST /console/callbacks/:task_id/owner`: reassign, back to the list.
pub fn reassign(req: &Request) -> Result<Response, ApiError> {
    if supervisor(req)?.is_none() {
        return Err(ApiError::unauthorized("sign in as the supervisor first"));
    }
    let lang = lang(req);
    let id = shell::path_param(req, "task_id")?;
    let owner = form(req)?.remove("owner").unwrap_or_default();
    let policy = shell::survey_policy()?;
    let notice = match console::reassign(
        &SpinStore::open()?,
        &id,
        &owner,
        (&policy, &shell::webhooks()),
        shell::now(),
    ) {
        Ok(t) => format!(
            "{}: {} {}",
            t.task_id,
            lang.t("now owned by", "现由"),
            t.owner
        ),
        Err(e) if e.status < 500 => e.message,
        Err(e) => return Err(e),
    };
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("lang", lang.tag())
        .append_pair("notice", &notice)
        .finish();
    Ok(shell::see_other(&format!("{CALLBACKS}?{q}")))
}

/// `POST /console/surveys/:survey_id/cancel|send`: within the rules; back to
/// the day's page with what happened.
pub fn survey_action(req: &Request, cancel: bool) -> Result<Response, ApiError> {
    if supervisor(req)?.is_none() {
        return Err(ApiError::unauthorized("sign in as the supervisor first"));
    }
    let lang = lang(req);
    let id = shell::path_param(req, "survey_id")?;
    let store = SpinStore::open()?;
    let now = shell::now();
    let notice = if cancel {
        match console::cancel_survey(&store, &id, now)? {
            true => format!("{id}: {}", lang.t("cancelled", "已取消")),
            false => format!(
                "{id}: {}",
                lang.t(
                    "not cancelled: it is no longer planned",
                    "未取消：已不在计划中"
                )
            ),
        }
    } else {
        match console::send_now(&store, &id, &shell::survey_policy()?, now) {
            Ok(console::SendNow::Queued) => format!(
                "{id}: {}",
                lang.t("goes out with the next tick", "将在下一次发送时发出")
            ),
            Ok(console::SendNow::Refused(why)) => {
                format!("{id}: {} {why}", lang.t("not now:", "暂不发送："))
            }
            Err(e) if e.status < 500 => e.message,
            Err(e) => return Err(e),
        }
    };
    let back = day(req).unwrap_or(now.date_naive());
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("lang", lang.tag())
        .append_pair("day", &back.to_string())
        .append_pair("notice", &notice)
        .finish();
    Ok(shell::see_other(&format!("{SURVEYS}?{q}")))
}

/// The development outbox (private, service chaining): what the generic
/// sender would have received, kept for the console.
pub fn hold(req: &Request) -> Result<Response, ApiError> {
    let message: serde_json::Value = revisit_shared::error::parse_json(shell::body(req)?)?;
    console::hold_message(&SpinStore::open()?, message, shell::now())?;
    Ok(shell::json(202, &serde_json::json!({ "held": true })))
}
