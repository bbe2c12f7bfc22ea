//! Shop platforms' own webhooks, verified as the platforms document and mapped
//! onto Revisit events: Shopify fulfillment updates whose shipment is delivered,
//! WooCommerce orders that reach `completed`.
//!
//! Both sign the raw body with HMAC-SHA256 under the webhook secret and send the
//! digest base64-encoded (`X-Shopify-Hmac-Sha256`, `X-WC-Webhook-Signature`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::error::ApiError;
use crate::event::{Category, Customer, Event};
use crate::model::derive_id;

/// Verify a base64 HMAC-SHA256 of the raw body (constant time).
pub fn verify_base64_hmac(
    secret: &str,
    header: Option<&str>,
    body: &[u8],
    platform: &str,
) -> Result<(), ApiError> {
    if secret.is_empty() {
        return Err(ApiError::unauthorized(format!(
            "{platform} webhooks are not configured: set the {platform} webhook secret"
        )));
    }
    let given = header
        .and_then(|h| STANDARD.decode(h.trim()).ok())
        .ok_or_else(|| {
            ApiError::unauthorized(format!("missing or malformed {platform} signature header"))
        })?;
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    mac.verify_slice(&given).map_err(|_| {
        ApiError::unauthorized(format!(
            "the {platform} signature does not match the body; check the webhook secret"
        ))
    })
}

