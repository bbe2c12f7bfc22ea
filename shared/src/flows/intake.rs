//! Taking in a business event (`POST /events`, the shop webhooks), in two
//! steps around the one thing a component does itself, handing a callback to
//! the escalator:
//! 1. [`begin`]: the event's commit marker read (present: a duplicate, done);
//!    the customer's timeline, contact record, birthday and work order
//!    updated; what the event asks of a human decided;
//! 2. [`finish`]: each planned survey created once and indexed, then the
//!    commit marker written last.
//!
//! Every step is idempotent, so a delivery that failed half-way is finished
//! by the next one instead of being turned away as a duplicate.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::contact::birthday_day;
use crate::event::Event;
use crate::flows::contact::log_event;
use crate::flows::escalation::commit;
use crate::flows::survey::{create_survey, index_due};
use crate::keys;
use crate::message::{acknowledge_missed_call, CallAcknowledgement};
use crate::model::CallbackTask;
use crate::model::{ComplaintEntry, Contact, EventType, History, Survey, TaskReason, WorkOrder};
use crate::policy::PlannedSurvey;
use crate::policy::SurveyPolicy;
use crate::storage::{Storage, StorageExt, Update};
use crate::task::{supersede, EscalationRequest, WORK_ORDER_OVERDUE_HOURS};
use crate::webhooks::Webhooks;
use crate::ApiError;

/// What is kept per event for idempotency.
#[derive(Debug, Serialize, Deserialize)]
pub struct EventRecord {
    pub event_id: String,
    pub kind: EventType,
    pub received_at: DateTime<Utc>,
    pub survey_ids: Vec<String>,
}

/// Where [`begin`] left an event.
#[derive(Debug)]
pub enum Begun {
    /// Its commit marker is there: taken in before, nothing to do.
    Duplicate,
    /// Taken in up to the surveys; a callback to hand to the escalator
    /// first, if any, and a missed call's acknowledgement SMS to send at once
    /// (claimed: if sending fails, [`ack_not_sent`] gives the claim back).
    Proceed {
        hand_off: Option<EscalationRequest>,
        acknowledge: Option<CallAcknowledgement>,
    },
}

/// What taking in an event needs besides the event.
pub struct IntakeContext<'a> {
    pub policy: &'a SurveyPolicy,
    /// Who is told when a task closes (a missed call's, once the customer got through).
    pub webhooks: &'a Webhooks,
    /// The seller's name, for the acknowledgement SMS.
    pub merchant: &'a str,
    pub now: DateTime<Utc>,
}

/// Step 1 (see the module).
pub fn begin<S: Storage + ?Sized>(
    store: &S,
    event: &Event,
    cx: &IntakeContext,
) -> Result<Begun, ApiError> {
    if store.get(&keys::event(&event.event_id))?.is_some() {
        return Ok(Begun::Duplicate);
    }
    log_event(store, event)?;
    let contact = apply_side_effects(store, event)?;
    if matches!(event.kind, EventType::CallAnswered | EventType::CaseClosed) {
        close_missed_call(store, event, cx)?;
    }
    let acknowledge =
        acknowledge_missed_call(event, &contact, &cx.policy.contact, cx.merchant, cx.now);
    let acknowledge = match acknowledge {
        Some(ack) if store.create_json(&keys::missed_call_ack(&event.event_id), &cx.now)? => {
            Some(ack)
        }
        _ => None,
    };
    let hand_off = callback_request(store, event, contact)?;
    Ok(Begun::Proceed {
        hand_off,
        acknowledge,
    })
}

/// The acknowledgement of `event` could not be handed over: give its claim
/// back, so the seller's retry of the event sends it.
pub fn ack_not_sent<S: Storage + ?Sized>(store: &S, event: &Event) -> Result<(), ApiError> {
    Ok(store.delete(&keys::missed_call_ack(&event.event_id))?)
}

