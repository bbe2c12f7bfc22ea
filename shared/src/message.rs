//! The survey message for one channel: its own signed link, the text in the
//! customer's language (an SMS fitted to one segment where it can be), and
//! the address it goes to. Pure: the issuer hands it to a provider or to the
//! generic sender.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::contact::ContactRules;
use crate::event::Event;
use crate::i18n::{texts, Lang};
use crate::model::{derive_id, Channel, Contact, EventType, Survey};
use crate::signing::LinkToken;
use crate::sms::Encoding;

/// One message, as the generic sender receives it (JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SurveyMessage {
    /// Stable per survey and channel: a sender can drop a message it has seen.
    pub message_id: String,
    pub survey_id: String,
    pub channel: Channel,
    pub to: Option<String>,
    pub locale: &'static str,
    pub link: String,
    pub text: String,
    /// E-mail only: the same message as HTML, with the scale's one-tap
    /// buttons (each opens the survey page with its score pre-selected; the
    /// customer confirms there, as a GET records nothing). `text` is its
    /// plain-text part.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    /// SMS only: the text's encoding and how many segments it takes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoding: Option<Encoding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segments: Option<usize>,
}

/// What every message of a seller shares.
pub struct MessageSettings<'a> {
    /// Where links point (`{public_base_url}/s/{token}`).
    pub public_base_url: &'a str,
    pub link_secret: &'a str,
    pub merchant: &'a str,
}

/// The message of `survey` to `contact` on `channel`.
pub fn compose(
    survey: &Survey,
    contact: &Contact,
    channel: Channel,
    settings: &MessageSettings,
) -> SurveyMessage {
    let lang = Lang::from_locale(contact.locale.as_deref());
    let token = LinkToken {
        survey_id: survey.survey_id.clone(),
        channel,
    }
    .encode(settings.link_secret);
    let link = format!(
        "{}/s/{token}",
        settings.public_base_url.trim_end_matches('/')
    );
    let html =
        (channel == Channel::Email).then(|| email_html(lang, survey, settings.merchant, &link));
    let (text, encoding, segments) = if channel == Channel::Sms {
        // One segment when at all possible; the size is reported either way.
        let (text, size) = crate::sms::fit(lang, settings.merchant, &link);
        (text, Some(size.encoding), Some(size.segments))
    } else {
        let text = texts(lang).message(survey.kind, settings.merchant);
        (format!("{text} {link}"), None, None)
    };
    SurveyMessage {
        message_id: derive_id("msg", &[&survey.survey_id, channel.as_str()]),
        survey_id: survey.survey_id.clone(),
        channel,
        to: contact.address(channel).map(str::to_string),
        locale: lang.tag(),
        link,
        text,
        html,
        encoding,
        segments,
    }
}

