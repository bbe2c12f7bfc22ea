//! survey-link-issuer: takes business events, plans surveys by the policy, and
//! on each tick sends what is due — re-checking at send time that sending still
//! makes sense — through the seller's sender.
//!
//! Routes: `POST /events`, `POST /issuer/tick`, `GET /surveys/:survey_id`.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use revisit_shared::answer::History;
use revisit_shared::contact::{open_cases, EventLogEntry};
use revisit_shared::event::{Category, Event};
use revisit_shared::flows::contact::record_contact;
use revisit_shared::flows::intake::{self, Begun};
use revisit_shared::flows::report::bump_summary;
use revisit_shared::flows::survey::index_due;
use revisit_shared::i18n::{texts, Lang};
use revisit_shared::keys;
use revisit_shared::policy::Channel;
use revisit_shared::routes::issuer::{EVENTS, SHOPIFY, SURVEY, TICK, WOOCOMMERCE};
use revisit_shared::shops::{from_shopify, from_woocommerce, verify_base64_hmac};
use revisit_shared::signing::{verify_webhook, LinkToken};
use revisit_shared::spin::{self as shell, SpinStore};
use revisit_shared::storage::{Storage, StorageExt, Update};
use revisit_shared::survey::{
    decide_reminder, decide_send, Contact, CustomerNow, SendDecision, SkipReason, Survey,
    SurveyState,
};
use revisit_shared::{error::parse_json, ApiError};
use serde::Serialize;
use spin_sdk::http::{Method, Request, Response};
use spin_sdk::http_component;

#[http_component]
async fn handle(req: Request) -> Response {
    let route = shell::matched_route(&req);
    let result = match (route.as_str(), req.method()) {
        (EVENTS, Method::Post) => intake(&req).await,
        (EVENTS, _) => Err(ApiError::method_not_allowed("POST")),
        (SHOPIFY, Method::Post) => shop_webhook(&req, "shopify").await,
        (WOOCOMMERCE, Method::Post) => shop_webhook(&req, "woocommerce").await,
        (SHOPIFY | WOOCOMMERCE, _) => Err(ApiError::method_not_allowed("POST")),
        (TICK, Method::Post) => tick(&req).await,
        (TICK, _) => Err(ApiError::method_not_allowed("POST")),
        (SURVEY, Method::Get) => get_survey(&req),
        (SURVEY, _) => Err(ApiError::method_not_allowed("GET")),
        _ => Err(ApiError::not_found("no such endpoint")),
    };
    shell::render(result)
}

