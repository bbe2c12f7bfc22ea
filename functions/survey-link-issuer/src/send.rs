//! Handing survey messages over: to the channel's provider when one is
//! configured, else to the generic sender (the issuer's only outbound I/O).

use std::collections::BTreeMap;

use revisit_shared::message::{compose, CallAcknowledgement, MessageSettings};
use revisit_shared::model::{Channel, Contact, Survey};
use revisit_shared::providers::{
    parse_providers, request as provider_request, Credentials, Outgoing, Provider,
};
use revisit_shared::signing::purpose;
use revisit_shared::spin as shell;
use revisit_shared::ApiError;
use spin_sdk::http::{Method, Request, Response};

/// What sending needs, read from the Spin variables once per tick.
pub struct Outbound {
    sender_url: String,
    public_base_url: String,
    link_secret: String,
    merchant: String,
    providers: BTreeMap<Channel, Provider>,
    credentials: Credentials,
}

impl Outbound {
    pub fn read() -> Result<Outbound, ApiError> {
        let providers = match shell::optional_variable("providers") {
            Some(text) => parse_providers(&text).map_err(ApiError::internal)?,
            None => Default::default(),
        };
        let secret = |name: &str| shell::optional_variable(name).unwrap_or_default();
        Ok(Outbound {
            sender_url: shell::variable("sender_url")?,
            public_base_url: shell::variable("public_base_url")?,
            link_secret: shell::purpose_key("link_secret", purpose::LINK_TOKEN)?,
            merchant: shell::optional_variable("merchant_name").unwrap_or_else(|| "Revisit".into()),
            providers,
            credentials: Credentials {
                twilio_auth_token: secret("twilio_auth_token"),
                whatsapp_token: secret("whatsapp_token"),
                sendgrid_api_key: secret("sendgrid_api_key"),
            },
        })
    }
}

/// Hand each channel's message over; on a failure, the channels acknowledged
/// before it come back with the error, so a retry sends only the rest.
pub async fn send_all(
    out: &Outbound,
    survey: &Survey,
    contact: &Contact,
    channels: &[Channel],
) -> Result<(), (Vec<Channel>, String)> {
    let mut acked = Vec::new();
    for channel in channels {
        match send_one(out, survey, contact, *channel).await {
            Ok(()) => acked.push(*channel),
            Err(e) => return Err((acked, e)),
        }
    }
    Ok(())
}

/// A missed call's acknowledgement SMS, to the SMS provider when one is
/// configured, else to the generic sender as JSON.
pub async fn send_acknowledgement(out: &Outbound, ack: &CallAcknowledgement) -> Result<(), String> {
    let request = match out.providers.get(&Channel::Sms) {
        Some(provider) => {
            let outgoing = Outgoing {
                message_id: &ack.message_id,
                channel: Channel::Sms,
                to: &ack.to,
                locale: ack.locale,
                subject: &out.merchant,
                text: &ack.text,
                html: None,
                link: "",
            };
            provider_call(provider_request(provider, &out.credentials, &outgoing))
        }
        None => json_request(
            &out.sender_url,
            serde_json::to_string(ack).expect("messages serialize"),
        ),
    };
    deliver(request, "SMS").await
}

fn provider_call(call: revisit_shared::providers::HttpCall) -> Request {
    let mut b = Request::builder();
    b.method(Method::Post).uri(&call.url);
    for (k, v) in &call.headers {
        b.header(k, v);
    }
    b.body(call.body).build()
}

fn json_request(url: &str, body: String) -> Request {
    Request::builder()
        .method(Method::Post)
        .uri(url)
        .header("content-type", "application/json")
        .body(body)
        .build()
}

async fn deliver(request: Request, what: &str) -> Result<(), String> {
    let response: Response = spin_sdk::http::send(request)
        .await
        .map_err(|e| format!("{what} unreachable: {e}"))?;
    if !(200..300).contains(response.status()) {
        return Err(format!("{what} answered {}", response.status()));
    }
    Ok(())
}

/// One channel's message (`message::compose`), straight to the channel's
/// provider when one is configured, else to the generic sender as JSON.
async fn send_one(
    out: &Outbound,
    survey: &Survey,
    contact: &Contact,
    channel: Channel,
) -> Result<(), String> {
    let settings = MessageSettings {
        public_base_url: &out.public_base_url,
        link_secret: &out.link_secret,
        merchant: &out.merchant,
    };
    let m = compose(survey, contact, channel, &settings);
    let (request, who) = match out.providers.get(&channel) {
        Some(provider) => {
            let outgoing = Outgoing {
                message_id: &m.message_id,
                channel,
                to: m.to.as_deref().unwrap_or_default(),
                locale: m.locale,
                subject: &out.merchant,
                text: &m.text,
                html: m.html.as_deref(),
                link: &m.link,
            };
            let call = provider_request(provider, &out.credentials, &outgoing);
            (provider_call(call), "provider")
        }
        None => {
            let body = serde_json::to_string(&m).expect("messages serialize");
            (json_request(&out.sender_url, body), "sender")
        }
    };
    deliver(request, &format!("{who} ({})", channel.as_str())).await
}
