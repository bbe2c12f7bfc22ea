//! The key layout of the shared store, in one place. Every key is built here;
//! none embeds personal data other than ids the seller chose, and every one
//! stays far below the hosted stores' 250-byte limit (ids are capped at 200
//! characters, and hashed where they could be longer).
//!
//! No hot path lists keys: lists that must be enumerated are kept as index
//! records (owner queues) or time buckets (the due index).

use chrono::{DateTime, Utc};

use crate::model::derive_id;

/// A customer as keys name them: a pseudonym (SHA-256 of the seller's id),
/// so a customer id that is an e-mail address or a phone number (a shop's)
/// never appears in a key, and every key stays short.
pub fn pseudonym(customer_id: &str) -> String {
    derive_id("c", &[customer_id])
}

/// The idempotency record of one event (`event_id` hashed: sellers choose it).
pub fn event(event_id: &str) -> String {
    format!("ev/{}", derive_id("e", &[event_id]))
}

pub fn survey(survey_id: &str) -> String {
    format!("sv/{survey_id}")
}

/// Present once a survey is in the due index (see `flows::survey::create_survey`).
pub fn survey_indexed(survey_id: &str) -> String {
    format!("sx/{survey_id}")
}

/// The customer's contact record: the only place holding their personal data.
pub fn contact(customer_id: &str) -> String {
    format!("cu/{}", pseudonym(customer_id))
}

/// The customer's events timeline (types, times, order ids: no personal data).
pub fn event_log(customer_id: &str) -> String {
    format!("el/{}", pseudonym(customer_id))
}

/// When the customer was contacted (surveys sent, calls made), for the contact limits.
pub fn contacts(customer_id: &str) -> String {
    format!("cl/{}", pseudonym(customer_id))
}

/// The customer's answer history (scores only).
pub fn history(customer_id: &str) -> String {
    history_of(&pseudonym(customer_id))
}

/// The answer history of the customer whose pseudonym is `customer`.
pub fn history_of(customer: &str) -> String {
    format!("hi/{customer}")
}

pub fn work_order(work_order_id: &str) -> String {
    format!("wo/{work_order_id}")
}

pub fn task(task_id: &str) -> String {
    format!("tk/{task_id}")
}

/// The customer's callback tasks (`model::CustomerCallbacks`): their open
/// task, every task they had, and where each escalation source went.
pub fn customer_callbacks(customer_id: &str) -> String {
    customer_callbacks_of(&pseudonym(customer_id))
}

/// [`customer_callbacks`] of the customer whose pseudonym is `customer`.
pub fn customer_callbacks_of(customer: &str) -> String {
    format!("cb/{customer}")
}

/// Every survey planned for a customer (for erasure).
pub fn customer_surveys(customer_id: &str) -> String {
    format!("ix/customer-surveys/{}", pseudonym(customer_id))
}

/// Customers with a birthday on one day of the year: the escalator's tick
/// reads only the days since it last ran, never a whole month's list.
pub fn birthdays_on(month: u32, day: u32) -> String {
    format!("ix/birthday/{month:02}-{day:02}")
}

/// The last day the escalator's tick looked at birthdays.
pub const BIRTHDAY_CURSOR: &str = "tc/escalator-birthdays";

/// The open task ids an owner holds, and those escalated to them (a queue
/// index, updated with compare-and-swap). Closed tasks leave it, so it stays
/// as small as the owner's workload.
pub fn owner_tasks(owner: &str) -> String {
    format!("ix/owner/{owner}")
}

/// The log of task ids created on a day (`YYYYMMDD`, see
/// `StorageExt::append_to_log`), written by the task log's fold: how closed
/// tasks are found without one list that grows forever (a hosted store
/// refuses values over 1 MB).
pub fn tasks_created(day: &str) -> String {
    format!("lg/tasks/{day}")
}

/// Open task ids are kept in this many compare-and-swap lists, by task, so
/// that concurrent escalations rarely touch the same list.
pub const OPEN_TASK_SHARDS: u32 = 16;

/// The list of open task ids that holds `task_id`.
pub fn open_tasks(task_id: &str) -> String {
    let shard = task_id
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b.into()))
        % OPEN_TASK_SHARDS;
    format!("ix/open-tasks/{shard:02}")
}

/// Every list of open task ids (the escalator's tick, the all-owners queue).
pub fn all_open_tasks() -> Vec<String> {
    (0..OPEN_TASK_SHARDS)
        .map(|s| format!("ix/open-tasks/{s:02}"))
        .collect()
}

/// Escalations written with an answer and delivered to the escalator; removed once delivered.
pub fn outbox(source_id: &str) -> String {
    format!("ob/{source_id}")
}

/// Pending outbox ids (compare-and-swap list).
pub const OUTBOX_INDEX: &str = "ix/outbox";

/// The hour bucket a time falls in, e.g. `2026120410`.
pub fn hour_bucket(t: DateTime<Utc>) -> String {
    crate::date_text::compact_hour(&t)
}

/// The log (see `StorageExt::append_to_log`) of surveys due in an hour bucket.
pub fn due_log(bucket: &str) -> String {
    format!("du/{bucket}")
}

/// The last hour bucket the issuer's tick has fully handled.
pub const TICK_CURSOR: &str = "tc/issuer";

/// The rate counters first counted in an hour bucket: the escalator's tick
/// deletes them (and the log) once the hour is two hours past.
pub fn rate_log(bucket: &str) -> String {
    format!("lg/rate/{bucket}")
}

/// Until when the escalator's tick has swept old rate counters.
pub const RATE_SWEEP_CURSOR: &str = "tc/rate-sweep";