#[derive(Serialize)]
struct PlannedView {
    survey_id: String,
    kind: revisit_shared::policy::SurveyKind,
    due_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

/// `POST /events`: verify, parse, plan, store — idempotent per `event_id`.
async fn intake(req: &Request) -> Result<Response, ApiError> {
    let body = shell::body(req)?;
    let now = shell::now();
    let secret = shell::variable("webhook_secret")?;
    verify_webhook(
        &secret,
        req.header("x-revisit-signature").and_then(|h| h.as_str()),
        body,
        now,
    )?;
    let event: Event = parse_json(body)?;
    accept(event, now).await
}

/// A shop platform's own webhook (`POST /webhooks/shopify|woocommerce`):
/// verified as the platform documents, mapped to a Revisit event, then taken in
/// like any other; topics and states that mean nothing here are acknowledged
/// and ignored.
async fn shop_webhook(req: &Request, platform: &str) -> Result<Response, ApiError> {
    let body = shell::body(req)?;
    let header = |name: &str| {
        req.header(name)
            .and_then(|h| h.as_str())
            .map(str::to_string)
    };
    let category =
        shell::optional_variable("shop_delivery_category").unwrap_or_else(|| "high_value".into());
    let category: Category = serde_json::from_value(serde_json::Value::String(category.clone()))
        .map_err(|_| {
            ApiError::internal(format!(
                "shop_delivery_category must be service, high_value or standard (got {category:?})"
            ))
        })?;
    let event = match platform {
        "shopify" => {
            let secret = shell::optional_variable("shopify_webhook_secret").unwrap_or_default();
            verify_base64_hmac(
                &secret,
                header("x-shopify-hmac-sha256").as_deref(),
                body,
                "Shopify",
            )?;
            from_shopify(
                &header("x-shopify-topic").unwrap_or_default(),
                body,
                category,
            )?
        }
        _ => {
            let secret = shell::optional_variable("woocommerce_webhook_secret").unwrap_or_default();
            verify_base64_hmac(
                &secret,
                header("x-wc-webhook-signature").as_deref(),
                body,
                "WooCommerce",
            )?;
            from_woocommerce(
                &header("x-wc-webhook-topic").unwrap_or_default(),
                body,
                category,
            )?
        }
    };
    match event {
        Some(event) => accept(event, shell::now()).await,
        None => Ok(shell::json(200, &serde_json::json!({ "ignored": true }))),
    }
}

/// Take in a verified event: plan, store — idempotent per `event_id`.
async fn accept(event: Event, now: DateTime<Utc>) -> Result<Response, ApiError> {
    event.validate()?;
    let policy = shell::survey_policy()?;
    let store = SpinStore::open()?;

    let plan = policy.plan(&event);
    match intake::begin(&store, &event, revisit_shared::market::phone_country)? {
        Begun::Duplicate => return Ok(planned_response(&event, &plan, true)),
        Begun::Proceed {
            hand_off: Some(request),
        } => shell::hand_off(&store, &request).await?,
        Begun::Proceed { hand_off: None } => {}
    }
    let first_delivery = intake::finish(&store, &event, &plan, now)?;
    Ok(planned_response(&event, &plan, !first_delivery))
}

fn planned_response(
    event: &Event,
    plan: &[revisit_shared::policy::PlannedSurvey],
    duplicate: bool,
) -> Response {
    let surveys: Vec<PlannedView> = plan
        .iter()
        .map(|p| PlannedView {
            survey_id: p.survey_id.clone(),
            kind: p.kind,
            due_at: p.due_at,
            expires_at: p.expires_at,
        })
        .collect();
    shell::json(
        202,
        &serde_json::json!({ "event_id": event.event_id, "duplicate": duplicate, "surveys": surveys }),
    )
}

/// How far back a tick looks when it has never run (a month of hour buckets).
const FIRST_TICK_LOOKBACK_HOURS: i64 = 24 * 31;

#[derive(Default, Serialize)]
struct TickReport {
    examined: usize,
    sent: usize,
    reminders: usize,
    deferred: usize,
    dropped: usize,
    failed: usize,
    messages: usize,
}

/// `POST /issuer/tick`: send what is due now. Reads only the hour buckets since
/// the last tick and the surveys in them — never the whole store.
async fn tick(req: &Request) -> Result<Response, ApiError> {
    shell::require_admin(req)?;
    let now = shell::now();
    let policy = shell::survey_policy()?;
    let store = SpinStore::open()?;

    // One hour of overlap with the last tick: an intake on a machine whose clock
    // is a little behind may have indexed into the hour the cursor already passed.
    let start: DateTime<Utc> = store
        .get_json::<DateTime<Utc>>(keys::TICK_CURSOR)?
        .map(|c| c - Duration::hours(1))
        .unwrap_or(now - Duration::hours(FIRST_TICK_LOOKBACK_HOURS));
    let mut buckets = Vec::new();
    let mut t = start;
    while keys::hour_bucket(t) <= keys::hour_bucket(now)
        && buckets.len() < 2 * FIRST_TICK_LOOKBACK_HOURS as usize
    {
        buckets.push(keys::hour_bucket(t));
        t += Duration::hours(1);
    }
    let ids: BTreeSet<String> = store
        .read_logs(&buckets.iter().map(|b| keys::due_log(b)).collect::<Vec<_>>())?
        .into_iter()
        .collect();
    let ids: Vec<String> = ids.into_iter().collect();
    let surveys = store.get_many(&ids.iter().map(|i| keys::survey(i)).collect::<Vec<_>>())?;

    let mut report = TickReport::default();
    let mut contacts: BTreeMap<String, Contact> = BTreeMap::new();
    for raw in surveys.into_iter().flatten() {
        let Ok(survey) = serde_json::from_slice::<Survey>(&raw) else {
            continue;
        };
        let mut reminder_due = survey.state == SurveyState::Sent
            && !survey.reminded
            && survey.reminder_at.is_some_and(|t| t <= now);
        if reminder_due {
            // Answers are recorded in the customer's history, not the survey:
            // an answered survey is settled here, once, and not reminded.
            let history: History = store
                .get_json(&keys::history(&survey.customer_id))?
                .unwrap_or_default();
            if survey.clone().settle_answer(&history) {
                store.update_if::<Survey, _>(&keys::survey(&survey.survey_id), |s| {
                    s.settle_answer(&history)
                })?;
                reminder_due = false;
            }
        }
        if !reminder_due && (survey.state != SurveyState::Planned || survey.next_attempt_at > now) {
            continue;
        }
        report.examined += 1;
        if !contacts.contains_key(&survey.customer_id) {
            let c = store
                .get_json::<Contact>(&keys::contact(&survey.customer_id))?
                .unwrap_or_default();
            contacts.insert(survey.customer_id.clone(), c);
        }
        let contact = &contacts[&survey.customer_id];
        let events: Vec<EventLogEntry> = store
            .get_json(&keys::event_log(&survey.customer_id))?
            .unwrap_or_default();
        let now_known = CustomerNow {
            contact: contact.clone(),
            contacts_made: store
                .get_json(&keys::contacts(&survey.customer_id))?
                .unwrap_or_default(),
            open_cases: open_cases(&events),
        };
        if reminder_due {
            remind(&store, &survey, &now_known, &policy, now, &mut report).await?;
            continue;
        }
        let decision = decide_send(&survey, &now_known, &policy, now);
        match decision {
            SendDecision::Nothing => {}
            SendDecision::Drop(reason) => {
                let state = if reason == SkipReason::Expired {
                    SurveyState::Expired
                } else {
                    SurveyState::Cancelled
                };
                transition(&store, &survey.survey_id, now, |s| {
                    s.state = state;
                    s.note(now, state_word(state), Some(reason), None);
                })?;
                report.dropped += 1;
            }
            SendDecision::Defer { until, reason } => {
                if transition(&store, &survey.survey_id, now, |s| {
                    s.next_attempt_at = until;
                    s.note(
                        now,
                        "deferred",
                        Some(reason),
                        Some(format!("until {}", until.to_rfc3339())),
                    );
                })? {
                    index_due(&store, &survey.survey_id, until)?;
                }
                report.deferred += 1;
            }
            SendDecision::Send(channels) => {
                // Claim it first, so concurrent ticks never send one survey twice.
                if !transition(&store, &survey.survey_id, now, |s| {
                    s.state = SurveyState::Sending
                })? {
                    continue;
                }
                let reminder_at = policy
                    .reminder
                    .as_ref()
                    .map(|r| now + Duration::hours(r.after_hours.into()));
                let result = send_all(&survey, contact, &channels).await;
                let (acked, failure) = match result {
                    Ok(()) => (channels.clone(), None),
                    Err((acked, e)) => (acked, Some(e)),
                };
                let first_contact = survey.sent_channels.is_empty() && !acked.is_empty();
                match &failure {
                    None => {
                        transition_from(&store, &survey.survey_id, SurveyState::Sending, |s| {
                            s.state = SurveyState::Sent;
                            s.sent_channels.extend(acked.iter().copied());
                            s.reminder_at = reminder_at;
                            let names: Vec<&str> =
                                s.sent_channels.iter().map(|c| c.as_str()).collect();
                            s.note(now, "sent", None, Some(format!("via {}", names.join(", "))));
                        })?;
                        if let Some(at) = reminder_at {
                            index_due(&store, &survey.survey_id, at)?;
                        }
                        report.sent += 1;
                    }
                    Some(problem) => {
                        // Acknowledged channels are kept: the retry sends only the rest.
                        let retry_at = now + Duration::minutes(10);
                        transition_from(&store, &survey.survey_id, SurveyState::Sending, |s| {
                            s.state = SurveyState::Planned;
                            s.next_attempt_at = retry_at;
                            s.sent_channels.extend(acked.iter().copied());
                            s.note(
                                now,
                                "send failed, will retry",
                                Some(SkipReason::SendFailed),
                                Some(problem.clone()),
                            );
                        })?;
                        index_due(&store, &survey.survey_id, retry_at)?;
                        report.failed += 1;
                    }
                }
                if first_contact {
                    record_contact(&store, &survey.customer_id, now)?;
                }
                let day = now.format("%Y%m%d").to_string();
                for ch in &acked {
                    bump_summary(&store, &day, &summary_dims(&survey, *ch), "issued")?;
                }
                report.messages += acked.len();
            }
        }
    }
    store.update_json::<DateTime<Utc>, _>(keys::TICK_CURSOR, |cur| match cur {
        Some(c) if c >= now => Update::Keep,
        _ => Update::Write(now),
    })?;
    Ok(shell::json(200, &report))
}

/// The one reminder: claimed by compare-and-swap (`reminded`), so concurrent
/// ticks never send two; a failed hand-off gives the claim back for a retry.
async fn remind(
    store: &SpinStore,
    survey: &Survey,
    customer: &CustomerNow,
    policy: &revisit_shared::policy::SurveyPolicy,
    now: DateTime<Utc>,
    report: &mut TickReport,
) -> Result<(), ApiError> {
    let id = &survey.survey_id;
    let update = |f: &dyn Fn(&mut Survey) -> bool| -> Result<bool, ApiError> {
        let changed = store
            .update_if::<Survey, _>(&keys::survey(id), |s| s.state == SurveyState::Sent && f(s))?;
        Ok(changed.is_some())
    };
    match decide_reminder(survey, customer, policy, now) {
        SendDecision::Nothing => {}
        SendDecision::Drop(reason) => {
            update(&|s| {
                s.reminded = true;
                s.note(now, "no reminder", Some(reason), None);
                true
            })?;
            report.dropped += 1;
        }
        SendDecision::Defer { until, reason } => {
            if update(&|s| {
                s.reminder_at = Some(until);
                s.note(
                    now,
                    "reminder deferred",
                    Some(reason),
                    Some(format!("until {}", until.to_rfc3339())),
                );
                true
            })? {
                index_due(store, id, until)?;
            }
            report.deferred += 1;
        }
        SendDecision::Send(channels) => {
            if !update(&|s| {
                !s.reminded && {
                    s.reminded = true;
                    true
                }
            })? {
                return Ok(());
            }
            match send_all(survey, &customer.contact, &channels).await {
                Ok(()) => {
                    update(&|s| {
                        let names: Vec<&str> = channels.iter().map(|c| c.as_str()).collect();
                        s.note(
                            now,
                            "reminded",
                            None,
                            Some(format!("via {}", names.join(", "))),
                        );
                        s.sent_channels.extend(channels.iter().copied());
                        true
                    })?;
                    record_contact(store, &survey.customer_id, now)?;
                    let day = now.format("%Y%m%d").to_string();
                    for ch in &channels {
                        bump_summary(store, &day, &summary_dims(survey, *ch), "issued")?;
                    }
                    report.reminders += 1;
                    report.messages += channels.len();
                }
                Err((_, problem)) => {
                    let retry_at = now + Duration::minutes(10);
                    update(&|s| {
                        s.reminded = false;
                        s.reminder_at = Some(retry_at);
                        s.note(
                            now,
                            "reminder failed, will retry",
                            Some(SkipReason::SendFailed),
                            Some(problem.clone()),
                        );
                        true
                    })?;
                    index_due(store, id, retry_at)?;
                    report.failed += 1;
                }
            }
        }
    }
    Ok(())
}

fn summary_dims(survey: &Survey, channel: Channel) -> Vec<(&'static str, String)> {
    vec![
        ("all", "all".to_string()),
        ("channel", channel.as_str().to_string()),
        ("kind", survey.kind.as_str().to_string()),
        (
            "agent",
            survey.agent_id.clone().unwrap_or_else(|| "none".into()),
        ),
    ]
}

fn state_word(s: SurveyState) -> &'static str {
    match s {
        SurveyState::Expired => "expired",
        SurveyState::Cancelled => "cancelled",
        _ => "updated",
    }
}

