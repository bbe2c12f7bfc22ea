//! survey-link-issuer: takes business events, plans surveys by the policy, and
//! on each tick sends what is due — re-checking at send time that sending still
//! makes sense — through the seller's sender.
//!
//! Routes: `POST /events`, `POST /issuer/tick`, `GET /surveys/:survey_id`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use revisit_shared::answer::History;
use revisit_shared::event::{Category, Event};
use revisit_shared::flows::intake::{self, Begun};
use revisit_shared::flows::issuer_tick::{self, TickReport};
use revisit_shared::keys;
use revisit_shared::routes::issuer::{EVENTS, SHOPIFY, SURVEY, TICK, WOOCOMMERCE};
use revisit_shared::shops::{from_shopify, from_woocommerce, verify_base64_hmac};
use revisit_shared::signing::verify_webhook;
use revisit_shared::spin::{self as shell, SpinStore};
use revisit_shared::storage::StorageExt;
use revisit_shared::survey::Survey;
use revisit_shared::{error::parse_json, ApiError};
use serde::Serialize;
use spin_sdk::http::{IncomingRequest, Method, Request, Response, ResponseOutparam};
use spin_sdk::http_component;

mod send;

use send::{send_all, Outbound};

#[http_component]
async fn handle(incoming: IncomingRequest, out: ResponseOutparam) {
    shell::serve_async(incoming, out, dispatch).await
}

async fn dispatch(req: Request) -> Response {
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
    let secret = shell::secret("webhook_secret")?;
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
    let merchant = shell::optional_variable("merchant_name").unwrap_or_else(|| "Revisit".into());
    let webhooks = shell::webhooks();
    let cx = intake::IntakeContext {
        policy: &policy,
        webhooks: &webhooks,
        merchant: &merchant,
        now,
    };
    let (hand_off, acknowledge) = match intake::begin(&store, &event, &cx)? {
        Begun::Duplicate => return Ok(planned_response(&event, &plan, true)),
        Begun::Proceed {
            hand_off,
            acknowledge,
        } => (hand_off, acknowledge),
    };
    if let Some(ack) = acknowledge {
        // At once, before anything else: the customer is waiting for us.
        if let Err(e) = send::send_acknowledgement(&Outbound::read()?, &ack).await {
            intake::ack_not_sent(&store, &event)?;
            return Err(ApiError::unavailable(format!(
                "the missed call's acknowledgement could not be sent ({e}); nothing is lost, retry the event"
            )));
        }
    }
    if let Some(request) = hand_off {
        shell::hand_off(&store, &request).await?;
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

/// `POST /issuer/tick`: send what is due now (`flows::issuer_tick`), one
/// survey at a time.
async fn tick(req: &Request) -> Result<Response, ApiError> {
    shell::require_admin(req)?;
    let now = shell::now();
    let policy = shell::survey_policy()?;
    let store = SpinStore::open()?;
    let out = Outbound::read()?;
    let hooks = shell::webhooks();
    let mut report = TickReport::default();
    let mut contacts = BTreeMap::new();
    let started = std::time::Instant::now();
    let due = issuer_tick::due_surveys(&store, now)?;
    let total = due.len();
    for (i, survey) in due.into_iter().enumerate() {
        if started.elapsed() >= issuer_tick::TICK_BUDGET {
            issuer_tick::out_of_time(&mut report, total - i);
            break;
        }
        let id = survey.survey_id.clone();
        let prepared = issuer_tick::prepare(
            &store,
            survey,
            (&policy, &hooks),
            now,
            &mut contacts,
            &mut report,
        );
        let job = match prepared {
            Ok(Some(job)) => job,
            Ok(None) => continue,
            Err(e) => {
                issuer_tick::skip(&store, &mut report, &id, &e, now);
                continue;
            }
        };
        let (acked, failure) = match send_all(&out, &job.survey, &job.contact, &job.channels).await
        {
            Ok(()) => (job.channels.clone(), None),
            Err((acked, e)) => (acked, Some(e)),
        };
        if let Err(e) =
            issuer_tick::record_sent(&store, &job, &acked, failure, (now, &hooks), &mut report)
        {
            issuer_tick::skip(&store, &mut report, &id, &e, now);
        }
    }
    issuer_tick::advance_cursor(&store, now, &report)?;
    Ok(shell::json(200, &report))
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
