//! How the receiver answers a link: JSON for API clients, otherwise a page
//! in the customer's language.

use chrono::{DateTime, Utc};
use revisit_shared::answer::Answer;
use revisit_shared::i18n::{texts, Lang};
use revisit_shared::spin as shell;
use revisit_shared::ApiError;
use spin_sdk::http::Response;

use crate::link::Opened;
use crate::page;

pub fn too_many(now: chrono::DateTime<chrono::Utc>) -> Response {
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

/// The JSON reply to a recorded answer (fields in the order `json!` wrote
/// them; a typed reply spares the answer a map built only to be written).
#[derive(serde::Serialize)]
struct Recorded<'a> {
    callback_by: Option<DateTime<Utc>>,
    channel: revisit_shared::model::Channel,
    recorded: bool,
    score: u8,
    survey_id: &'a str,
}

/// How an answer is answered: JSON, or a page in the customer's language
/// (with the seller's name, read only for a page).
pub struct Reply<'a> {
    pub json: bool,
    pub opened: &'a Opened,
}

impl Reply<'_> {
    /// Pages speak the customer's language (one read); JSON needs no contact.
    fn lang(&self) -> Lang {
        if self.json {
            Lang::En
        } else {
            self.opened.lang()
        }
    }

    pub fn expired(&self) -> Response {
        if self.json {
            return shell::error(&ApiError::new(
                410,
                "expired",
                "this survey link has expired",
            ));
        }
        let l = self.lang();
        shell::html(410, page::message(l, &crate::merchant(), texts(l).expired))
    }

    pub fn invalid(&self, e: ApiError) -> Response {
        if self.json {
            return shell::error(&ApiError { status: 422, ..e });
        }
        let o = self.opened;
        let about = o.about();
        let shown = page::Question {
            about: about.as_deref(),
            preselect: None,
            reasons: &[],
            error: Some(&e.message),
        };
        let page = page::question(self.lang(), &crate::merchant(), &o.survey, &shown);
        shell::html(422, page)
    }

    pub fn conflict(&self, existing: &Answer) -> Response {
        conflict(self.json, self.lang(), existing)
    }

    pub fn recorded(&self, a: &Answer, callback_by: Option<DateTime<Utc>>) -> Response {
        if self.json {
            let body = Recorded {
                callback_by,
                channel: a.channel,
                recorded: true,
                score: a.score,
                survey_id: &a.survey_id,
            };
            return shell::json(200, &body);
        }
        // The customer's zone is looked up only for a callback's time.
        let by = callback_by.map(|t| self.opened.zone().local(t));
        shell::html(200, page::thanks(self.lang(), &crate::merchant(), by))
    }
}

fn conflict(json: bool, lang: Lang, existing: &Answer) -> Response {
    if json {
        shell::json(
            409,
            &serde_json::json!({"error": {"code": "already_answered", "message": "this survey was already answered; the first answer counts"},
                "answer": {"score": existing.score, "comment": existing.comment, "answered_at": existing.answered_at, "channel": existing.channel}}),
        )
    } else {
        shell::html(
            409,
            page::already_answered(lang, &crate::merchant(), existing),
        )
    }
}
