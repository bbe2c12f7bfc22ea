//! Whether a callback may be made now, and when it next may (SPEC 3.4).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::calling_hours::{Window, ZoneSource};
use crate::model::CallbackTask;
use crate::model::Contact;
pub use crate::model::WorkOrder;
use crate::task::EscalationPolicy;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowReason {
    /// The service behind the task is not recorded as completed.
    ServiceNotCompleted,
    /// Past the task's validity: it expires.
    TooLate,
    QuietHours,
    ContactLimit,
    OptedOut,
    /// Too soon after an unreachable attempt.
    RetrySpacing,
    /// The task is already closed.
    TaskClosed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowCheck {
    pub callable_now: bool,
    pub reasons: Vec<WindowReason>,
    /// The earliest window all rules allow; `null` when none can be known
    /// (too late, opted out, or waiting for the service to be completed).
    pub next_window: Option<Window>,
    pub customer_local_time: String,
    pub time_zone: String,
    pub time_zone_source: ZoneSource,
}

/// Where a task's work order stands, as the caller sees it before dialling
/// ("the technician has not come yet": nobody asks "is it fixed?").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkOrderState {
    /// Booked (`work_order.opened`), not completed.
    Booked,
    Completed,
    /// Named by an event but never reported booked or completed.
    NotReported,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkOrderView {
    pub work_order_id: String,
    pub state: WorkOrderState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
}

pub fn work_order_view(id: &str, record: Option<&WorkOrder>) -> WorkOrderView {
    let state = match record {
        Some(w) if w.completed_at.is_some() => WorkOrderState::Completed,
        Some(w) if w.opened_at.is_some() => WorkOrderState::Booked,
        _ => WorkOrderState::NotReported,
    };
    WorkOrderView {
        work_order_id: id.to_string(),
        state,
        opened_at: record.and_then(|w| w.opened_at),
        completed_at: record.and_then(|w| w.completed_at),
    }
}

pub fn check_window(
    task: &CallbackTask,
    contact: &Contact,
    work_order: Option<&WorkOrder>,
    contacts_made: &[DateTime<Utc>],
    policy: &EscalationPolicy,
    now: DateTime<Utc>,
) -> WindowCheck {
    let place = policy.contact.place(contact, now);
    let (tz, source, hours) = (place.tz, place.source, &place.hours);
    let mut reasons = Vec::new();
    let mut blocked_for_good = false;
    if task.state.is_closed() {
        reasons.push(WindowReason::TaskClosed);
        blocked_for_good = true;
    }
    if now >= task.expires_at {
        reasons.push(WindowReason::TooLate);
        blocked_for_good = true;
    }
    if contact.opted_out {
        reasons.push(WindowReason::OptedOut);
        blocked_for_good = true;
    }
    // Only a call about the *result* of the work waits for it; a missed
    // call, a complaint or a repair is one the customer waits for, and the
    // caller sees the work order's state instead (SPEC 1).
    let asks_about_result = task.reasons.iter().all(|r| r.asks_about_result());
    let waiting_for_service = asks_about_result
        && task.work_order_id.is_some()
        && work_order.is_none_or(|w| w.completed_at.is_none());
    if waiting_for_service {
        reasons.push(WindowReason::ServiceNotCompleted);
    }
    let mut earliest = match task.next_attempt_at {
        Some(t) if t > now => {
            reasons.push(WindowReason::RetrySpacing);
            t
        }
        _ => now,
    };
    // The limits govern outreach the customer did not ask for (delight calls);
    // a repair callback answers their own low score or complaint, so it counts
    // toward the limit but is not held back by it.
    let limits = &policy.contact.limits;
    let outreach = task.reasons.iter().all(|r| r.is_delight());
    if outreach && !limits.allows(contacts_made, now, &tz) {
        reasons.push(WindowReason::ContactLimit);
        earliest = earliest.max(limits.next_allowed(contacts_made, now, &tz));
    }
    if !hours.is_open(now, &tz) {
        reasons.push(WindowReason::QuietHours);
    }
    let next_window = if blocked_for_good || waiting_for_service {
        None
    } else {
        Some(hours.window_from(earliest, &tz)).filter(|w| w.start < task.expires_at)
    };
    WindowCheck {
        callable_now: reasons.is_empty(),
        reasons,
        next_window,
        customer_local_time: tz.local(now).to_rfc3339(),
        time_zone: tz.name().to_string(),
        time_zone_source: source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TaskReason;
    use crate::task::{plan_task, EscalationRequest};

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn setup(work_order: Option<&str>) -> (CallbackTask, Contact, EscalationPolicy) {
        let contact = Contact {
            customer_id: "c1".into(),
            time_zone: Some("Europe/Berlin".into()),
            ..Default::default()
        };
        let req = EscalationRequest {
            source_id: "s".into(),
            reasons: vec![TaskReason::LowScore],
            contact: contact.clone(),
            answer: None,
            question: None,
            order_id: None,
            agent_id: None,
            work_order_id: work_order.map(str::to_string),
            history: vec![],
            prior_complaints: 0,
            reopens: None,
            topic: None,
            occurred_at: utc("2026-12-04T10:00:00+01:00"),
        };
        let p = EscalationPolicy::default();
        (
            plan_task(&req, &p, utc("2026-12-04T10:00:00+01:00")).unwrap(),
            contact,
            p,
        )
    }

    #[test]
    fn callable_by_day_not_at_night() {
        let (t, c, p) = setup(None);
        let day = check_window(&t, &c, None, &[], &p, utc("2026-12-04T10:00:00+01:00"));
        assert!(day.callable_now, "{day:?}");
        assert_eq!(day.customer_local_time, "2026-12-04T10:00:00+01:00");
        let night = check_window(&t, &c, None, &[], &p, utc("2026-12-04T22:30:00+01:00"));
        assert!(!night.callable_now);
        assert_eq!(night.reasons, vec![WindowReason::QuietHours]);
        assert_eq!(
            night.next_window.unwrap().start,
            utc("2026-12-05T09:00:00+01:00")
        );
    }

    #[test]
    fn only_a_call_about_the_result_waits_for_the_work_order() {
        let (mut t, c, p) = setup(Some("w1"));
        let now = utc("2026-12-04T10:00:00+01:00");
        let open = WorkOrder {
            work_order_id: "w1".into(),
            customer_id: Some("c1".into()),
            order_id: None,
            opened_at: Some(now),
            completed_at: None,
        };
        // A repair callback (here a low score) is one the customer waits for.
        for reasons in [
            vec![TaskReason::LowScore],
            vec![TaskReason::MissedCall],
            vec![TaskReason::Complaint],
        ] {
            t.reasons = reasons;
            let r = check_window(&t, &c, Some(&open), &[], &p, now);
            assert!(r.callable_now, "{:?}: {r:?}", t.reasons);
            assert!(check_window(&t, &c, None, &[], &p, now).callable_now);
        }
        // A satisfaction check asks about the result: it waits, also for a
        // work order never reported.
        t.reasons = vec![TaskReason::Recovered];
        for wo in [Some(&open), None] {
            let r = check_window(&t, &c, wo, &[], &p, now);
            assert_eq!(r.reasons, vec![WindowReason::ServiceNotCompleted]);
            assert!(r.next_window.is_none());
        }
        let done = WorkOrder {
            completed_at: Some(now),
            ..open
        };
        assert!(check_window(&t, &c, Some(&done), &[], &p, now).callable_now);
    }

    #[test]
    fn too_late_and_opted_out() {
        let (t, mut c, p) = setup(None);
        let late = check_window(&t, &c, None, &[], &p, t.expires_at);
        assert!(late.reasons.contains(&WindowReason::TooLate));
        assert!(late.next_window.is_none());
        c.opted_out = true;
        let r = check_window(&t, &c, None, &[], &p, utc("2026-12-04T10:00:00+01:00"));
        assert_eq!(r.reasons, vec![WindowReason::OptedOut]);
    }

    #[test]
    fn contact_limit_moves_a_delight_call_to_tomorrow_but_not_a_repair() {
        let (mut t, c, p) = setup(None);
        let surveyed = [utc("2026-12-04T09:15:00+01:00")];
        let repair = check_window(
            &t,
            &c,
            None,
            &surveyed,
            &p,
            utc("2026-12-04T10:00:00+01:00"),
        );
        assert!(repair.callable_now, "{repair:?}");
        t.reasons = vec![TaskReason::Birthday];
        let surveyed = [utc("2026-12-04T09:15:00+01:00")];
        let r = check_window(
            &t,
            &c,
            None,
            &surveyed,
            &p,
            utc("2026-12-04T10:00:00+01:00"),
        );
        assert_eq!(r.reasons, vec![WindowReason::ContactLimit]);
        assert_eq!(
            r.next_window.unwrap().start,
            utc("2026-12-05T09:00:00+01:00")
        );
    }

    #[test]
    fn retry_spacing_moves_the_window() {
        let (mut t, c, p) = setup(None);
        t.next_attempt_at = Some(utc("2026-12-04T12:00:00+01:00"));
        let r = check_window(&t, &c, None, &[], &p, utc("2026-12-04T10:00:00+01:00"));
        assert_eq!(r.reasons, vec![WindowReason::RetrySpacing]);
        assert_eq!(
            r.next_window.unwrap().start,
            utc("2026-12-04T12:00:00+01:00")
        );
    }

    #[test]
    fn a_us_customer_is_never_called_outside_8_to_21_even_if_the_seller_allows_it() {
        let (t, mut c, mut p) = setup(None);
        c.time_zone = Some("America/Chicago".into());
        p.contact.calling_hours.start = chrono::NaiveTime::from_hms_opt(6, 0, 0).unwrap();
        p.contact.calling_hours.end = chrono::NaiveTime::from_hms_opt(23, 0, 0).unwrap();
        let at = |s| check_window(&t, &c, None, &[], &p, utc(s));
        assert!(!at("2026-12-04T07:59:00-06:00").callable_now);
        assert!(at("2026-12-04T08:00:00-06:00").callable_now);
        assert!(at("2026-12-04T20:59:00-06:00").callable_now);
        let late = at("2026-12-04T21:00:00-06:00");
        assert_eq!(late.reasons, vec![WindowReason::QuietHours]);
        assert_eq!(
            late.next_window.unwrap().start,
            utc("2026-12-05T08:00:00-06:00")
        );
        // Elsewhere the seller's looser hours stand.
        c.time_zone = Some("Europe/Berlin".into());
        assert!(check_window(&t, &c, None, &[], &p, utc("2026-12-04T07:00:00+01:00")).callable_now);
    }

    #[test]
    fn only_a_german_phone_means_berlin_time() {
        let (t, mut c, p) = setup(None);
        c.time_zone = None;
        c.phone = Some("+4915112345678".into());
        c.country = Some("DE".into());
        let r = check_window(&t, &c, None, &[], &p, utc("2026-12-04T10:00:00+01:00"));
        assert_eq!(r.time_zone, "Europe/Berlin");
        assert_eq!(r.time_zone_source, ZoneSource::PhoneCountry);
        assert_eq!(r.customer_local_time, "2026-12-04T10:00:00+01:00");
        c.phone = None;
        c.country = None;
        let r = check_window(&t, &c, None, &[], &p, utc("2026-12-04T10:00:00+01:00"));
        assert_eq!(
            (r.time_zone.as_str(), r.time_zone_source),
            ("UTC", ZoneSource::SellerDefault)
        );
    }

    #[test]
    fn new_york_across_the_november_change_and_kolkata_half_hours() {
        let (t, mut c, p) = setup(None);
        c.time_zone = Some("America/New_York".into());
        // Sat 31 Oct 2026, 22:00 EDT: closed; opens Sun 1 Nov 09:00 EST (14:00Z, not 13:00Z).
        let r = check_window(&t, &c, None, &[], &p, utc("2026-10-31T22:00:00-04:00"));
        assert_eq!(r.next_window.unwrap().start, utc("2026-11-01T14:00:00Z"));
        c.time_zone = Some("Asia/Kolkata".into());
        assert!(!check_window(&t, &c, None, &[], &p, utc("2026-12-04T03:29:00Z")).callable_now);
        assert!(check_window(&t, &c, None, &[], &p, utc("2026-12-04T03:30:00Z")).callable_now);
        c.time_zone = Some("Asia/Shanghai".into());
        assert!(
            check_window(&t, &c, None, &[], &p, utc("2026-12-04T01:00:00Z")).callable_now,
            "09:00 in Shanghai"
        );
    }
}