/// The customer got through to us (`call.answered`), or the case of the
/// order was closed: their task about a missed call before it closes by
/// itself (`task::supersede`), nobody calls them back for nothing.
fn close_missed_call<S: Storage + ?Sized>(
    store: &S,
    event: &Event,
    cx: &IntakeContext,
) -> Result<(), ApiError> {
    let Some(id) = crate::flows::escalation::callbacks_of(store, &event.customer.id)?.open else {
        return Ok(());
    };
    let Some(task) = store.get_json::<CallbackTask>(&keys::task(&id))? else {
        return Ok(());
    };
    if event.kind == EventType::CaseClosed && task.context.order_id != event.order_id {
        return Ok(());
    }
    let label = format!("{} {}", event.kind.as_str(), event.event_id);
    let step = |t: &CallbackTask| {
        supersede(t, &label, event.occurred_at, cx.now)
            .ok_or_else(|| ApiError::conflict("nothing to close"))
    };
    match commit(
        store,
        &id,
        None,
        None,
        (cx.policy, cx.webhooks),
        cx.now,
        step,
    ) {
        Err(e) if e.status == 409 => Ok(()),
        other => other.map(drop),
    }
}

/// Step 2 (see the module): `true` if this delivery wrote the commit marker
/// (the first), `false` if another delivery of the event got there first.
pub fn finish<S: Storage + ?Sized>(
    store: &S,
    event: &Event,
    plan: &[PlannedSurvey],
    now: DateTime<Utc>,
) -> Result<bool, ApiError> {
    // Each survey is created exactly once (compare-and-swap) and indexed where the tick finds it.
    for p in plan {
        if !create_survey(store, &Survey::new(p, event, now))? {
            // Planned before by another event (the order's product survey).
            let key = keys::survey(&p.survey_id);
            let moved =
                store.update_if::<Survey, _>(&key, |s| s.reschedule(p, &event.event_id, now))?;
            if let Some(s) = moved {
                index_due(store, &s.survey_id, s.next_attempt_at)?;
            }
        }
        store.add_to_list(&keys::customer_surveys(&event.customer.id), &p.survey_id)?;
    }
    let record = EventRecord {
        event_id: event.event_id.clone(),
        kind: event.kind,
        received_at: now,
        survey_ids: plan.iter().map(|p| p.survey_id.clone()).collect(),
    };
    Ok(store.create_json(&keys::event(&event.event_id), &record)?)
}

