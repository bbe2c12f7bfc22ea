//! The survey pages: server-rendered, no JavaScript, readable on a phone,
//! accessible (a fieldset with a legend, real radio inputs with labels, visible
//! focus, strong contrast). Every text that comes from outside is escaped.

use chrono::DateTime;
use html_escape::encode_text as esc;
use revisit_shared::answer::Answer;
use revisit_shared::i18n::{texts, Lang};
use revisit_shared::policy::Scale;
use revisit_shared::survey::Survey;

const STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#111;background:#fff}\
main{max-width:34rem;margin:0 auto;padding:1rem}h1{font-size:1.25rem}\
fieldset{border:0;padding:0;margin:0 0 1rem}legend{font-weight:600;margin-bottom:.5rem}\
.scale{display:flex;flex-wrap:wrap;gap:.4rem}.scale label{flex:1 0 2.6rem}\
.scale input{position:absolute;opacity:0}\
.scale input+span{display:block;text-align:center;padding:.7rem 0;border:2px solid #444;border-radius:.4rem}\
.scale input:checked+span{background:#0b57d0;color:#fff;border-color:#0b57d0}\
.scale input:focus-visible+span{outline:3px solid #e37400;outline-offset:2px}\
.ends{display:flex;justify-content:space-between;font-size:.85rem;color:#333}\
textarea{width:100%;min-height:6rem;font:inherit;border:2px solid #444;border-radius:.4rem;box-sizing:border-box}\
button{font:inherit;font-weight:600;padding:.8rem 1.6rem;border:0;border-radius:.4rem;background:#0b57d0;color:#fff;margin-top:1rem}\
button:focus-visible,textarea:focus-visible{outline:3px solid #e37400;outline-offset:2px}\
.error{color:#a50e0e;font-weight:600}.about{color:#333;margin-top:0}.note{font-size:.9rem;color:#333}\
.reasons label{display:flex;gap:.6rem;align-items:center;padding:.5rem 0;min-height:2.75rem}\
.reasons input{width:1.4rem;height:1.4rem;margin:0;accent-color:#0b57d0}\
.reasons input:focus-visible{outline:3px solid #e37400;outline-offset:2px}\
.vh{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}";

fn layout(lang: Lang, merchant: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{}</title>\
<style>{STYLE}</style></head><body><main><h1>{}</h1>{body}</main></body></html>",
        lang.tag(),
        esc(merchant),
        esc(merchant)
    )
}

pub fn message(lang: Lang, merchant: &str, text: &str) -> String {
    layout(lang, merchant, &format!("<p>{}</p>", esc(text)))
}

/// What the question page shows besides the survey's own question.
pub struct Question<'a> {
    /// What the survey is about (`Opened::about`).
    pub about: Option<&'a str>,
    /// The score `?score=N` pre-selects (an e-mail's one-tap button).
    pub preselect: Option<u8>,
    /// Reasons to offer on this page already (a low pre-selected score), so
    /// the answer takes one tap: `(id, label)`.
    pub reasons: &'a [(String, String)],
    pub error: Option<&'a str>,
}

pub fn question(lang: Lang, merchant: &str, survey: &Survey, shown: &Question) -> String {
    let t = texts(lang);
    let q = t.question(survey.scale, survey.kind, merchant);
    // Both ends of the scale are named in the customer's language: on the
    // page under the numbers, and for a screen reader inside the first and
    // last option (the row under them is hidden from it, so it is read once).
    let (low_end, high_end) = match survey.scale {
        Scale::Nps => (t.not_likely, t.very_likely),
        Scale::Csat => (t.not_satisfied, t.very_satisfied),
    };
    let range: Vec<u8> = survey.scale.range().collect();
    let mut options = String::new();
    for &n in &range {
        let checked = if shown.preselect == Some(n) {
            " checked"
        } else {
            ""
        };
        let end = if Some(&n) == range.first() {
            format!("<span class=\"vh\"> – {}</span>", esc(low_end))
        } else if Some(&n) == range.last() {
            format!("<span class=\"vh\"> – {}</span>", esc(high_end))
        } else {
            String::new()
        };
        options.push_str(&format!(
            "<label><input type=\"radio\" name=\"score\" value=\"{n}\" required{checked}><span>{n}{end}</span></label>"
        ));
    }
    let ends = format!(
        "<div class=\"ends\" aria-hidden=\"true\"><span>{}</span><span>{}</span></div>",
        esc(low_end),
        esc(high_end)
    );
    let error = shown
        .error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", esc(e)))
        .unwrap_or_default();
    // A low score chosen here is asked for reasons on a second step, unless
    // they are offered on this page already.
    let (step, reasons) = match shown.reasons {
        [] => ("score", String::new()),
        offered => ("reasons", reason_choices(t.reasons_legend, offered)),
    };
    let body = format!(
        "{}{error}<form method=\"post\"><input type=\"hidden\" name=\"step\" value=\"{step}\">\
<fieldset><legend>{}</legend><div class=\"scale\">{options}</div>{ends}</fieldset>{reasons}\
<label for=\"comment\">{}</label><textarea id=\"comment\" name=\"comment\" maxlength=\"2000\"></textarea>\
<button type=\"submit\">{}</button></form>",
        about(shown.about),
        esc(&q),
        esc(t.comment_label),
        esc(t.submit)
    );
    layout(lang, merchant, &body)
}

/// The second step after a low score chosen on the page: which reasons, the
/// comment so far, and one button that records the answer. Nothing is
/// recorded until it is pressed, and the page says so.
pub fn reasons_step(
    lang: Lang,
    merchant: &str,
    about_text: Option<&str>,
    score: u8,
    comment: Option<&str>,
    offered: &[(String, String)],
) -> String {
    let t = texts(lang);
    let body = format!(
        "{}<form method=\"post\"><input type=\"hidden\" name=\"step\" value=\"reasons\">\
<input type=\"hidden\" name=\"score\" value=\"{score}\"><p><strong>{}</strong></p>{}\
<label for=\"comment\">{}</label><textarea id=\"comment\" name=\"comment\" maxlength=\"2000\">{}</textarea>\
<p class=\"note\">{}</p><button type=\"submit\">{}</button></form>",
        about(about_text),
        esc(&t.your_score.replace("{score}", &score.to_string())),
        reason_choices(t.reasons_legend, offered),
        esc(t.comment_label),
        esc(comment.unwrap_or("")),
        esc(t.not_sent_yet),
        esc(t.submit)
    );
    layout(lang, merchant, &body)
}

fn about(text: Option<&str>) -> String {
    text.map(|a| format!("<p class=\"about\">{}</p>", esc(a)))
        .unwrap_or_default()
}

/// The reasons as checkboxes (any number, none required).
fn reason_choices(legend: &str, offered: &[(String, String)]) -> String {
    let mut boxes = String::new();
    for (id, label) in offered {
        boxes.push_str(&format!(
            "<label><input type=\"checkbox\" name=\"reasons\" value=\"{}\"><span>{}</span></label>",
            html_escape::encode_double_quoted_attribute(id),
            esc(label)
        ));
    }
    format!(
        "<fieldset class=\"reasons\"><legend>{}</legend>{boxes}</fieldset>",
        esc(legend)
    )
}

/// `callback_by` is in the customer's own zone.
pub fn thanks(
    lang: Lang,
    merchant: &str,
    callback_by: Option<DateTime<chrono::FixedOffset>>,
) -> String {
    let t = texts(lang);
    let text = match callback_by {
        Some(when) => t
            .thanks_low
            .replace("{when}", &revisit_shared::date_text::minute(&when)),
        None => t.thanks.to_string(),
    };
    message(lang, merchant, &text)
}

pub fn already_answered(lang: Lang, merchant: &str, answer: &Answer) -> String {
    let t = texts(lang);
    let comment = answer
        .comment
        .as_deref()
        .map(|c| format!("<blockquote>{}</blockquote>", esc(c)))
        .unwrap_or_default();
    let body = format!(
        "<p>{}</p><p><strong>{}</strong></p>{comment}",
        esc(t.already_answered),
        answer.score
    );
    layout(lang, merchant, &body)
}