/// A rate-limit counter for `what` in one minute (a key per minute: old ones are never read again).
pub fn rate(what: &str, minute: &str) -> String {
    format!("rl/{what}/{minute}")
}

/// The work orders booked in an hour bucket whose 48 h run out then
/// (`work_order.opened` + 48 h): the escalator's tick looks at each once.
pub fn work_orders_due(bucket: &str) -> String {
    format!("lg/wo-due/{bucket}")
}

/// Until when the escalator's tick has looked at overdue work orders.
pub const WORK_ORDER_CURSOR: &str = "tc/escalator-work-orders";

/// Claimed once the acknowledgement SMS of a missed call is handed over.
pub fn missed_call_ack(event_id: &str) -> String {
    format!("ak/{}", derive_id("e", &[event_id]))
}

/// The outer loop: repairs closed with `cause` whose problem surfaced in
/// ISO week `week` (`2026-W49`), of one `kind` (`low_score`, `complaint`,
/// `other`); `cause` is `*` for all causes together.
pub fn finding_counter(cause: &str, week: &str, kind: &str) -> String {
    format!("ct/finding/{cause}/{week}/{kind}")
}

/// Answers of a cause's closed repairs (by the week the problem surfaced)
/// that gave `reason` (a policy's reason id, or `other`).
pub fn finding_reason_counter(cause: &str, week: &str, reason: &str) -> String {
    format!("ct/finding/{cause}/{week}/reason/{reason}")
}

/// The fixes departments recorded (`POST /findings/fixes`), one bounded list.
pub const FINDING_FIXES: &str = "fx/all";

/// What the generic sender would have received on a first run without one
/// (the console's development outbox; the newest 200).
pub const DEV_OUTBOX: &str = "dv/outbox";

/// Loop counters (escalator).
pub fn loop_counter(name: &str) -> String {
    format!("ct/loop/{name}")
}

/// The answer log's last number (a counter: `increment` hands out the next).
pub const ANSWER_LOG_HEAD: &str = "al/head";

/// Entry `seq` of the answer log (`model::LoggedAnswer`); deleted once folded.
pub fn answer_log(seq: u64) -> String {
    format!("al/e/{seq}")
}

/// How far the answer log is folded into the reports (`answer_log::FoldCursor`).
pub const ANSWER_LOG_FOLD: &str = "al/fold";

/// The answers of a day, by tally (`report::Tally`), as folded from the log
/// (`answer_log::FoldedCounts`).
pub fn tallies(day: &str) -> String {
    format!("tl/{day}")
}

/// The loop's counters that answers move (re-surveys answered, recovered),
/// as folded from the log (`answer_log::FoldedCounts`).
pub const ANSWER_LOOP_COUNTS: &str = "al/loop";

/// The task log's last number (a counter: `increment` hands out the next).
pub const TASK_LOG_HEAD: &str = "tq/head";

/// Entry `seq` of the task log (`model::LoggedTask`); deleted once folded.
pub fn task_log(seq: u64) -> String {
    format!("tq/e/{seq}")
}

/// How far the task log is folded into the indexes (`answer_log::FoldCursor`).
pub const TASK_LOG_FOLD: &str = "tq/fold";

/// The loop's counters that created tasks move (`created` overall, by
/// owner, by reason), as folded from the task log (`answer_log::FoldedCounts`).
pub const TASK_LOOP_COUNTS: &str = "tq/loop";

/// The webhook outbox's last number (a counter: `increment` hands out the next).
pub const WEBHOOK_HEAD: &str = "wh/head";

/// Delivery `n` of the webhook outbox (`webhooks::Delivery`); kept as the
/// delivery log for `flows::webhooks::RETENTION` after it is finished.
pub fn webhook_delivery(n: u64) -> String {
    format!("wh/d/{n}")
}

/// Which outbox entry owns delivery id `id` (the others with it are duplicates).
pub fn webhook_claim(id: &str) -> String {
    format!("wh/id/{id}")
}

/// How far the webhook outbox is finished (`flows::webhooks::OutboxCursor`).
pub const WEBHOOK_CURSOR: &str = "wh/cursor";

/// Issue counters (survey-link-issuer): `ct/sum/<day>/<dimension>/<value>/<metric>`.
pub fn summary_counter(day: &str, dimension: &str, value: &str, metric: &str) -> String {
    format!("ct/sum/{day}/{dimension}/{value}/{metric}")
}

/// The counter that decides who creates `key` for compare-and-swap
/// (`storage::Portable`): a sibling of every key written that way.
pub fn creation_claim(key: &str) -> String {
    format!("{key}#c")
}

/// Devices flagged for answering for many customers (integrity).
pub const FLAGGED_DEVICES: &str = "ix/integrity/devices";

/// Answers given right after the work was done (integrity).
pub const ON_SITE: &str = "ix/integrity/on-site";

/// The customers one device answered for (integrity).
pub fn device(device: &str) -> String {
    format!("ig/dev/{device}")
}

/// The values seen for a dimension on a day (e.g. which agents had answers),
/// so a report can name its groups without listing keys.
pub fn dimension_index(day: &str, dimension: &str) -> String {
    format!("ix/sum/{day}/{dimension}")
}

/// Owners that have loop counters, for the loop report's `by_owner`.
pub const LOOP_OWNERS: &str = "ix/loop-owners";

/// Minutes from a task's creation to its first contact, as kept before
/// they carried their task (read, never written).
pub const FIRST_CONTACT_MINUTES: &str = "ix/first-contact-minutes";

/// Each reached task's minutes to first contact (for the loop report's median).
pub const FIRST_CONTACTS: &str = "ix/first-contacts";
