//! Sending directly through messaging providers, in their documented request
//! formats: Twilio's Messages API (SMS and WhatsApp), the WhatsApp Cloud API
//! (a template message carrying the link) and SendGrid's v3 mail send.
//! Chosen per channel by the `providers` variable; credentials come from Spin
//! variables. A channel without a provider goes to the generic sender.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::model::Channel;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Provider {
    /// Twilio Messages API; for WhatsApp, `from` is the WhatsApp-enabled number.
    Twilio {
        account_sid: String,
        from: String,
        #[serde(default = "twilio_base")]
        base_url: String,
    },
    /// Meta's WhatsApp Cloud API, sending an approved template with the link as its body parameter.
    WhatsappCloud {
        phone_number_id: String,
        template: String,
        #[serde(default = "graph_version")]
        api_version: String,
        #[serde(default = "graph_base")]
        base_url: String,
    },
    /// SendGrid v3 mail send.
    Sendgrid {
        from: String,
        #[serde(default)]
        from_name: Option<String>,
        #[serde(default = "sendgrid_base")]
        base_url: String,
    },
}

fn twilio_base() -> String {
    "https://api.twilio.com".into()
}
fn graph_base() -> String {
    "https://graph.facebook.com".into()
}
fn graph_version() -> String {
    "v21.0".into()
}
fn sendgrid_base() -> String {
    "https://api.sendgrid.com".into()
}

/// Providers by channel, from the `providers` variable (JSON).
pub fn parse_providers(text: &str) -> Result<BTreeMap<Channel, Provider>, String> {
    let de = &mut serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de)
        .map_err(|e| format!("providers: at `{}`: {}", e.path(), e.inner()))
}

/// The provider credentials (Spin variables `twilio_auth_token`, `whatsapp_token`, `sendgrid_api_key`).
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    pub twilio_auth_token: String,
    pub whatsapp_token: String,
    pub sendgrid_api_key: String,
}

/// One message to hand over.
pub struct Outgoing<'a> {
    pub message_id: &'a str,
    pub channel: Channel,
    pub to: &'a str,
    pub locale: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
    /// An e-mail's HTML part (sent after the plain text, as SendGrid requires).
    pub html: Option<&'a str>,
    pub link: &'a str,
}

/// An HTTP request to make.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpCall {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

