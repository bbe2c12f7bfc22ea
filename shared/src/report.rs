//! Reports computed from counters (kept exact with atomic increments).

use chrono::{Duration, NaiveDate};
use serde::Serialize;

use crate::keys;
use crate::policy::Scale;
use crate::storage::{Storage, StorageExt, StoreResult};

/// The loop counters the escalator keeps.
pub const LOOP_COUNTERS: [&str; 9] = [
    "created",
    "closed",
    "closed_within_deadline",
    "resolved",
    "resurveys_answered",
    "recovered",
    "complaints",
    "repeat_complaints",
    "breached",
];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoopReport {
    pub created: i64,
    pub closed: i64,
    pub closed_within_deadline: i64,
    pub closed_within_deadline_pct: f64,
    pub resolved: i64,
    pub recovery_rate_pct: f64,
    pub resolution_rate_pct: f64,
    pub repeat_complaint_rate_pct: f64,
    pub resurveys_answered: i64,
    pub recovered: i64,
    pub breached: i64,
    pub median_time_to_first_contact_minutes: Option<f64>,
}

fn pct(part: i64, whole: i64) -> f64 {
    if whole <= 0 {
        0.0
    } else {
        (part as f64 * 1000.0 / whole as f64).round() / 10.0
    }
}

/// `values` in the order of [`LOOP_COUNTERS`]; `first_contact_minutes` one entry per task reached.
///
/// Recovery is measured where the customer says it: the share of re-surveys after
/// a resolved callback answered satisfied.
pub fn loop_report(values: &[i64], first_contact_minutes: &[u32]) -> LoopReport {
    let [created, closed, within, resolved, resurveys, recovered, complaints, repeats, breached] =
        values[..9]
    else {
        panic!(
            "loop_report needs the {} loop counters",
            LOOP_COUNTERS.len()
        )
    };
    LoopReport {
        created,
        closed,
        closed_within_deadline: within,
        closed_within_deadline_pct: pct(within, closed),
        resolved,
        recovery_rate_pct: pct(recovered, resurveys),
        resolution_rate_pct: pct(resolved, closed),
        repeat_complaint_rate_pct: pct(repeats, complaints),
        resurveys_answered: resurveys,
        recovered,
        breached,
        median_time_to_first_contact_minutes: median(first_contact_minutes),
    }
}

fn median(values: &[u32]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2] as f64
    } else {
        (v[n / 2 - 1] as f64 + v[n / 2] as f64) / 2.0
    })
}

/// Metrics counted per answer for each summary dimension.
pub const SUMMARY_METRICS: [&str; 7] = [
    "issued", "answers", "csat_n", "csat_sat", "nps_n", "nps_pro", "nps_det",
];

/// The metrics one answer adds to.
pub fn answer_metrics(scale: Scale, score: u8) -> Vec<&'static str> {
    let mut m = vec!["answers"];
    match scale {
        Scale::Csat => {
            m.push("csat_n");
            if score >= 4 {
                m.push("csat_sat");
            }
        }
        Scale::Nps => {
            m.push("nps_n");
            if score >= 9 {
                m.push("nps_pro");
            } else if score <= 6 {
                m.push("nps_det");
            }
        }
    }
    m
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryRow {
    pub group: String,
    pub issued: i64,
    pub answers: i64,
    pub response_rate_pct: f64,
    pub csat_answers: i64,
    pub csat_pct: Option<f64>,
    pub nps_answers: i64,
    pub nps: Option<f64>,
}

/// A row from the metric values (in [`SUMMARY_METRICS`] order).
pub fn summary_row(group: String, v: &[i64]) -> SummaryRow {
    let [issued, answers, csat_n, csat_sat, nps_n, nps_pro, nps_det] = v[..7] else {
        panic!("summary_row needs {} metrics", SUMMARY_METRICS.len())
    };
    SummaryRow {
        group,
        issued,
        answers,
        response_rate_pct: pct(answers, issued),
        csat_answers: csat_n,
        csat_pct: (csat_n > 0).then(|| pct(csat_sat, csat_n)),
        nps_answers: nps_n,
        nps: (nps_n > 0).then(|| pct(nps_pro, nps_n) - pct(nps_det, nps_n)),
    }
}

