//! Flows: one storage-generic function per endpoint or tick step. Each reads
//! what it needs through [`crate::storage::Storage`], asks the rules for a
//! decision and applies it, in an order that makes every store failure safe
//! to retry. Components parse HTTP, call one flow and render what it returns;
//! the flows are tested natively on [`crate::storage::MemoryStorage`] in every
//! store mode, with a failure injected at each step
//! ([`crate::storage::Faulty`]) and with runs interleaved.

pub mod answer;
pub mod answer_log;
pub mod attempts;
pub mod console;
pub mod contact;
pub mod erasure;
pub mod escalation;
pub mod escalator_tick;
pub mod findings;
pub mod intake;
pub mod integrity;
pub mod issuer_tick;
pub mod link;
pub mod log;
pub mod queue;
pub mod report;
pub mod survey;
pub mod task_log;
pub mod webhooks;

/// Fixtures shared by the flows' tests.
#[cfg(test)]
pub(crate) mod testing {
    use chrono::{DateTime, Utc};

    use crate::model::{Contact, TaskReason};
    use crate::task::EscalationRequest;

    /// A time, from RFC 3339.
    pub fn at(t: &str) -> DateTime<Utc> {
        t.parse().unwrap()
    }

    /// An escalation from `source` for `reason`: customer `c1` (Anna, in
    /// Berlin), order `o1`, agent `agent-1`, on Friday 2026-12-04 at 10:00.
    pub fn request(source: &str, reason: TaskReason) -> EscalationRequest {
        EscalationRequest {
            source_id: source.into(),
            reasons: vec![reason],
            contact: Contact {
                customer_id: "c1".into(),
                name: Some("Anna".into()),
                time_zone: Some("Europe/Berlin".into()),
                ..Default::default()
            },
            answer: None,
            question: None,
            order_id: Some("o1".into()),
            agent_id: Some("agent-1".into()),
            work_order_id: None,
            history: vec![],
            prior_complaints: 0,
            reopens: None,
            topic: None,
            occurred_at: at("2026-12-04T10:00:00+01:00"),
        }
    }
}

/// A store failure, as every endpoint answers it: `503`, nothing recorded
/// (the flows keep that true), retry.
impl From<crate::storage::StoreError> for crate::ApiError {
    fn from(e: crate::storage::StoreError) -> crate::ApiError {
        crate::ApiError::unavailable(format!(
            "the key-value store failed ({}); nothing was recorded, retry the request",
            e.0
        ))
    }
}

/// A task that cannot take a step: `409` for its state, `422` for the input.
impl From<crate::task::TaskRefusal> for crate::ApiError {
    fn from(r: crate::task::TaskRefusal) -> crate::ApiError {
        match r {
            crate::task::TaskRefusal::WrongState { .. } => crate::ApiError::conflict(r.message()),
            crate::task::TaskRefusal::BadInput(_)
            | crate::task::TaskRefusal::UnknownCause { .. } => {
                crate::ApiError::unprocessable(r.message())
            }
        }
    }
}

/// Not an answer on the survey's scale: `422`.
impl From<crate::answer::InvalidAnswer> for crate::ApiError {
    fn from(e: crate::answer::InvalidAnswer) -> crate::ApiError {
        crate::ApiError::unprocessable(e.0)
    }
}
