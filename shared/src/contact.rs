//! What a customer has been through: the events timeline, open cases, and the
//! contacts made (surveys and callbacks together), with the contact limits.

use crate::zone::Zone;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::calling_hours::{CallingHours, ZoneSource};
use crate::event::Event;
pub use crate::model::EventLogEntry;
use crate::model::EventType;

/// How many events and contacts a customer's logs keep.
/// How many entries a customer's timeline and contact log keep.
pub(crate) const LOG_LEN: usize = 50;

impl From<&Event> for EventLogEntry {
    fn from(e: &Event) -> EventLogEntry {
        EventLogEntry {
            event_id: e.event_id.clone(),
            kind: e.kind,
            occurred_at: e.occurred_at,
            order_id: e.order_id.clone(),
            work_order_id: e.work_order_id.clone(),
            topic: e.topic.clone(),
        }
    }
}

/// Inquiries, complaints and returns not followed by `case.closed` for the same order.
pub fn open_cases(log: &[EventLogEntry]) -> Vec<EventLogEntry> {
    let mut open: Vec<EventLogEntry> = Vec::new();
    for e in log {
        match e.kind {
            EventType::InquiryOpened | EventType::ComplaintOpened | EventType::ReturnRequested => {
                open.push(e.clone())
            }
            EventType::CaseClosed => open.retain(|c| c.order_id != e.order_id),
            _ => {}
        }
    }
    open
}

/// What a customer's timeline says about one order when a contact about its
/// result is judged (SPEC 1: the open-case rule and the work-order rule),
/// whatever the order in which the events arrived.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OrderStatus {
    /// A return was requested for the order, ever (even once its case closed).
    pub returned: bool,
    /// Inquiries and complaints for the order not closed yet.
    pub open_cases: Vec<EventLogEntry>,
    /// Work orders of the order booked (`work_order.opened`) and not completed.
    pub open_work_orders: Vec<String>,
}

pub fn order_status(log: &[EventLogEntry], order_id: &str) -> OrderStatus {
    let mine = |e: &EventLogEntry| e.order_id.as_deref() == Some(order_id);
    let completed: Vec<&str> = log
        .iter()
        .filter(|e| e.kind.completes_work_order())
        .filter_map(|e| e.work_order_id.as_deref())
        .collect();
    let mut open_work_orders: Vec<String> = log
        .iter()
        .filter(|e| e.kind == EventType::WorkOrderOpened && mine(e))
        .filter_map(|e| e.work_order_id.clone())
        .filter(|w| !completed.contains(&w.as_str()))
        .collect();
    open_work_orders.dedup();
    OrderStatus {
        returned: log
            .iter()
            .any(|e| e.kind == EventType::ReturnRequested && mine(e)),
        open_cases: open_cases(log)
            .into_iter()
            .filter(|e| mine(e) && e.kind != EventType::ReturnRequested)
            .collect(),
        open_work_orders,
    }
}

/// Contact limits, surveys and callbacks counted together (defaults: 1 a day, 3 a week).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactLimits {
    pub per_day: u32,
    pub per_week: u32,
}

impl Default for ContactLimits {
    fn default() -> ContactLimits {
        ContactLimits {
            per_day: 1,
            per_week: 3,
        }
    }
}

impl ContactLimits {
    /// Whether one more contact at `now` stays within the limits. A "day" is the
    /// customer's local calendar day; a week is the last 7 × 24 hours.
    pub fn allows(&self, contacts: &[DateTime<Utc>], now: DateTime<Utc>, tz: &Zone) -> bool {
        let today = tz.local(now).date_naive();
        let same_day = contacts
            .iter()
            .filter(|c| tz.local(**c).date_naive() == today)
            .count() as u32;
        let week = contacts
            .iter()
            .filter(|c| **c > now - Duration::days(7) && **c <= now)
            .count() as u32;
        same_day < self.per_day && week < self.per_week
    }

    /// The earliest moment from `now` at which one more contact is allowed.
    pub fn next_allowed(
        &self,
        contacts: &[DateTime<Utc>],
        now: DateTime<Utc>,
        tz: &Zone,
    ) -> DateTime<Utc> {
        let mut t = now;
        // Candidates: local midnights of the next days, and the moments old contacts leave the week.
        for _ in 0..16 {
            if self.allows(contacts, t, tz) {
                return t;
            }
            let next_midnight = (tz.local(t).date_naive() + Duration::days(1))
                .and_hms_opt(0, 0, 0)
                .and_then(|m| tz.from_local(m).earliest())
                .unwrap_or(t + Duration::days(1));
            let week_frees = contacts
                .iter()
                .map(|c| *c + Duration::days(7))
                .filter(|f| *f > t)
                .min();
            t = match week_frees {
                Some(f) if !self.week_ok(contacts, t) => f.max(t + Duration::seconds(1)),
                _ => next_midnight,
            };
        }
        t
    }

    fn week_ok(&self, contacts: &[DateTime<Utc>], now: DateTime<Utc>) -> bool {
        (contacts
            .iter()
            .filter(|c| **c > now - Duration::days(7) && **c <= now)
            .count() as u32)
            < self.per_week
    }
}

/// When a customer may be contacted at all, by survey or by call: calling hours
/// in their zone (the seller's default zone when theirs is unknown) and the
/// contact limits. Data (the `contact_rules` variable), shared by every component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactRules {
    #[serde(default)]
    pub calling_hours: CallingHours,
    #[serde(default = "utc")]
    pub default_time_zone: String,
    #[serde(default)]
    pub limits: ContactLimits,
    /// Stricter hours for some markets (ISO country → hours); the law's limits
    /// apply on top of these in any case.
    #[serde(default)]
    pub markets: std::collections::BTreeMap<String, CallingHours>,
}

