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
.error{color:#a50e0e;font-weight:600}\
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

pub fn question(
    lang: Lang,
    merchant: &str,
    survey: &Survey,
    preselect: Option<u8>,
    error: Option<&str>,
) -> String {
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
        let checked = if preselect == Some(n) { " checked" } else { "" };
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
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", esc(e)))
        .unwrap_or_default();
    let body = format!(
        "{error}<form method=\"post\"><fieldset><legend>{}</legend><div class=\"scale\">{options}</div>{ends}</fieldset>\
<label for=\"comment\">{}</label><textarea id=\"comment\" name=\"comment\" maxlength=\"2000\"></textarea>\
<button type=\"submit\">{}</button></form>",
        esc(&q),
        esc(t.comment_label),
        esc(t.submit)
    );
    layout(lang, merchant, &body)
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
            .replace("{when}", &when.format("%Y-%m-%d %H:%M").to_string()),
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