pub fn request(provider: &Provider, creds: &Credentials, m: &Outgoing) -> HttpCall {
    match provider {
        Provider::Twilio {
            account_sid,
            from,
            base_url,
        } => {
            let (to, from) = match m.channel {
                Channel::Whatsapp => (format!("whatsapp:{}", m.to), format!("whatsapp:{from}")),
                _ => (m.to.to_string(), from.clone()),
            };
            let body = form_urlencoded::Serializer::new(String::new())
                .append_pair("To", &to)
                .append_pair("From", &from)
                .append_pair("Body", m.text)
                .finish();
            let auth = STANDARD.encode(format!("{account_sid}:{}", creds.twilio_auth_token));
            HttpCall {
                method: "POST",
                url: format!(
                    "{}/2010-04-01/Accounts/{account_sid}/Messages.json",
                    base_url.trim_end_matches('/')
                ),
                headers: vec![
                    ("authorization".into(), format!("Basic {auth}")),
                    (
                        "content-type".into(),
                        "application/x-www-form-urlencoded".into(),
                    ),
                    ("i-twilio-idempotency-token".into(), m.message_id.into()),
                ],
                body: body.into_bytes(),
            }
        }
        Provider::WhatsappCloud {
            phone_number_id,
            template,
            api_version,
            base_url,
        } => {
            let body = serde_json::json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": m.to.trim_start_matches('+'),
                "type": "template",
                "template": {
                    "name": template,
                    "language": { "code": m.locale.replace('-', "_") },
                    "components": [{ "type": "body", "parameters": [{ "type": "text", "text": m.link }] }]
                }
            });
            HttpCall {
                method: "POST",
                url: format!(
                    "{}/{api_version}/{phone_number_id}/messages",
                    base_url.trim_end_matches('/')
                ),
                headers: vec![
                    (
                        "authorization".into(),
                        format!("Bearer {}", creds.whatsapp_token),
                    ),
                    ("content-type".into(), "application/json".into()),
                ],
                body: body.to_string().into_bytes(),
            }
        }
        Provider::Sendgrid {
            from,
            from_name,
            base_url,
        } => {
            let mut sender = serde_json::json!({ "email": from });
            if let Some(name) = from_name {
                sender["name"] = name.clone().into();
            }
            let mut content = vec![serde_json::json!({ "type": "text/plain", "value": m.text })];
            if let Some(html) = m.html {
                content.push(serde_json::json!({ "type": "text/html", "value": html }));
            }
            let body = serde_json::json!({
                "personalizations": [{ "to": [{ "email": m.to }] }],
                "from": sender,
                "subject": m.subject,
                "content": content,
                "custom_args": { "message_id": m.message_id }
            });
            HttpCall {
                method: "POST",
                url: format!("{}/v3/mail/send", base_url.trim_end_matches('/')),
                headers: vec![
                    (
                        "authorization".into(),
                        format!("Bearer {}", creds.sendgrid_api_key),
                    ),
                    ("content-type".into(), "application/json".into()),
                ],
                body: body.to_string().into_bytes(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(channel: Channel, to: &'static str) -> Outgoing<'static> {
        Outgoing {
            message_id: "msg_1",
            channel,
            to,
            locale: "de",
            subject: "Acme",
            text: "Wie war es? https://x/s/t",
            html: None,
            link: "https://x/s/t",
        }
    }

    fn creds() -> Credentials {
        Credentials {
            twilio_auth_token: "tok".into(),
            whatsapp_token: "wa".into(),
            sendgrid_api_key: "SG.key".into(),
        }
    }

    #[test]
    fn twilio_sms_and_whatsapp() {
        let p = parse_providers(
            r#"{"sms": {"kind": "twilio", "account_sid": "AC123", "from": "+15005550006"}}"#,
        )
        .unwrap();
        let call = request(
            &p[&Channel::Sms],
            &creds(),
            &msg(Channel::Sms, "+4915112345678"),
        );
        assert_eq!(
            call.url,
            "https://api.twilio.com/2010-04-01/Accounts/AC123/Messages.json"
        );
        assert!(call.headers.contains(&(
            "authorization".into(),
            format!("Basic {}", STANDARD.encode("AC123:tok"))
        )));
        let form: BTreeMap<String, String> =
            form_urlencoded::parse(&call.body).into_owned().collect();
        assert_eq!(form["To"], "+4915112345678");
        assert_eq!(form["From"], "+15005550006");
        assert!(form["Body"].ends_with("https://x/s/t"));
        let wa = request(
            &p[&Channel::Sms],
            &creds(),
            &msg(Channel::Whatsapp, "+4915112345678"),
        );
        let form: BTreeMap<String, String> =
            form_urlencoded::parse(&wa.body).into_owned().collect();
        assert_eq!(
            (form["To"].as_str(), form["From"].as_str()),
            ("whatsapp:+4915112345678", "whatsapp:+15005550006")
        );
    }

    #[test]
    fn whatsapp_cloud_template_and_sendgrid_mail() {
        let p = parse_providers(
            r#"{"whatsapp": {"kind": "whatsapp_cloud", "phone_number_id": "10987", "template": "survey_link"},
                "email": {"kind": "sendgrid", "from": "surveys@acme.example", "from_name": "Acme"}}"#,
        )
        .unwrap();
        let call = request(
            &p[&Channel::Whatsapp],
            &creds(),
            &msg(Channel::Whatsapp, "+4915112345678"),
        );
        assert_eq!(call.url, "https://graph.facebook.com/v21.0/10987/messages");
        let body: serde_json::Value = serde_json::from_slice(&call.body).unwrap();
        assert_eq!(body["messaging_product"], "whatsapp");
        assert_eq!(body["to"], "4915112345678");
        assert_eq!(body["template"]["name"], "survey_link");
        assert_eq!(
            body["template"]["components"][0]["parameters"][0]["text"],
            "https://x/s/t"
        );
        let mail = request(
            &p[&Channel::Email],
            &creds(),
            &msg(Channel::Email, "anna@example.de"),
        );
        assert_eq!(mail.url, "https://api.sendgrid.com/v3/mail/send");
        assert!(mail
            .headers
            .contains(&("authorization".into(), "Bearer SG.key".into())));
        let body: serde_json::Value = serde_json::from_slice(&mail.body).unwrap();
        assert_eq!(
            body["personalizations"][0]["to"][0]["email"],
            "anna@example.de"
        );
        assert_eq!(body["from"]["email"], "surveys@acme.example");
        assert_eq!(body["content"][0]["type"], "text/plain");
        assert_eq!(
            body["content"].as_array().unwrap().len(),
            1,
            "no HTML given"
        );
        // With an HTML part: plain text first, then HTML, as SendGrid requires.
        let html = "<p>Wie war es?</p>";
        let with_html = Outgoing {
            html: Some(html),
            ..msg(Channel::Email, "anna@example.de")
        };
        let body: serde_json::Value =
            serde_json::from_slice(&request(&p[&Channel::Email], &creds(), &with_html).body)
                .unwrap();
        assert_eq!(
            body["content"],
            serde_json::json!([{"type": "text/plain", "value": "Wie war es? https://x/s/t"},
                {"type": "text/html", "value": html}])
        );
    }

    #[test]
    fn bad_provider_config_names_the_field() {
        let err = parse_providers(r#"{"sms": {"kind": "twilio", "from": "+1"}}"#).unwrap_err();
        assert!(err.contains("account_sid"), "{err}");
        assert!(parse_providers(r#"{"fax": {"kind": "twilio"}}"#)
            .unwrap_err()
            .contains("fax"));
    }
}