/// Where and when a customer may be contacted.
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    pub tz: Zone,
    pub source: ZoneSource,
    pub country: Option<String>,
    /// The hours that hold for this customer: the seller's, narrowed by the law.
    pub hours: CallingHours,
}

fn utc() -> String {
    "UTC".into()
}

impl Default for ContactRules {
    fn default() -> ContactRules {
        ContactRules {
            calling_hours: CallingHours::default(),
            default_time_zone: utc(),
            limits: ContactLimits::default(),
            markets: Default::default(),
        }
    }
}

impl ContactRules {
    pub fn from_json(text: &str) -> Result<ContactRules, String> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let rules: ContactRules = serde_path_to_error::deserialize(de)
            .map_err(|e| format!("contact rules: at `{}`: {}", e.path(), e.inner()))?;
        if !Zone::exists(&rules.default_time_zone) {
            return Err(format!(
                "contact rules: at `default_time_zone`: {:?} is not an IANA zone",
                rules.default_time_zone
            ));
        }
        if rules.calling_hours.start >= rules.calling_hours.end {
            return Err("contact rules: at `calling_hours`: start must be before end".into());
        }
        Ok(rules)
    }

    /// The customer's zone (their own, else from their phone's country, else the
    /// seller's default) and the contact hours that hold there.
    pub fn place(&self, contact: &crate::model::Contact, at: DateTime<Utc>) -> Place {
        let loc = crate::market::locate(
            contact.time_zone.as_deref(),
            contact.country.as_deref(),
            &self.default_time_zone,
            at,
        );
        let seller = loc
            .country
            .as_ref()
            .and_then(|c| self.markets.get(c))
            .unwrap_or(&self.calling_hours);
        let hours = crate::market::effective_hours(seller, loc.country.as_deref());
        Place {
            tz: loc.tz,
            source: loc.source,
            country: loc.country,
            hours,
        }
    }
}

/// The month of a birthday given as `YYYY-MM-DD` or `MM-DD`.
pub fn month_of_birthday(b: &str) -> Option<u32> {
    birthday_day(b).map(|(month, _)| month)
}

/// The month and day of a birthday written `YYYY-MM-DD` or `MM-DD`.
pub fn birthday_day(b: &str) -> Option<(u32, u32)> {
    let parts: Vec<&str> = b.split('-').collect();
    let (month, day) = match parts.len() {
        3 => (parts[1], parts[2]),
        2 => (parts[0], parts[1]),
        _ => return None,
    };
    let month: u32 = month.parse().ok().filter(|m| (1..=12).contains(m))?;
    let day: u32 = day.parse().ok().filter(|d| (1..=31).contains(d))?;
    Some((month, day))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn entry(id: &str, kind: EventType, order: &str) -> EventLogEntry {
        EventLogEntry {
            event_id: id.into(),
            kind,
            occurred_at: utc("2026-12-01T10:00:00Z"),
            order_id: Some(order.into()),
            work_order_id: None,
            topic: None,
        }
    }

    #[test]
    fn rules_parse_with_defaults_and_name_bad_fields() {
        assert_eq!(
            ContactRules::from_json("{}").unwrap(),
            ContactRules::default()
        );
        let r = ContactRules::from_json(r#"{"limits": {"per_day": 2, "per_week": 5}}"#).unwrap();
        assert_eq!(r.limits.per_day, 2);
        assert!(
            ContactRules::from_json(r#"{"default_time_zone": "Nowhere"}"#)
                .unwrap_err()
                .contains("default_time_zone")
        );
        assert!(
            ContactRules::from_json(r#"{"calling_hours": {"start": "9am", "end": "21:30"}}"#)
                .unwrap_err()
                .contains("calling_hours")
        );
    }

    #[test]
    fn cases_close_per_order() {
        let log = vec![
            entry("1", EventType::ComplaintOpened, "o1"),
            entry("2", EventType::InquiryOpened, "o2"),
            entry("3", EventType::CaseClosed, "o1"),
            entry("4", EventType::OrderDelivered, "o3"),
        ];
        let open = open_cases(&log);
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].event_id, "2");
    }

    #[test]
    fn one_a_day_three_a_week_in_local_days() {
        let l = ContactLimits::default();
        let berlin: Zone = "Europe/Berlin".parse().unwrap();
        let contacts = vec![utc("2026-12-04T10:00:00+01:00")];
        assert!(!l.allows(&contacts, utc("2026-12-04T20:00:00+01:00"), &berlin));
        assert!(l.allows(&contacts, utc("2026-12-05T00:00:00+01:00"), &berlin));
        assert_eq!(
            l.next_allowed(&contacts, utc("2026-12-04T20:00:00+01:00"), &berlin),
            utc("2026-12-05T00:00:00+01:00")
        );
        let week = vec![
            utc("2026-12-01T10:00:00+01:00"),
            utc("2026-12-02T10:00:00+01:00"),
            utc("2026-12-03T10:00:00+01:00"),
        ];
        assert!(!l.allows(&week, utc("2026-12-05T10:00:00+01:00"), &berlin));
        assert_eq!(
            l.next_allowed(&week, utc("2026-12-05T10:00:00+01:00"), &berlin),
            utc("2026-12-08T10:00:00+01:00")
        );
        assert!(l.allows(&[], utc("2026-12-05T10:00:00+01:00"), &berlin));
    }
}
