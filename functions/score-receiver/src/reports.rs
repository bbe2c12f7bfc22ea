//! The reports: answers (summary), score integrity, and the outer loop's
//! findings — what departments caused and what they fixed (`flows::findings`;
//! its counts come from the escalator's closed repairs).

use chrono::NaiveDate;

use revisit_shared::flows::findings;
use revisit_shared::flows::report::{read_tallies, summary_report};
use revisit_shared::integrity;
use revisit_shared::spin::{self as shell, SpinStore};
use revisit_shared::{error::parse_json, ApiError};
use spin_sdk::http::{Request, Response};

/// `GET /reports/findings?from=&to=`: root causes by department and week,
/// and whether each recorded fix brought its cause down.
pub fn findings(req: &Request) -> Result<Response, ApiError> {
    shell::require_supervisor(req)?;
    let (from, to) = (date_param(req, "from")?, date_param(req, "to")?);
    let policy = shell::escalation_policy()?;
    let report = findings::report(
        &SpinStore::open()?,
        (&policy, &shell::survey_policy()?),
        from,
        to,
    )?;
    Ok(shell::json(200, &report))
}

/// `POST /findings/fixes`: a department records what it changed.
pub fn record_fix(req: &Request) -> Result<Response, ApiError> {
    shell::require_supervisor(req)?;
    let input = parse_json(shell::body(req)?)?;
    let policy = shell::escalation_policy()?;
    let (fix, created) = findings::record_fix(&SpinStore::open()?, &input, &policy, shell::now())?;
    let status = if created { 201 } else { 200 };
    Ok(shell::json(
        status,
        &serde_json::json!({ "fix": fix, "duplicate": !created }),
    ))
}

/// `GET /reports/integrity`: signals of coached or forged scores.
pub fn integrity(req: &Request) -> Result<Response, ApiError> {
    shell::require_admin(req)?;
    let store = SpinStore::open()?;
    let today = shell::now().date_naive();
    let days: Vec<NaiveDate> = (0..integrity::STAFF_WINDOW_DAYS)
        .rev()
        .map(|d| today - chrono::Duration::days(d))
        .collect();
    let tallies = read_tallies(&store, &days)?;
    Ok(shell::json(
        200,
        &revisit_shared::flows::integrity::report(&store, &tallies)?,
    ))
}

const MAX_REPORT_DAYS: i64 = 92;

/// `GET /reports/summary?from=&to=&group_by=day|agent|channel|kind`.
pub fn summary(req: &Request) -> Result<Response, ApiError> {
    shell::require_admin(req)?;
    let (from, to) = (date_param(req, "from")?, date_param(req, "to")?);
    let group_by = shell::query_param(req, "group_by").unwrap_or_else(|| "day".into());
    let store = SpinStore::open()?;
    let report = summary_report(&store, from, to, &group_by, MAX_REPORT_DAYS)?;
    Ok(shell::json(200, &report))
}

/// A required date query parameter (`YYYY-MM-DD`).
fn date_param(req: &Request, name: &str) -> Result<NaiveDate, ApiError> {
    let v = shell::query_param(req, name).ok_or_else(|| {
        ApiError::bad_request(format!("`{name}` is required: a date like 2026-12-01"))
    })?;
    v.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "`{name}` must be a date like 2026-12-01 (got {v:?})"
        ))
    })
}
