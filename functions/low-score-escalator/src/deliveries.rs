//! Outbound webhooks: sending what the outbox holds at each tick, and the
//! delivery log (`GET /webhooks/deliveries`).

use revisit_shared::flows::escalator_tick::TickReport;
use revisit_shared::flows::webhooks::{self, Begin, Round};
use revisit_shared::spin::{self as shell, SpinStore};
use revisit_shared::webhooks::{DeliveryStatus, Links, Webhooks};
use revisit_shared::ApiError;
use serde::Serialize;
use spin_sdk::http::{Request, Response};

/// How long a receiver has to answer one delivery (it is tried again later).
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// What `POST /escalator/tick` answers.
#[derive(Serialize)]
pub struct Ticked {
    #[serde(flatten)]
    pub report: TickReport,
    pub webhooks: webhooks::RoundReport,
    /// What is wrong with the `webhooks` variable, if anything (nobody is
    /// told until it is fixed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhooks_error: Option<String>,
}

/// Send the deliveries due at `now`, each once, each within [`TIMEOUT`].
pub fn send_due(
    store: &SpinStore,
    hooks: &Webhooks,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<webhooks::RoundReport, ApiError> {
    let base = shell::optional_variable("public_base_url").unwrap_or_default();
    let links = Links {
        public_base_url: &base,
    };
    let mut round = Round::default();
    for job in webhooks::due(store, now)? {
        if round.skips(&job) {
            continue;
        }
        let Begin::Send(request) = webhooks::begin(store, &job, hooks, &links, now)? else {
            continue;
        };
        let result = shell::send_webhook(&request, TIMEOUT);
        let after = webhooks::finish(store, &job, &result, now)?;
        round.note(&after);
    }
    round.report.open = webhooks::advance(store, now)?;
    Ok(round.report)
}

/// `GET /webhooks/deliveries?status=failed&limit=50`: newest first.
pub fn log(req: &Request) -> Result<Response, ApiError> {
    shell::require_admin(req)?;
    let status = match shell::query_param(req, "status") {
        None => None,
        Some(s) => Some(DeliveryStatus::parse(&s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "status must be pending, delivered or failed (got {s:?})"
            ))
        })?),
    };
    let limit = match shell::query_param(req, "limit") {
        None => 50,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=500).contains(l))
            .ok_or_else(|| ApiError::bad_request(format!("limit must be 1 to 500 (got {l:?})")))?,
    };
    let deliveries = webhooks::deliveries(&SpinStore::open()?, status, limit)?;
    Ok(shell::json(
        200,
        &serde_json::json!({
            "deliveries": deliveries,
            "webhooks_error": shell::webhooks_checked().err(),
        }),
    ))
}