/// The e-mail's HTML part: the message, the question, and one button per
/// score linking to the survey page with `?score=N` (the page pre-selects
/// it, and offers a low score's reasons at once). Laid out with tables and
/// inline styles, as mail clients need; every outside text escaped.
pub fn email_html(lang: Lang, survey: &Survey, merchant: &str, link: &str) -> String {
    use html_escape::{encode_double_quoted_attribute as attr, encode_text as esc};
    let t = texts(lang);
    let (low_end, high_end) = match survey.scale {
        crate::model::Scale::Nps => (t.not_likely, t.very_likely),
        crate::model::Scale::Csat => (t.not_satisfied, t.very_satisfied),
    };
    let range: Vec<u8> = survey.scale.range().collect();
    let mut buttons = String::new();
    for &n in &range {
        let label = match n {
            _ if Some(&n) == range.first() => format!("{n} – {low_end}"),
            _ if Some(&n) == range.last() => format!("{n} – {high_end}"),
            _ => n.to_string(),
        };
        buttons.push_str(&format!(
            "<td style=\"padding:2px\"><a href=\"{}\" aria-label=\"{}\" style=\"display:block;\
text-align:center;padding:10px 0;border:2px solid #0b57d0;border-radius:6px;color:#0b57d0;font-weight:700;\
font-size:16px;text-decoration:none\">{n}</a></td>",
            attr(&format!("{link}?score={n}")),
            attr(&label)
        ));
    }
    let font =
        "font-family:system-ui,-apple-system,'Segoe UI',Roboto,'PingFang SC','Hiragino Sans',\
'Microsoft YaHei',sans-serif";
    format!(
        "<!doctype html><html lang=\"{tag}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{m}</title></head>\
<body style=\"margin:0;padding:0;background:#f4f4f7\">\
<table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" style=\"background:#f4f4f7\">\
<tr><td align=\"center\" style=\"padding:24px 12px\">\
<table role=\"presentation\" cellpadding=\"0\" cellspacing=\"0\" style=\"max-width:560px;width:100%;\
background:#ffffff;border-radius:8px;color:#111;{font}\">\
<tr><td style=\"padding:24px 24px 0\"><h1 style=\"margin:0;font-size:20px\">{m}</h1>\
<p style=\"font-size:16px;line-height:1.5;margin:12px 0\">{intro}</p>\
<p style=\"font-size:16px;line-height:1.5;font-weight:600;margin:16px 0 8px\">{question}</p></td></tr>\
<tr><td style=\"padding:0 22px\"><table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\" \
style=\"table-layout:fixed\">\
<tr>{buttons}</tr></table>\
<table role=\"presentation\" width=\"100%\" cellpadding=\"0\" cellspacing=\"0\"><tr>\
<td style=\"font-size:13px;color:#333;padding:4px 2px\">{low}</td>\
<td align=\"right\" style=\"font-size:13px;color:#333;padding:4px 2px\">{high}</td></tr></table></td></tr>\
<tr><td style=\"padding:16px 24px 24px;font-size:13px;line-height:1.5;color:#333\">{open} \
<a href=\"{href}\" style=\"color:#0b57d0;word-break:break-all\">{shown}</a></td></tr>\
</table></td></tr></table></body></html>",
        tag = lang.tag(),
        m = esc(merchant),
        intro = esc(&t.message(survey.kind, merchant)),
        question = esc(&t.question(survey.scale, survey.kind, merchant)),
        low = esc(low_end),
        high = esc(high_end),
        open = esc(t.open_survey),
        href = attr(link),
        shown = esc(link),
    )
}

/// The SMS that tells a customer whose call we missed that we will call
/// back within the hour (SPEC 1), as the generic sender receives it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallAcknowledgement {
    /// Stable per missed call: a sender can drop a message it has seen.
    pub message_id: String,
    /// `missed_call_ack`: not a survey, no link.
    pub kind: &'static str,
    pub channel: Channel,
    pub to: String,
    pub locale: &'static str,
    pub text: String,
    pub encoding: Encoding,
    pub segments: usize,
}

/// How late after the missed call an acknowledgement still makes sense.
const ACK_WITHIN_MINUTES: i64 = 60;