/// Apply `f` to a survey still `Planned`; `false` if someone else moved it first.
fn transition(
    store: &SpinStore,
    id: &str,
    _now: DateTime<Utc>,
    f: impl FnMut(&mut Survey),
) -> Result<bool, ApiError> {
    transition_from(store, id, SurveyState::Planned, f)
}

fn transition_from(
    store: &SpinStore,
    id: &str,
    from: SurveyState,
    mut f: impl FnMut(&mut Survey),
) -> Result<bool, ApiError> {
    let changed = store.update_if::<Survey, _>(&keys::survey(id), |s| {
        if s.state != from {
            return false;
        }
        f(s);
        true
    })?;
    Ok(changed.is_some())
}

/// Hand one message per channel to the sender; each carries its own link.
/// Hand each channel's message over; on a failure, the channels acknowledged
/// before it come back with the error, so a retry sends only the rest.
async fn send_all(
    survey: &Survey,
    contact: &Contact,
    channels: &[Channel],
) -> Result<(), (Vec<Channel>, String)> {
    let mut acked = Vec::new();
    for channel in channels {
        match send_one(survey, contact, *channel).await {
            Ok(()) => acked.push(*channel),
            Err(e) => return Err((acked, e)),
        }
    }
    Ok(())
}

async fn send_one(survey: &Survey, contact: &Contact, channel: Channel) -> Result<(), String> {
    let channels = &[channel];
    let sender_url = shell::variable("sender_url").map_err(|e| e.message)?;
    let base = shell::variable("public_base_url").map_err(|e| e.message)?;
    let link_secret = shell::variable("link_secret").map_err(|e| e.message)?;
    let merchant = shell::optional_variable("merchant_name").unwrap_or_else(|| "Revisit".into());
    let providers = match shell::optional_variable("providers") {
        Some(text) => revisit_shared::providers::parse_providers(&text)?,
        None => Default::default(),
    };
    let credentials = revisit_shared::providers::Credentials {
        twilio_auth_token: shell::optional_variable("twilio_auth_token").unwrap_or_default(),
        whatsapp_token: shell::optional_variable("whatsapp_token").unwrap_or_default(),
        sendgrid_api_key: shell::optional_variable("sendgrid_api_key").unwrap_or_default(),
    };
    let lang = Lang::from_locale(contact.locale.as_deref());
    for channel in channels {
        let token = LinkToken {
            survey_id: survey.survey_id.clone(),
            channel: *channel,
        }
        .encode(&link_secret);
        let link = format!("{}/s/{token}", base.trim_end_matches('/'));
        let mut message = serde_json::json!({
            "message_id": revisit_shared::signing::derive_id("msg", &[&survey.survey_id, channel.as_str()]),
            "survey_id": survey.survey_id,
            "channel": channel,
            "to": contact.address(*channel),
            "locale": lang.tag(),
            "link": link,
        });
        if *channel == Channel::Sms {
            // One segment when at all possible; the size is reported either way.
            let (text, size) = revisit_shared::sms::fit(lang, &merchant, &link);
            message["text"] = text.into();
            message["encoding"] = serde_json::to_value(size.encoding).unwrap_or_default();
            message["segments"] = size.segments.into();
        } else {
            message["text"] =
                format!("{} {link}", texts(lang).message(survey.kind, &merchant)).into();
        }
        // Straight to the channel's provider when one is configured, else the generic sender.
        let (request, who) = match providers.get(channel) {
            Some(provider) => {
                let call = revisit_shared::providers::request(
                    provider,
                    &credentials,
                    &revisit_shared::providers::Outgoing {
                        message_id: message["message_id"].as_str().unwrap_or_default(),
                        channel: *channel,
                        to: contact.address(*channel).unwrap_or_default(),
                        locale: lang.tag(),
                        subject: &merchant,
                        text: message["text"].as_str().unwrap_or_default(),
                        link: &link,
                    },
                );
                let mut b = Request::builder();
                b.method(Method::Post).uri(&call.url);
                for (k, v) in &call.headers {
                    b.header(k, v);
                }
                (b.body(call.body).build(), "provider")
            }
            None => {
                let request = Request::builder()
                    .method(Method::Post)
                    .uri(&sender_url)
                    .header("content-type", "application/json")
                    .body(message.to_string())
                    .build();
                (request, "sender")
            }
        };
        let response: Response = spin_sdk::http::send(request)
            .await
            .map_err(|e| format!("{who} unreachable: {e}"))?;
        if !(200..300).contains(response.status()) {
            return Err(format!(
                "{who} answered {} for {}",
                response.status(),
                channel.as_str()
            ));
        }
    }
    Ok(())
}

/// `GET /surveys/:survey_id`: state, timeline and skip reasons.
fn get_survey(req: &Request) -> Result<Response, ApiError> {
    shell::require_admin(req)?;
    let id = shell::path_param(req, "survey_id")?;
    let store = SpinStore::open()?;
    let mut survey: Survey = store
        .get_json(&keys::survey(&id))?
        .ok_or_else(|| ApiError::not_found(format!("no survey {id}")))?;
    let history: History = store
        .get_json(&keys::history(&survey.customer_id))?
        .unwrap_or_default();
    survey.settle_answer(&history);
    let mut value = serde_json::to_value(&survey).map_err(|e| ApiError::internal(e.to_string()))?;
    value["skip_reasons"] = serde_json::to_value(survey.skip_reasons()).unwrap_or_default();
    Ok(shell::json(200, &value))
}