/// The days of a report range, at most `max_days`.
pub fn days(from: NaiveDate, to: NaiveDate, max_days: i64) -> Result<Vec<NaiveDate>, String> {
    if to < from {
        return Err("`to` is before `from`".into());
    }
    if (to - from).num_days() >= max_days {
        return Err(format!(
            "a report covers at most {max_days} days; narrow from/to"
        ));
    }
    Ok((0..=(to - from).num_days())
        .map(|d| from + Duration::days(d))
        .collect())
}

/// The counter keys for `(day, dimension, value)` in metric order.
pub fn summary_keys(day: NaiveDate, dimension: &str, value: &str) -> Vec<String> {
    let d = day.format("%Y%m%d").to_string();
    SUMMARY_METRICS
        .iter()
        .map(|m| keys::summary_counter(&d, dimension, value, m))
        .collect()
}

/// The values seen for a dimension on a day (e.g. which agents had answers),
/// so a report can name its groups without listing keys.
pub fn dimension_index_key(day: &str, dimension: &str) -> String {
    format!("ix/sum/{day}/{dimension}")
}

/// Add 1 to `metric` for each `(dimension, value)` on `day`.
pub fn bump_summary<S: Storage + ?Sized>(
    store: &S,
    day: &str,
    dims: &[(&str, String)],
    metric: &str,
) -> StoreResult<()> {
    for (dimension, value) in dims {
        let n = store.increment(&keys::summary_counter(day, dimension, value, metric), 1)?;
        if n == 1 {
            store.add_to_list(&dimension_index_key(day, dimension), value)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_counters_match_the_report() {
        // The report reads exactly these counters, in this order.
        let values: Vec<i64> = (1..=LOOP_COUNTERS.len() as i64).collect();
        let r = loop_report(&values, &[]);
        assert_eq!((r.created, r.breached), (1, LOOP_COUNTERS.len() as i64));
    }

    #[test]
    fn loop_percentages() {
        let r = loop_report(&[4, 2, 1, 2, 2, 1, 4, 1, 0], &[30, 10, 20]);
        assert_eq!(r.closed_within_deadline_pct, 50.0);
        assert_eq!(r.recovery_rate_pct, 50.0);
        assert_eq!(r.resolution_rate_pct, 100.0);
        assert_eq!(r.repeat_complaint_rate_pct, 25.0);
        assert_eq!(r.median_time_to_first_contact_minutes, Some(20.0));
        assert_eq!(loop_report(&[0; 9], &[]).closed_within_deadline_pct, 0.0);
        assert_eq!(
            loop_report(&[0; 9], &[1, 2]).median_time_to_first_contact_minutes,
            Some(1.5)
        );
    }

    #[test]
    fn nps_and_csat() {
        let row = summary_row("all".into(), &[10, 4, 2, 1, 2, 1, 1]);
        assert_eq!(row.response_rate_pct, 40.0);
        assert_eq!(row.csat_pct, Some(50.0));
        assert_eq!(row.nps, Some(0.0));
        assert_eq!(
            answer_metrics(Scale::Nps, 6),
            vec!["answers", "nps_n", "nps_det"]
        );
        assert_eq!(answer_metrics(Scale::Nps, 8), vec!["answers", "nps_n"]);
    }

    #[test]
    fn day_ranges_are_bounded() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(days(d("2026-12-01"), d("2026-12-03"), 92).unwrap().len(), 3);
        assert!(days(d("2026-12-03"), d("2026-12-01"), 92).is_err());
        assert!(days(d("2026-01-01"), d("2026-12-31"), 92).is_err());
    }
}
