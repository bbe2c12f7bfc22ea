//! The console's CSV exports: the callbacks of the last 92 days, and the
//! answers of a period streamed day by day (RFC 4180, UTF-8 with a BOM for
//! spreadsheets; cells a spreadsheet would run as formulas neutralised).

use revisit_shared::flows::console;
use revisit_shared::spin::{self as shell, SpinStore};
use revisit_shared::ApiError;
use spin_sdk::http::{Fields, OutgoingResponse, Request, Response, ResponseOutparam};

use crate::{period, supervisor};

/// `GET /console/export/callbacks.csv`: every callback of the last 92 days
/// (RFC 4180, UTF-8 with a BOM for spreadsheets; formulas neutralised).
pub fn callbacks(req: &Request) -> Result<Response, ApiError> {
    if supervisor(req)?.is_none() {
        return Err(ApiError::unauthorized("sign in as the supervisor first"));
    }
    let store = SpinStore::open()?;
    let today = shell::now().date_naive();
    let tasks = revisit_shared::flows::escalation::list_tasks(&store, None, None, 92, today)?;
    let mut out = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    let header = [
        "task_id",
        "state",
        "reason",
        "reasons",
        "priority",
        "owner",
        "customer_id",
        "customer_name",
        "created_at",
        "due_by",
        "breached",
        "closed_at",
        "resolution",
        "root_cause",
        "department",
    ];
    out.write_record(header).map_err(internal)?;
    for t in tasks {
        let reasons: Vec<&str> = t.reasons.iter().map(|r| r.as_str()).collect();
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        let record = [
            t.task_id.clone(),
            t.state.as_str().to_string(),
            t.reason.as_str().to_string(),
            reasons.join(" "),
            t.priority.to_string(),
            t.owner.clone(),
            t.customer_id.clone(),
            opt(&t.context.customer.name),
            t.created_at.to_rfc3339(),
            t.due_by.to_rfc3339(),
            t.breached.to_string(),
            t.closed_at.map(|c| c.to_rfc3339()).unwrap_or_default(),
            opt(&t.resolution),
            opt(&t.root_cause),
            opt(&t.department),
        ];
        out.write_record(record.iter().map(|v| neutralise(v)))
            .map_err(internal)?;
    }
    let bytes = out.into_inner().map_err(|e| internal(e.into_error()))?;
    Ok(csv_response("callbacks.csv", bytes))
}

/// The answers export's columns.
const ANSWER_COLUMNS: [&str; 11] = [
    "answered_at",
    "survey_id",
    "kind",
    "channel",
    "scale",
    "score",
    "comment",
    "reasons",
    "customer_id",
    "agent_id",
    "order_id",
];

/// `GET /console/export/answers.csv?from=&to=`: the answers to the surveys
/// due in the period (from the due index; no key listing), streamed day by
/// day: a long period never sits whole in memory.
pub async fn stream_answers(req: &Request, out: ResponseOutparam) {
    use futures::SinkExt;
    let start = (|| {
        if supervisor(req)?.is_none() {
            return Err(ApiError::unauthorized("sign in as the supervisor first"));
        }
        let (from, to) = period(req)?;
        let days = revisit_shared::report::days(from, to, console::MAX_DAYS)
            .map_err(ApiError::bad_request)?;
        Ok((days, SpinStore::open()?))
    })();
    let (days, store) = match start {
        Ok(s) => s,
        Err(e) => return shell::write_response(out, shell::error(&e)),
    };
    let Some(headers) = csv_headers("answers.csv") else {
        let e = ApiError::internal("the CSV's headers could not be built");
        return shell::write_response(out, shell::error(&e));
    };
    let response = OutgoingResponse::new(headers);
    let mut body = response.take_body();
    out.set(response);
    let mut chunk = csv_chunk(b"\xEF\xBB\xBF".to_vec(), |w| w.write_record(ANSWER_COLUMNS));
    for day in days {
        // Once the status is sent, a failure can only end the CSV (the log says why).
        let Some(rows) = answer_rows(&store, day) else {
            return;
        };
        for row in rows {
            chunk = csv_chunk(chunk, |w| w.write_record(row.iter().map(|v| neutralise(v))));
        }
        if body.send(std::mem::take(&mut chunk)).await.is_err() {
            return; // the client went away
        }
    }
    if !chunk.is_empty() {
        let _ = body.send(chunk).await;
    }
}

/// A CSV download's headers.
fn csv_headers(name: &str) -> Option<Fields> {
    Fields::from_list(&[
        (
            "content-type".to_string(),
            b"text/csv; charset=utf-8".to_vec(),
        ),
        (
            "content-disposition".to_string(),
            format!("attachment; filename=\"{name}\"").into_bytes(),
        ),
        ("cache-control".to_string(), b"no-store".to_vec()),
    ])
    .ok()
}

/// The answers to the surveys due on `day`, as the export's rows (`None`
/// when the store failed: logged).
fn answer_rows(store: &SpinStore, day: chrono::NaiveDate) -> Option<Vec<[String; 11]>> {
    let surveys = match console::surveys_of_day(store, day, usize::MAX) {
        Ok(d) => d.surveys,
        Err(e) => {
            eprintln!(
                "console: the answers export stopped at {day}: {}",
                e.message
            );
            return None;
        }
    };
    let rows = surveys.into_iter().filter_map(|(s, answer)| {
        let a = answer?;
        Some([
            a.answered_at.to_rfc3339(),
            s.survey_id.clone(),
            a.kind.as_str().to_string(),
            a.channel.as_str().to_string(),
            a.scale.as_str().to_string(),
            a.score.to_string(),
            a.comment.clone().unwrap_or_default(),
            a.reasons.join(" "),
            s.customer_id.clone(),
            s.agent_id.clone().unwrap_or_default(),
            s.order_id.clone().unwrap_or_default(),
        ])
    });
    Some(rows.collect())
}

/// Append CSV lines to `buffer`.
fn csv_chunk(
    buffer: Vec<u8>,
    write: impl FnOnce(&mut csv::Writer<Vec<u8>>) -> csv::Result<()>,
) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(buffer);
    if let Err(e) = write(&mut w) {
        eprintln!("console: a CSV line could not be written: {e}");
    }
    w.into_inner().unwrap_or_default()
}

fn csv_response(name: &str, bytes: Vec<u8>) -> Response {
    Response::builder()
        .status(200)
        .header("content-type", "text/csv; charset=utf-8")
        .header(
            "content-disposition",
            format!("attachment; filename=\"{name}\""),
        )
        .header("cache-control", "no-store")
        .body(bytes)
        .build()
}

/// A cell a spreadsheet would run as a formula starts with a quote instead.
fn neutralise(v: &str) -> String {
    if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{v}")
    } else {
        v.to_string()
    }
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("the CSV could not be written: {e}"))
}
