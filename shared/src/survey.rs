//! A planned survey's record, and the send-time decision the issuer's tick makes.

use chrono::{DateTime, Utc};

use crate::contact::order_status;
use crate::model::Channel;
pub use crate::model::{Contact, SkipReason, Survey, SurveyState, TimelineEntry};
use crate::policy::{PlannedSurvey, SurveyPolicy};

impl Survey {
    /// A planned survey with its timing from `plan`; callers fill in who and what.
    fn from_plan(plan: &PlannedSurvey, now: DateTime<Utc>, detail: Option<String>) -> Survey {
        Survey {
            survey_id: plan.survey_id.clone(),
            event_id: String::new(),
            kind: plan.kind,
            scale: plan.scale,
            customer_id: String::new(),
            order_id: None,
            agent_id: None,
            work_order_id: None,
            occurred_at: None,
            occurred_on: None,
            due_at: plan.due_at,
            send_by: plan.send_by,
            expires_at: plan.expires_at,
            next_attempt_at: plan.due_at.max(now),
            state: SurveyState::Planned,
            sent_channels: Vec::new(),
            timeline: vec![TimelineEntry {
                at: now,
                what: "planned".into(),
                reason: None,
                detail,
            }],
            resurvey_of: None,
            reminder_at: None,
            reminded: false,
            claimed_at: None,
            pending: Vec::new(),
        }
    }

    pub fn new(plan: &PlannedSurvey, event: &crate::event::Event, now: DateTime<Utc>) -> Survey {
        Survey {
            event_id: event.event_id.clone(),
            customer_id: event.customer.id.clone(),
            order_id: event.order_id.clone(),
            agent_id: event.agent_id.clone(),
            work_order_id: event.work_order_id.clone(),
            occurred_at: Some(event.occurred_at),
            ..Survey::from_plan(plan, now, None)
        }
    }

    /// The re-survey after a resolved callback: same customer, order and staff.
    pub fn resurvey(
        plan: &PlannedSurvey,
        task: &crate::model::CallbackTask,
        now: DateTime<Utc>,
    ) -> Survey {
        Survey {
            event_id: format!("resurvey:{}", task.task_id),
            customer_id: task.customer_id.clone(),
            order_id: task.context.order_id.clone(),
            agent_id: Some(task.owner.clone()),
            work_order_id: task.work_order_id.clone(),
            resurvey_of: Some(task.task_id.clone()),
            ..Survey::from_plan(
                plan,
                now,
                Some(format!("re-survey after callback {}", task.task_id)),
            )
        }
    }

    /// A later plan for the same survey (the product survey of an order
    /// planned again by its installation): the survey moves to the later
    /// time if it never went out, so the product is surveyed once, after
    /// the installation. `false`: nothing to move (sent, answered, cancelled,
    /// or already as late).
    pub fn reschedule(&mut self, plan: &PlannedSurvey, event_id: &str, now: DateTime<Utc>) -> bool {
        let never_sent = self.sent_channels.is_empty()
            && matches!(self.state, SurveyState::Planned | SurveyState::Expired);
        if !never_sent || plan.due_at <= self.due_at {
            return false;
        }
        self.state = SurveyState::Planned;
        self.event_id = event_id.to_string();
        self.due_at = plan.due_at;
        self.send_by = plan.send_by;
        self.expires_at = plan.expires_at;
        self.next_attempt_at = plan.due_at.max(now);
        let detail = format!("planned again by event {event_id}: one product survey per order");
        self.note(now, "rescheduled", None, Some(detail));
        true
    }

    pub fn note(
        &mut self,
        at: DateTime<Utc>,
        what: &str,
        reason: Option<SkipReason>,
        detail: Option<String>,
    ) {
        self.timeline.push(TimelineEntry {
            at,
            what: what.to_string(),
            reason,
            detail,
        });
    }

    /// Mark the survey answered if the customer's history holds its answer
    /// (the answer path records answers there and never rewrites the survey,
    /// saving two store operations per answer). `true` if this changed it.
    pub fn settle_answer(&mut self, history: &crate::model::History) -> bool {
        let Some(a) = history.answer_to(&self.survey_id) else {
            return false;
        };
        if self.state == SurveyState::Answered {
            return false;
        }
        self.state = SurveyState::Answered;
        self.note(
            a.answered_at,
            "answered",
            None,
            Some(format!("score {} via {}", a.score, a.channel.as_str())),
        );
        true
    }

