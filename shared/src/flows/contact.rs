//! A customer's timeline and the contacts made, for the contact limits.

use chrono::{DateTime, Duration, Utc};

use crate::contact::LOG_LEN;
use crate::event::Event;
use crate::keys;
use crate::model::EventLogEntry;
use crate::storage::{Storage, StorageExt, StoreResult, Update};

/// Append an event to the customer's timeline (idempotent, bounded, in time order).
pub fn log_event<S: Storage + ?Sized>(store: &S, event: &Event) -> StoreResult<()> {
    let entry = EventLogEntry::from(event);
    store
        .update_json::<Vec<EventLogEntry>, _>(&keys::event_log(&event.customer.id), |cur| {
            let mut log = cur.unwrap_or_default();
            if log.iter().any(|e| e.event_id == entry.event_id) {
                return Update::Keep;
            }
            log.push(entry.clone());
            log.sort_by_key(|e| e.occurred_at);
            if log.len() > LOG_LEN {
                log.remove(0);
            }
            Update::Write(log)
        })
        .map(drop)
}

/// Record a contact (a survey sent, a call made) for the limits; the same
/// contact again (same customer, same second) is recorded once, so a retry
/// that finishes an interrupted request never counts it twice.
pub fn record_contact<S: Storage + ?Sized>(
    store: &S,
    customer_id: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    store
        .update_json::<Vec<DateTime<Utc>>, _>(&keys::contacts(customer_id), |cur| {
            let mut log = cur.unwrap_or_default();
            if log.contains(&at) {
                return Update::Keep;
            }
            log.push(at);
            log.retain(|c| *c > at - Duration::days(31));
            if log.len() > LOG_LEN {
                log.remove(0);
            }
            Update::Write(log)
        })
        .map(drop)
}