/// What an event changes besides planning: the contact record (and a new
/// customer's empty answer history), work orders.
/// Returns the contact as it now stands.
fn apply_side_effects<S: Storage + ?Sized>(store: &S, event: &Event) -> Result<Contact, ApiError> {
    let c = &event.customer;
    let opted_out = event.kind == EventType::CustomerOptedOut;
    let mut new_customer = false;
    let contact = store
        .update_json::<Contact, _>(&keys::contact(&c.id), |current| {
            new_customer = current.is_none();
            let mut contact = current.unwrap_or_else(|| Contact {
                customer_id: c.id.clone(),
                ..Default::default()
            });
            // A replayed older event never overwrites what a newer one said.
            let newer = contact.as_of.is_none_or(|t| event.occurred_at >= t);
            if newer {
                contact.as_of = Some(event.occurred_at);
                for (field, value) in [
                    (&mut contact.name, &c.name),
                    (&mut contact.email, &c.email),
                    (&mut contact.phone, &c.phone),
                    (&mut contact.whatsapp, &c.whatsapp),
                    (&mut contact.locale, &c.locale),
                    (&mut contact.time_zone, &c.time_zone),
                    (&mut contact.tier, &c.tier),
                    (&mut contact.birthday, &c.birthday),
                ] {
                    if value.is_some() {
                        *field = value.clone();
                    }
                }
            }
            contact.opted_out |= opted_out;
            contact.country = contact
                .phone
                .as_deref()
                .or(contact.whatsapp.as_deref())
                .and_then(crate::market::phone_country);
            Update::Write(contact)
        })?
        .unwrap_or_default();
    if new_customer {
        // Their answer history, empty, made now: their first answer is then
        // one compare-and-swap on a present key, instead of a creation claim
        // and a write on the answer path (`flows::answer::record_answer`).
        // If this is lost to a crash, that answer makes it as any other
        // absent key is made: slower, as exact.
        store.create_json(&keys::history(&c.id), &History::default())?;
    }
    if let Some((month, day)) = c.birthday.as_deref().and_then(birthday_day) {
        store.add_to_list(&keys::birthdays_on(month, day), &c.id)?;
    }
    if let Some(wo) = &event.work_order_id {
        let opened = event.kind == EventType::WorkOrderOpened;
        let completed = event.kind.completes_work_order();
        if opened || completed {
            store.update_json::<WorkOrder, _>(&keys::work_order(wo), |current| {
                let mut w = current.unwrap_or(WorkOrder {
                    work_order_id: wo.clone(),
                    customer_id: None,
                    order_id: None,
                    opened_at: None,
                    completed_at: None,
                });
                w.customer_id
                    .get_or_insert_with(|| event.customer.id.clone());
                if w.order_id.is_none() {
                    w.order_id = event.order_id.clone();
                }
                if opened && w.opened_at.is_none() {
                    w.opened_at = Some(event.occurred_at);
                }
                if completed {
                    w.completed_at = Some(event.occurred_at);
                }
                Update::Write(w)
            })?;
            if opened {
                // Looked at by the escalator's tick when its 48 h run out.
                let due = event.occurred_at + Duration::hours(WORK_ORDER_OVERDUE_HOURS);
                store.append_to_log(&keys::work_orders_due(&keys::hour_bucket(due)), wo)?;
            }
        }
    }
    Ok(contact)
}