    /// The skip reasons recorded so far, for `GET /surveys/{id}`.
    pub fn skip_reasons(&self) -> Vec<SkipReason> {
        let mut out: Vec<SkipReason> = self.timeline.iter().filter_map(|t| t.reason).collect();
        out.dedup();
        out
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum SendDecision {
    /// Send now on these channels.
    Send(Vec<Channel>),
    /// Not now: look again at `until` (quiet hours).
    Defer {
        until: DateTime<Utc>,
        reason: SkipReason,
    },
    /// Never: record why.
    Drop(SkipReason),
    /// Not due yet, or already dealt with: leave it alone.
    Nothing,
}

/// Whether the one reminder goes out now: only for a survey sent and not
/// answered, once, on a channel it was not sent on, before the link expires,
/// within calling hours and contact limits.
pub fn decide_reminder(
    survey: &Survey,
    customer: &CustomerNow,
    policy: &SurveyPolicy,
    now: DateTime<Utc>,
) -> SendDecision {
    let Some(rule) = &policy.reminder else {
        return SendDecision::Nothing;
    };
    let due = survey.reminder_at.is_some_and(|at| at <= now);
    if survey.state != SurveyState::Sent || survey.reminded || !due {
        return SendDecision::Nothing;
    }
    // The customer needs time to answer the reminder: not in the link's last day.
    if now >= survey.expires_at - chrono::Duration::days(1) {
        return SendDecision::Drop(SkipReason::Expired);
    }
    let contact = &customer.contact;
    if contact.opted_out {
        return SendDecision::Drop(SkipReason::OptedOut);
    }
    // On a channel the survey did not go out on if the customer has one (it
    // went out on all of theirs by default): else again on their first.
    let has = |c: &Channel| contact.address(*c).is_some();
    let Some(channel) = rule
        .channels
        .iter()
        .copied()
        .find(|c| !survey.sent_channels.contains(c) && has(c))
        .or_else(|| rule.channels.iter().copied().find(has))
    else {
        return SendDecision::Drop(SkipReason::NoChannel);
    };
    let place = policy.contact.place(contact, now);
    if !place.hours.is_open(now, &place.tz) {
        return SendDecision::Defer {
            until: place.hours.next_opening(now, &place.tz),
            reason: SkipReason::QuietHours,
        };
    }
    if !policy
        .contact
        .limits
        .allows(&customer.contacts_made, now, &place.tz)
    {
        return SendDecision::Drop(SkipReason::ContactLimit);
    }
    SendDecision::Send(vec![channel])
}

/// What is known about the customer at send time.
#[derive(Debug, Clone, Default)]
pub struct CustomerNow {
    pub contact: Contact,
    /// When they were contacted lately (surveys sent, conversations).
    pub contacts_made: Vec<DateTime<Utc>>,
    /// Their timeline (deliveries, work orders, cases), in time order.
    pub events: Vec<crate::model::EventLogEntry>,
}

/// How long a survey held by an open case or an open work order waits before
/// it is looked at again (never past its window).
const HOLD_RECHECK_HOURS: i64 = 1;

fn hold(
    survey: &Survey,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
    reason: SkipReason,
) -> SendDecision {
    SendDecision::Defer {
        until: until
            .min(survey.send_by)
            .max(now + chrono::Duration::minutes(1)),
        reason,
    }
}

/// Whether a due survey goes out now (SPEC 1): never past its window, never
/// to someone who opted out or returned the goods, never while an inquiry or
/// complaint of theirs is open or a work order of the order is not done
/// (held, not cancelled), never at night in the customer's zone, and never
/// past the contact limit (postponed inside the window). It goes out on every
/// channel of the policy the customer has, at once: one contact.
pub fn decide_send(
    survey: &Survey,
    customer: &CustomerNow,
    policy: &SurveyPolicy,
    now: DateTime<Utc>,
) -> SendDecision {
    let (contact, contacts_made) = (&customer.contact, customer.contacts_made.as_slice());
    if survey.state != SurveyState::Planned || now < survey.next_attempt_at {
        return SendDecision::Nothing;
    }
    if now >= survey.send_by {
        return SendDecision::Drop(SkipReason::Expired);
    }
    if contact.opted_out {
        return SendDecision::Drop(SkipReason::OptedOut);
    }
    let recheck = now + chrono::Duration::hours(HOLD_RECHECK_HOURS);
    if let Some(order) = &survey.order_id {
        let status = order_status(&customer.events, order);
        if policy.skip_on_open_case && status.returned {
            return SendDecision::Drop(SkipReason::Returned);
        }
        if policy.skip_on_open_case && !status.open_cases.is_empty() {
            return hold(survey, now, recheck, SkipReason::OpenCase);
        }
        // Every survey asks about a result: none while the work is booked.
        if !status.open_work_orders.is_empty() {
            return hold(survey, now, recheck, SkipReason::ServiceNotCompleted);
        }
    }
    // Channels acknowledged by an earlier, partly failed attempt are not sent again.
    let usable: Vec<Channel> = policy
        .channels
        .iter()
        .copied()
        .filter(|c| contact.address(*c).is_some() && !survey.sent_channels.contains(c))
        .collect();
    if usable.is_empty() {
        return SendDecision::Drop(SkipReason::NoChannel);
    }
    let rules = &policy.contact;
    let place = rules.place(contact, now);
    let tz = place.tz;
    if !place.hours.is_open(now, &tz) {
        return SendDecision::Defer {
            until: place.hours.next_opening(now, &tz),
            reason: SkipReason::QuietHours,
        };
    }
    // Finishing the channels of a survey already partly sent is the same contact.
    if survey.sent_channels.is_empty() && !rules.limits.allows(contacts_made, now, &tz) {
        let next = rules.limits.next_allowed(contacts_made, now, &tz);
        return hold(survey, now, next, SkipReason::ContactLimit);
    }
    SendDecision::Send(usable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Category, Customer, Event};
    use crate::model::EventType;
    use crate::policy::SurveyPolicy;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn survey() -> Survey {
        let e = Event {
            event_id: "e1".into(),
            kind: EventType::OrderDelivered,
            occurred_at: utc("2026-12-01T10:00:00+01:00"),
            order_id: Some("o1".into()),
            customer: Customer {
                id: "c1".into(),
                ..Default::default()
            },
            category: Some(Category::HighValue),
            agent_id: None,
            work_order_id: None,
            promised_at: None,
            amount: None,
            topic: None,
        };
        let plan = SurveyPolicy::default().plan(&e);
        Survey::new(&plan[0], &e, e.occurred_at)
    }

    fn contact() -> Contact {
        Contact {
            customer_id: "c1".into(),
            email: Some("a@b.de".into()),
            time_zone: Some("Europe/Berlin".into()),
            ..Default::default()
        }
    }

    fn decide(s: &Survey, c: &Contact, now: &str) -> SendDecision {
        let customer = CustomerNow {
            contact: c.clone(),
            ..Default::default()
        };
        decide_send(s, &customer, &SurveyPolicy::default(), utc(now))
    }

    #[test]
    fn one_reminder_on_another_channel_after_48_hours_unless_answered() {
        let mut s = survey();
        s.state = SurveyState::Sent;
        s.sent_channels = vec![Channel::Email];
        s.reminder_at = Some(utc("2026-12-06T10:00:00+01:00"));
        let mut c = contact();
        c.phone = Some("+4915112345678".into());
        c.country = Some("DE".into());
        let customer = CustomerNow {
            contact: c,
            ..Default::default()
        };
        let p = SurveyPolicy::default();
        assert_eq!(
            decide_reminder(&s, &customer, &p, utc("2026-12-06T09:00:00+01:00")),
            SendDecision::Nothing
        );
        assert_eq!(
            decide_reminder(&s, &customer, &p, utc("2026-12-06T10:00:00+01:00")),
            SendDecision::Send(vec![Channel::Sms])
        );
        let answered = Survey {
            state: SurveyState::Answered,
            ..s.clone()
        };
        assert_eq!(
            decide_reminder(&answered, &customer, &p, utc("2026-12-06T10:00:00+01:00")),
            SendDecision::Nothing
        );
        let once = Survey {
            reminded: true,
            ..s.clone()
        };
        assert_eq!(
            decide_reminder(&once, &customer, &p, utc("2026-12-06T10:00:00+01:00")),
            SendDecision::Nothing
        );
        let email_only = CustomerNow {
            contact: contact(),
            ..Default::default()
        };
        // Sent on every channel the customer has: the reminder goes on their first again.
        assert_eq!(
            decide_reminder(&s, &email_only, &p, utc("2026-12-06T10:00:00+01:00")),
            SendDecision::Send(vec![Channel::Email])
        );
        let nothing = CustomerNow::default();
        assert_eq!(
            decide_reminder(&s, &nothing, &p, utc("2026-12-06T10:00:00+01:00")),
            SendDecision::Drop(SkipReason::NoChannel)
        );
    }

    fn entry(
        kind: EventType,
        at: &str,
        order: &str,
        wo: Option<&str>,
    ) -> crate::model::EventLogEntry {
        crate::model::EventLogEntry {
            event_id: format!("{kind:?}-{at}"),
            kind,
            occurred_at: utc(at),
            order_id: Some(order.into()),
            work_order_id: wo.map(str::to_string),
            topic: None,
        }
    }

    fn with_events(events: Vec<crate::model::EventLogEntry>) -> CustomerNow {
        CustomerNow {
            contact: contact(),
            events,
            ..Default::default()
        }
    }

    #[test]
    fn an_open_case_holds_a_return_cancels_whenever_they_arrived() {
        let s = survey();
        let p = SurveyPolicy::default();
        let now = utc("2026-12-04T10:00:00+01:00");
        let email = SendDecision::Send(vec![Channel::Email]);
        // A complaint logged before the delivery was even planned still holds it.
        let complaint = entry(
            EventType::ComplaintOpened,
            "2026-11-28T10:00:00+01:00",
            "o1",
            None,
        );
        let held = SendDecision::Defer {
            until: now + chrono::Duration::hours(1),
            reason: SkipReason::OpenCase,
        };
        assert_eq!(
            decide_send(&s, &with_events(vec![complaint.clone()]), &p, now),
            held
        );
        // Closed: it goes out.
        let closed = entry(
            EventType::CaseClosed,
            "2026-12-03T10:00:00+01:00",
            "o1",
            None,
        );
        let both = with_events(vec![complaint.clone(), closed.clone()]);
        assert_eq!(decide_send(&s, &both, &p, now), email);
        // A return requested in transit cancels it, even once its case is closed.
        let ret = entry(
            EventType::ReturnRequested,
            "2026-11-30T10:00:00+01:00",
            "o1",
            None,
        );
        let returned = with_events(vec![ret.clone(), closed]);
        assert_eq!(
            decide_send(&s, &returned, &p, now),
            SendDecision::Drop(SkipReason::Returned)
        );
        // A case about another order does not count.
        let other = with_events(vec![entry(
            EventType::ReturnRequested,
            "2026-12-02T10:00:00+01:00",
            "o2",
            None,
        )]);
        assert_eq!(decide_send(&s, &other, &p, now), email);
        // Routing answers into public reviews: the rule must be off (review suppression).
        let public = SurveyPolicy {
            skip_on_open_case: false,
            ..SurveyPolicy::default()
        };
        assert_eq!(
            decide_send(&s, &with_events(vec![complaint, ret]), &public, now),
            email
        );
        // Held to the end of its window, never past it.
        let late = s.send_by - chrono::Duration::minutes(30);
        let pending = with_events(vec![entry(
            EventType::InquiryOpened,
            "2026-12-02T10:00:00+01:00",
            "o1",
            None,
        )]);
        assert_eq!(
            decide_send(&s, &pending, &p, late),
            SendDecision::Defer {
                until: s.send_by,
                reason: SkipReason::OpenCase
            }
        );
        assert_eq!(
            decide_send(&s, &pending, &p, s.send_by),
            SendDecision::Drop(SkipReason::Expired)
        );
    }

    #[test]
    fn no_survey_about_the_result_while_a_work_order_of_the_order_is_booked() {
        let s = survey();
        let p = SurveyPolicy::default();
        let now = utc("2026-12-04T10:00:00+01:00");
        let booked = entry(
            EventType::WorkOrderOpened,
            "2026-12-02T10:00:00+01:00",
            "o1",
            Some("w9"),
        );
        assert_eq!(
            decide_send(&s, &with_events(vec![booked.clone()]), &p, now),
            SendDecision::Defer {
                until: now + chrono::Duration::hours(1),
                reason: SkipReason::ServiceNotCompleted
            }
        );
        let done = crate::model::EventLogEntry {
            order_id: None,
            ..entry(
                EventType::InstallationCompleted,
                "2026-12-03T10:00:00+01:00",
                "-",
                Some("w9"),
            )
        };
        assert_eq!(
            decide_send(&s, &with_events(vec![booked, done]), &p, now),
            SendDecision::Send(vec![Channel::Email])
        );
    }

    #[test]
    fn a_contact_limit_postpones_inside_the_window() {
        // Surveys and callbacks count together: a call at 09:30 is today's contact.
        let s = survey();
        let p = SurveyPolicy::default();
        let now = utc("2026-12-04T10:00:00+01:00");
        let customer = CustomerNow {
            contact: contact(),
            contacts_made: vec![utc("2026-12-04T09:30:00+01:00")],
            ..Default::default()
        };
        let SendDecision::Defer { until, reason } = decide_send(&s, &customer, &p, now) else {
            panic!("postponed, not dropped");
        };
        assert_eq!(reason, SkipReason::ContactLimit);
        assert!(until > now && until <= s.send_by, "{until}");
        assert_eq!(
            crate::zone::Zone::get("Europe/Berlin")
                .unwrap()
                .local(until)
                .date_naive()
                .to_string(),
            "2026-12-05"
        );
    }

    #[test]
    fn a_product_survey_planned_again_moves_once_and_never_after_sending() {
        let mut s = survey();
        let mut later = SurveyPolicy::default().plan(&Event {
            event_id: "inst".into(),
            kind: EventType::InstallationCompleted,
            occurred_at: utc("2026-12-10T10:00:00+01:00"),
            order_id: Some("o1".into()),
            customer: Customer {
                id: "c1".into(),
                ..Default::default()
            },
            category: None,
            agent_id: None,
            work_order_id: Some("w9".into()),
            promised_at: None,
            amount: None,
            topic: None,
        });
        later.retain(|p| p.kind == crate::model::SurveyKind::Product);
        assert_eq!(
            later[0].survey_id, s.survey_id,
            "one product survey per order"
        );
        let now = utc("2026-12-10T10:00:00+01:00");
        assert!(s.reschedule(&later[0], "inst", now));
        assert_eq!(s.due_at, utc("2026-12-13T10:00:00+01:00"));
        assert!(!s.reschedule(&later[0], "inst", now), "already as late");
        let mut sent = survey();
        sent.state = SurveyState::Sent;
        sent.sent_channels = vec![Channel::Email];
        assert!(!sent.reschedule(&later[0], "inst", now));
    }

    #[test]
    fn nothing_before_due_then_send_in_hours() {
        let s = survey();
        assert_eq!(
            decide(&s, &contact(), "2026-12-03T10:00:00+01:00"),
            SendDecision::Nothing
        );
        assert_eq!(
            decide(&s, &contact(), "2026-12-04T10:00:00+01:00"),
            SendDecision::Send(vec![Channel::Email])
        );
    }

    #[test]
    fn quiet_hours_defer_to_the_morning() {
        let s = survey();
        match decide(&s, &contact(), "2026-12-04T22:45:00+01:00") {
            SendDecision::Defer { until, reason } => {
                assert_eq!(reason, SkipReason::QuietHours);
                assert_eq!(until, utc("2026-12-05T09:00:00+01:00"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn never_late_never_opted_out() {
        let s = survey();
        assert_eq!(
            decide(&s, &contact(), "2026-12-08T10:00:00+01:00"),
            SendDecision::Drop(SkipReason::Expired)
        );
        let mut c = contact();
        c.opted_out = true;
        assert_eq!(
            decide(&s, &c, "2026-12-04T10:00:00+01:00"),
            SendDecision::Drop(SkipReason::OptedOut)
        );
        c = contact();
        c.email = None;
        assert_eq!(
            decide(&s, &c, "2026-12-04T10:00:00+01:00"),
            SendDecision::Drop(SkipReason::NoChannel)
        );
    }
}