/// The header value a platform would send (for tests and examples).
pub fn sign_base64(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

fn text(v: &Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    match cur {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn name(first: Option<String>, last: Option<String>) -> Option<String> {
    let full = [first, last]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    (!full.is_empty()).then_some(full)
}

fn e164(phone: Option<String>) -> Option<String> {
    phone
        .map(|p| {
            p.chars()
                .filter(|c| c.is_ascii_digit() || *c == '+')
                .collect::<String>()
        })
        .filter(|p| crate::event::is_e164(p))
}

fn parse(body: &[u8]) -> Result<Value, ApiError> {
    crate::error::parse_json(body)
}

/// A Shopify `fulfillments/create|update` payload: a delivered shipment becomes
/// `order.delivered`; anything else is ignored (`None`).
pub fn from_shopify(
    topic: &str,
    body: &[u8],
    category: Category,
) -> Result<Option<Event>, ApiError> {
    if !topic.starts_with("fulfillments/") {
        return Ok(None);
    }
    let v = parse(body)?;
    if text(&v, &["shipment_status"]).as_deref() != Some("delivered") {
        return Ok(None);
    }
    let fulfillment = text(&v, &["id"])
        .ok_or_else(|| ApiError::unprocessable("the Shopify fulfillment has no id"))?;
    let order = text(&v, &["order_id"])
        .ok_or_else(|| ApiError::unprocessable("the Shopify fulfillment has no order_id"))?;
    let email = text(&v, &["email"]);
    let phone = e164(text(&v, &["destination", "phone"]));
    let occurred_at = text(&v, &["updated_at"])
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc));
    // Shopify's fulfillment names no customer id: the address stands for the
    // customer, as a pseudonym (an id must not be an e-mail or a phone number).
    let customer_id = format!(
        "shopify:{}",
        email
            .as_deref()
            .or(phone.as_deref())
            .map(|a| derive_id("a", &[&a.to_ascii_lowercase()]))
            .unwrap_or_else(|| format!("order-{order}"))
    );
    let occurred_at = occurred_at.ok_or_else(|| {
        ApiError::unprocessable("the Shopify fulfillment has no valid updated_at")
    })?;
    let customer = Customer {
        id: customer_id,
        name: name(
            text(&v, &["destination", "first_name"]),
            text(&v, &["destination", "last_name"]),
        ),
        phone,
        email,
        ..Default::default()
    };
    Ok(Some(Event::delivery(
        format!("shopify:fulfillment:{fulfillment}:delivered"),
        occurred_at,
        format!("shopify:{order}"),
        customer,
        category,
        None,
    )))
}

/// A WooCommerce `order.*` payload: an order that is `completed` becomes
/// `order.delivered`; anything else is ignored (`None`).
pub fn from_woocommerce(
    topic: &str,
    body: &[u8],
    category: Category,
) -> Result<Option<Event>, ApiError> {
    if !topic.starts_with("order.") {
        return Ok(None);
    }
    let v = parse(body)?;
    if text(&v, &["status"]).as_deref() != Some("completed") {
        return Ok(None);
    }
    let order = text(&v, &["id"])
        .ok_or_else(|| ApiError::unprocessable("the WooCommerce order has no id"))?;
    // WooCommerce's *_gmt dates are UTC without an offset.
    let completed = text(&v, &["date_completed_gmt"])
        .or_else(|| text(&v, &["date_modified_gmt"]))
        .and_then(|t| NaiveDateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M:%S").ok())
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            ApiError::unprocessable("the WooCommerce order has no valid date_completed_gmt")
        })?;
    let email = text(&v, &["billing", "email"]);
    let customer_id = match text(&v, &["customer_id"]).filter(|c| c != "0") {
        Some(id) => format!("woo:{id}"),
        None => format!(
            "woo:{}",
            email
                .as_deref()
                .map(|a| derive_id("a", &[&a.to_ascii_lowercase()]))
                .unwrap_or_else(|| format!("order-{order}"))
        ),
    };
    let customer = Customer {
        id: customer_id,
        name: name(
            text(&v, &["billing", "first_name"]),
            text(&v, &["billing", "last_name"]),
        ),
        phone: e164(text(&v, &["billing", "phone"])),
        email,
        ..Default::default()
    };
    let amount = text(&v, &["total"]).and_then(|t| t.parse().ok());
    Ok(Some(Event::delivery(
        format!("woocommerce:order:{order}:completed"),
        completed,
        format!("woocommerce:{order}"),
        customer,
        category,
        amount,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHOPIFY: &str = r#"{"id":4567,"order_id":1234,"status":"success","shipment_status":"delivered",
        "email":"anna@example.de","updated_at":"2026-12-01T10:00:00+01:00",
        "destination":{"first_name":"Anna","last_name":"Schmidt","phone":"+49 151 12345678"}}"#;
    const WOO: &str = r#"{"id":99,"status":"completed","customer_id":7,"date_completed_gmt":"2026-12-01T09:00:00",
        "total":"249.00","billing":{"first_name":"Ana","last_name":"Lopez","email":"ana@example.es","phone":"+34600111222"}}"#;

    #[test]
    fn signatures_are_base64_hmac_of_the_raw_body() {
        let sig = sign_base64("shpss_secret", SHOPIFY.as_bytes());
        assert!(
            verify_base64_hmac("shpss_secret", Some(&sig), SHOPIFY.as_bytes(), "Shopify").is_ok()
        );
        assert_eq!(
            verify_base64_hmac("other", Some(&sig), SHOPIFY.as_bytes(), "Shopify")
                .unwrap_err()
                .status,
            401
        );
        let mut tampered = SHOPIFY.as_bytes().to_vec();
        tampered[10] ^= 1;
        assert!(verify_base64_hmac("shpss_secret", Some(&sig), &tampered, "Shopify").is_err());
        assert!(verify_base64_hmac("shpss_secret", None, SHOPIFY.as_bytes(), "Shopify").is_err());
        assert!(
            verify_base64_hmac("", Some(&sig), SHOPIFY.as_bytes(), "Shopify")
                .unwrap_err()
                .message
                .contains("not configured")
        );
        // A known vector: HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"), base64.
        assert_eq!(
            sign_base64("key", b"The quick brown fox jumps over the lazy dog"),
            "97yD9DBThCSxMpjmqm+xQ+9NWaFJRhdZl0edvC0aPNg="
        );
    }

    #[test]
    fn a_delivered_shopify_fulfillment_is_a_delivery() {
        let e = from_shopify(
            "fulfillments/update",
            SHOPIFY.as_bytes(),
            Category::HighValue,
        )
        .unwrap()
        .unwrap();
        assert_eq!(e.kind, crate::model::EventType::OrderDelivered);
        assert_eq!(e.event_id, "shopify:fulfillment:4567:delivered");
        assert_eq!(e.order_id.as_deref(), Some("shopify:1234"));
        assert_eq!(e.customer.phone.as_deref(), Some("+4915112345678"));
        assert_eq!(e.customer.name.as_deref(), Some("Anna Schmidt"));
        assert_eq!(e.occurred_at.to_rfc3339(), "2026-12-01T09:00:00+00:00");
        e.validate().unwrap();
        let in_transit = SHOPIFY.replace("\"delivered\"", "\"in_transit\"");
        assert!(from_shopify(
            "fulfillments/update",
            in_transit.as_bytes(),
            Category::HighValue
        )
        .unwrap()
        .is_none());
        assert!(
            from_shopify("orders/create", SHOPIFY.as_bytes(), Category::HighValue)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_completed_woocommerce_order_is_a_delivery() {
        let e = from_woocommerce("order.updated", WOO.as_bytes(), Category::Standard)
            .unwrap()
            .unwrap();
        assert_eq!(e.event_id, "woocommerce:order:99:completed");
        assert_eq!(e.customer.id, "woo:7");
        assert_eq!(e.occurred_at.to_rfc3339(), "2026-12-01T09:00:00+00:00");
        assert_eq!(e.amount, Some(249.0));
        e.validate().unwrap();
        let processing = WOO.replace("\"completed\"", "\"processing\"");
        assert!(
            from_woocommerce("order.updated", processing.as_bytes(), Category::Standard)
                .unwrap()
                .is_none()
        );
    }
}