/// Events that call for a human: a missed call (1 h), a complaint (48 h; a VIP
/// repeating the same complaint is flagged), a delivery later than promised.
fn callback_request<S: Storage + ?Sized>(
    store: &S,
    event: &Event,
    contact: Contact,
) -> Result<Option<EscalationRequest>, ApiError> {
    let mut prior_complaints = 0;
    let reasons = match event.kind {
        EventType::CallMissed => vec![TaskReason::MissedCall],
        EventType::ComplaintOpened => {
            let mut counts = (0, 0);
            store.update_json::<History, _>(&keys::history(&event.customer.id), |cur| {
                let mut h = cur.unwrap_or_default();
                counts = h.record_complaint(ComplaintEntry {
                    event_id: event.event_id.clone(),
                    at: event.occurred_at,
                    topic: event.topic.clone(),
                });
                Update::Write(h)
            })?;
            prior_complaints = counts.0;
            let vip = contact
                .tier
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case("vip"));
            let mut r = vec![TaskReason::Complaint];
            if vip && counts.1 >= 1 {
                r.push(TaskReason::VipRepeat);
            }
            r
        }
        EventType::OrderDelivered if event.promised_at.is_some_and(|p| event.occurred_at > p) => {
            vec![TaskReason::LateDelivery]
        }
        _ => return Ok(None),
    };
    let history: History = store
        .get_json(&keys::history(&event.customer.id))?
        .unwrap_or_default();
    Ok(Some(EscalationRequest {
        source_id: format!("event:{}", event.event_id),
        reasons,
        contact,
        answer: None,
        question: None,
        order_id: event.order_id.clone(),
        agent_id: event.agent_id.clone(),
        work_order_id: event.work_order_id.clone(),
        history: history.answers,
        prior_complaints,
        reopens: None,
        topic: event.topic.clone(),
        occurred_at: event.occurred_at,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::SurveyPolicy;
    use crate::storage::{Faulty, KvMode, MemoryStorage};

    fn now() -> DateTime<Utc> {
        "2026-12-01T10:00:00+01:00".parse().unwrap()
    }

    fn event(kind: &str) -> Event {
        serde_json::from_value(serde_json::json!({
            "event_id": format!("ev-{kind}"), "type": kind,
            "occurred_at": "2026-12-01T10:00:00+01:00", "order_id": "o1",
            "category": "high_value",
            "customer": {"id": "c1", "name": "Anna", "email": "anna@example.de",
                "phone": "+4915112345678", "time_zone": "Europe/Berlin"}
        }))
        .unwrap()
    }

    fn cx(policy: &SurveyPolicy) -> IntakeContext<'_> {
        IntakeContext {
            policy,
            webhooks: &crate::webhooks::NOBODY,
            merchant: "Shop",
            now: now(),
        }
    }

    /// Both steps, as the issuer runs them (the hand-off aside); whether this
    /// delivery was the first.
    fn take_in<S: Storage + ?Sized>(store: &S, e: &Event) -> Result<bool, ApiError> {
        let policy = SurveyPolicy::default();
        let plan = policy.plan(e);
        match begin(store, e, &cx(&policy))? {
            Begun::Duplicate => Ok(false),
            Begun::Proceed { .. } => finish(store, e, &plan, now()),
        }
    }

    /// The surveys due when the planned one is, as the tick reads them: a
    /// set (a retry may index a survey twice; the log is at least once).
    fn surveys_due(s: &MemoryStorage) -> Vec<String> {
        let e = event("order.delivered");
        let plan = SurveyPolicy::default().plan(&e);
        let mut ids = s
            .read_logs(&[keys::due_log(&keys::hour_bucket(plan[0].due_at))])
            .unwrap();
        ids.sort();
        ids.dedup();
        ids
    }

    #[test]
    fn a_delivery_plans_its_survey_once_however_often_it_comes() {
        for mode in KvMode::ALL {
            let s = MemoryStorage::in_memory_like(mode);
            let e = event("order.delivered");
            let barrier = std::sync::Barrier::new(4);
            let firsts = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..4)
                    .map(|_| {
                        let (s, e, barrier) = (&s, &e, &barrier);
                        scope.spawn(move || {
                            barrier.wait();
                            take_in(s, e).unwrap()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap())
                    .filter(|f| *f)
                    .count()
            });
            assert_eq!(firsts, 1, "{mode:?}");
            let plan = SurveyPolicy::default().plan(&e);
            assert_eq!(plan.len(), 1);
            assert_eq!(surveys_due(&s), vec![plan[0].survey_id.clone()], "{mode:?}");
            let contact: Contact = s.get_json(&keys::contact("c1")).unwrap().unwrap();
            assert_eq!(contact.country.as_deref(), Some("DE"));
        }
    }

    /// A store failure at any step, then the retry: planned and indexed once,
    /// the commit marker written.
    #[test]
    fn a_store_failure_at_any_step_is_finished_by_the_retry() {
        for mode in KvMode::ALL {
            let steps = Faulty::sweep(mode, |s, step| {
                let e = event("order.delivered");
                s.fail_op(step);
                let first = take_in(s, &e);
                s.disarm();
                let retry = take_in(s, &e).unwrap();
                assert!(
                    first.is_ok() || retry,
                    "{mode:?} step {step}: the retry is the first"
                );
                assert!(s.inner().get(&keys::event(&e.event_id)).unwrap().is_some());
                let plan = SurveyPolicy::default().plan(&e);
                assert_eq!(
                    surveys_due(s.inner()),
                    vec![plan[0].survey_id.clone()],
                    "{mode:?} step {step}"
                );
            });
            assert!(steps >= 6, "{mode:?}: only {steps} operations?");
        }
    }

    #[test]
    fn a_complaint_asks_for_a_callback_and_counts_repeats() {
        let s = MemoryStorage::new();
        let policy = SurveyPolicy::default();
        let mut e = event("complaint.opened");
        let Begun::Proceed {
            hand_off: Some(first),
            ..
        } = begin(&s, &e, &cx(&policy)).unwrap()
        else {
            panic!("a complaint asks for a human");
        };
        assert_eq!(first.reasons, vec![TaskReason::Complaint]);
        assert_eq!(first.prior_complaints, 0);
        e.event_id = "ev-complaint-2".into();
        let Begun::Proceed {
            hand_off: Some(second),
            ..
        } = begin(&s, &e, &cx(&policy)).unwrap()
        else {
            panic!("a complaint asks for a human");
        };
        assert_eq!(second.prior_complaints, 1);
        assert!(matches!(
            begin(&s, &event("order.delivered"), &cx(&policy)).unwrap(),
            Begun::Proceed {
                hand_off: None,
                acknowledge: None
            }
        ));
    }

    #[test]
    fn a_missed_call_is_acknowledged_once_and_closes_when_the_customer_gets_through() {
        for mode in KvMode::ALL {
            let s = MemoryStorage::in_memory_like(mode);
            let policy = SurveyPolicy::default();
            let e = event("call.missed");
            let Begun::Proceed {
                hand_off: Some(req),
                acknowledge: Some(ack),
            } = begin(&s, &e, &cx(&policy)).unwrap()
            else {
                panic!("{mode:?}: a missed call asks for a callback and an SMS");
            };
            assert_eq!((ack.to.as_str(), ack.locale), ("+4915112345678", "en"));
            assert!(ack.text.contains("within the hour"), "{}", ack.text);
            // The same call again (a retry before the commit marker): no second SMS.
            let Begun::Proceed { acknowledge, .. } = begin(&s, &e, &cx(&policy)).unwrap() else {
                panic!()
            };
            assert!(acknowledge.is_none(), "{mode:?}");
            // A failed hand-over gives the claim back.
            ack_not_sent(&s, &e).unwrap();
            let Begun::Proceed { acknowledge, .. } = begin(&s, &e, &cx(&policy)).unwrap() else {
                panic!()
            };
            assert!(acknowledge.is_some(), "{mode:?}");
            let task = crate::flows::escalation::receive(
                &s,
                &req,
                (
                    &crate::task::EscalationPolicy::default(),
                    &crate::webhooks::NOBODY,
                ),
                now(),
            )
            .unwrap()
            .unwrap();
            assert_eq!(task.state, crate::model::TaskState::Open);
            let mut answered = event("call.answered");
            answered.occurred_at = e.occurred_at + chrono::Duration::minutes(10);
            begin(&s, &answered, &cx(&policy)).unwrap();
            let after: crate::model::CallbackTask =
                s.get_json(&keys::task(&task.task_id)).unwrap().unwrap();
            assert_eq!(after.state, crate::model::TaskState::Superseded, "{mode:?}");
            assert!(
                crate::flows::escalation::callbacks_of(&s, "c1")
                    .unwrap()
                    .open
                    .is_none(),
                "{mode:?}"
            );
        }
    }

    #[test]
    fn no_acknowledgement_at_night_or_for_a_late_report() {
        let s = MemoryStorage::new();
        let policy = SurveyPolicy::default();
        let mut e = event("call.missed");
        let mut night = cx(&policy);
        night.now = "2026-12-01T22:10:00+01:00".parse().unwrap();
        e.occurred_at = night.now - chrono::Duration::minutes(5);
        let Begun::Proceed { acknowledge, .. } = begin(&s, &e, &night).unwrap() else {
            panic!()
        };
        assert!(acknowledge.is_none(), "quiet hours");
        e.event_id = "ev-late".into();
        e.occurred_at = now() - chrono::Duration::hours(3);
        let Begun::Proceed { acknowledge, .. } = begin(&s, &e, &cx(&policy)).unwrap() else {
            panic!()
        };
        assert!(acknowledge.is_none(), "reported three hours late");
    }
}