/// The acknowledgement a `call.missed` event gets at once: only where the
/// customer has a phone and did not opt out, only while the call is fresh
/// (a report an hour late gets none), and never in the customer's quiet
/// hours (the callback then comes in the morning).
pub fn acknowledge_missed_call(
    event: &Event,
    contact: &Contact,
    rules: &ContactRules,
    merchant: &str,
    now: DateTime<Utc>,
) -> Option<CallAcknowledgement> {
    let fresh = now - event.occurred_at <= Duration::minutes(ACK_WITHIN_MINUTES);
    if event.kind != EventType::CallMissed || contact.opted_out || !fresh {
        return None;
    }
    let to = contact.phone.clone()?;
    let place = rules.place(contact, now);
    if !place.hours.is_open(now, &place.tz) {
        return None;
    }
    let lang = Lang::from_locale(contact.locale.as_deref());
    let text = texts(lang).missed_call_ack.replace("{m}", merchant);
    let size = crate::sms::size(&text);
    Some(CallAcknowledgement {
        message_id: derive_id("ack", &[&event.event_id]),
        kind: "missed_call_ack",
        channel: Channel::Sms,
        to,
        locale: lang.tag(),
        text,
        encoding: size.encoding,
        segments: size.segments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn survey() -> Survey {
        serde_json::from_value(serde_json::json!({
            "survey_id": "sv_0123456789abcdef", "event_id": "e1", "kind": "product", "scale": "nps",
            "customer_id": "c1", "due_at": "2026-12-04T09:00:00Z", "send_by": "2026-12-05T09:00:00Z",
            "expires_at": "2026-12-18T09:00:00Z", "next_attempt_at": "2026-12-04T09:00:00Z",
            "state": "sending"
        }))
        .unwrap()
    }

    #[test]
    fn each_channel_gets_its_own_link_in_the_customers_language() {
        let contact = Contact {
            customer_id: "c1".into(),
            email: Some("anna@example.de".into()),
            phone: Some("+4915112345678".into()),
            locale: Some("de-DE".into()),
            ..Default::default()
        };
        let settings = MessageSettings {
            public_base_url: "https://r.example.com/",
            link_secret: "secret",
            merchant: "Acme",
        };
        let email = compose(&survey(), &contact, Channel::Email, &settings);
        let sms = compose(&survey(), &contact, Channel::Sms, &settings);
        assert_ne!(email.link, sms.link, "the answering channel is known");
        assert!(email.link.starts_with("https://r.example.com/s/"));
        assert_eq!(email.locale, "de");
        assert_eq!(email.to.as_deref(), Some("anna@example.de"));
        assert_eq!(sms.to.as_deref(), Some("+4915112345678"));
        assert!(email.text.ends_with(&email.link));
        assert_eq!(sms.segments, Some(1), "{}", sms.text);
        assert_ne!(email.message_id, sms.message_id);
        let token = email.link.rsplit('/').next().unwrap();
        let decoded = LinkToken::decode(token, "secret").unwrap();
        assert_eq!(
            (decoded.survey_id.as_str(), decoded.channel),
            ("sv_0123456789abcdef", Channel::Email)
        );
    }

    /// The e-mail's HTML part has one button per score, each opening the
    /// page with that score pre-selected, both ends named, texts escaped;
    /// other channels have none.
    #[test]
    fn an_email_carries_one_tap_buttons_in_its_html_part() {
        let contact = Contact {
            customer_id: "c1".into(),
            email: Some("li@example.cn".into()),
            phone: Some("+8613800138000".into()),
            locale: Some("zh-CN".into()),
            ..Default::default()
        };
        let settings = MessageSettings {
            public_base_url: "https://r.example.com",
            link_secret: "secret",
            merchant: "Acme <&> Co",
        };
        let email = compose(&survey(), &contact, Channel::Email, &settings);
        let html = email.html.as_deref().expect("an e-mail has an HTML part");
        for n in 0..=10 {
            let href = format!("href=\"{}?score={n}\"", email.link);
            assert_eq!(html.matches(&href).count(), 1, "button {n}: {html}");
        }
        assert!(html.contains("lang=\"zh-Hans\""));
        assert!(html.contains("aria-label=\"0 – 不太可能\"") && html.contains("非常可能"));
        assert!(html.contains("Acme &lt;&amp;&gt; Co") && !html.contains("Acme <&>"));
        assert!(
            email.text.ends_with(&email.link),
            "the plain-text part keeps its link"
        );
        assert_eq!(
            compose(&survey(), &contact, Channel::Sms, &settings).html,
            None
        );
        let csat = Survey {
            scale: crate::model::Scale::Csat,
            ..survey()
        };
        let html = email_html(Lang::En, &csat, "Acme", "https://r/s/t");
        assert_eq!(html.matches("?score=").count(), 5);
        assert!(html.contains("aria-label=\"5 – Very satisfied\""));
    }
}
