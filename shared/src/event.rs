//! Business events from the seller's systems (`POST /events`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
pub use crate::model::EventType;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Service,
    HighValue,
    Standard,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whatsapp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birthday: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: EventType,
    pub occurred_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    pub customer: Customer,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Category>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promised_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<f64>,
    /// What a complaint is about (e.g. `delivery_time`), to spot repeats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

impl Event {
    /// An `order.delivered` event with nothing but what a delivery says.
    pub fn delivery(
        event_id: String,
        occurred_at: DateTime<Utc>,
        order_id: String,
        customer: Customer,
        category: Category,
        amount: Option<f64>,
    ) -> Event {
        Event {
            event_id,
            kind: EventType::OrderDelivered,
            occurred_at,
            order_id: Some(order_id),
            customer,
            category: Some(category),
            agent_id: None,
            work_order_id: None,
            promised_at: None,
            amount,
            topic: None,
        }
    }
}

const MAX_ID_LEN: usize = 200;

impl Event {
    /// Checks serde cannot express; each message names the field to fix.
    pub fn validate(&self) -> Result<(), ApiError> {
        check_id("event_id", &self.event_id)?;
        check_id("customer.id", &self.customer.id)?;
        for (field, v) in [
            ("order_id", &self.order_id),
            ("agent_id", &self.agent_id),
            ("work_order_id", &self.work_order_id),
        ] {
            if let Some(v) = v {
                check_id(field, v)?;
            }
        }
        if self.kind == EventType::OrderDelivered && self.order_id.is_none() {
            return Err(ApiError::unprocessable("order.delivered needs order_id"));
        }
        if self.kind == EventType::WorkOrderOpened && self.work_order_id.is_none() {
            return Err(ApiError::unprocessable(
                "work_order.opened needs work_order_id: the visit that was booked",
            ));
        }
        if self.kind.completes_work_order()
            && self.work_order_id.is_none()
            && self.order_id.is_none()
        {
            return Err(ApiError::unprocessable(format!(
                "{:?} needs work_order_id (or order_id) to say what was completed",
                self.kind
            )));
        }
        let c = &self.customer;
        for (field, v) in [
            ("customer.phone", &c.phone),
            ("customer.whatsapp", &c.whatsapp),
        ] {
            if let Some(p) = v {
                if !is_e164(p) {
                    return Err(ApiError::unprocessable(format!(
                        "{field} must be E.164, e.g. +4915112345678 (got {p:?})"
                    )));
                }
            }
        }
        if let Some(e) = &c.email {
            let ok = e.len() <= 254
                && e.split_once('@')
                    .is_some_and(|(a, b)| !a.is_empty() && b.contains('.'));
            if !ok {
                return Err(ApiError::unprocessable(format!(
                    "customer.email is not an e-mail address: {e:?}"
                )));
            }
        }
        if let Some(tz) = &c.time_zone {
            if !crate::zone::Zone::exists(tz) {
                return Err(ApiError::unprocessable(format!(
                    "customer.time_zone must be an IANA zone name such as Europe/Berlin (got {tz:?})"
                )));
            }
        }
        Ok(())
    }
}

fn check_id(field: &str, v: &str) -> Result<(), ApiError> {
    if v.trim().is_empty() || v.len() > MAX_ID_LEN || v.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(format!(
            "{field} must be 1 to {MAX_ID_LEN} printable characters"
        )));
    }
    Ok(())
}

/// `+` then 8 to 15 digits, the first not 0.
pub fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (8..=15).contains(&digits.len())
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str) -> Result<Event, ApiError> {
        let e: Event = crate::error::parse_json(json.as_bytes())?;
        e.validate()?;
        Ok(e)
    }

    #[test]
    fn parses_a_delivery() {
        let e = event(r#"{"event_id":"e1","type":"order.delivered","occurred_at":"2026-12-01T10:00:00+01:00",
            "order_id":"o1","category":"high_value","customer":{"id":"c1","email":"a@b.de","time_zone":"Europe/Berlin"}}"#)
        .unwrap();
        assert_eq!(e.kind, EventType::OrderDelivered);
        assert_eq!(e.occurred_at.to_rfc3339(), "2026-12-01T09:00:00+00:00");
    }

    #[test]
    fn errors_name_the_problem() {
        let err = event(r#"{"event_id":"e1","type":"order.shipped","occurred_at":"2026-12-01T10:00:00Z","customer":{"id":"c"}}"#).unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.message.contains("order.shipped"), "{}", err.message);
        let err = event(r#"{"type":"order.delivered"}"#).unwrap_err();
        assert!(err.message.contains("event_id"), "{}", err.message);
        let err = event(r#"{"event_id":"e","type":"order.delivered","occurred_at":"2026-12-01T10:00:00Z","order_id":"o","customer":{"id":"c","time_zone":"Mars/Base"}}"#).unwrap_err();
        assert_eq!(err.status, 422);
        assert!(err.message.contains("time_zone"));
        let err = event(r#"{"event_id":"e","type":"order.delivered","occurred_at":"2026-12-01T10:00:00Z","order_id":"o","customer":{"id":"c","phone":"0151 123"}}"#).unwrap_err();
        assert!(err.message.contains("E.164"));
    }

    #[test]
    fn e164() {
        assert!(is_e164("+4915112345678"));
        assert!(!is_e164("4915112345678"));
        assert!(!is_e164("+0123456789"));
        assert!(!is_e164("+12"));
    }
}
