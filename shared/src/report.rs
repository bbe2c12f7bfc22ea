//! Reports computed from counters (kept exact with atomic increments).

use chrono::{Duration, NaiveDate};
use serde::Serialize;

use crate::keys;
use crate::model::Answer;
use crate::model::Survey;
use crate::model::{Channel, Scale, SurveyKind};
use crate::storage::{Storage, StorageExt, StoreResult, Tentative};

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

/// The summary's metrics, in the order [`summary_row`] reads them.
pub const SUMMARY_METRICS: [&str; 7] = [
    "issued", "answers", "csat_n", "csat_sat", "nps_n", "nps_pro", "nps_det",
];

/// One answer as the summary counts it.
///
/// Every answer is one increment on the counter of its tally for the day, and
/// every report (by day, channel, kind or agent; CSAT, NPS; the staff integrity
/// signal) sums tallies. One increment keeps the answer path short, and an
/// answer that turns out not to be recorded (a lost race, a failed write) is
/// taken back with one decrement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    pub channel: Channel,
    pub kind: SurveyKind,
    pub scale: Scale,
    pub score: u8,
    /// A top score without a comment (see `integrity::flag_staff`).
    pub silent_top: bool,
    /// Who served; `none` when nobody did.
    pub agent: String,
}

impl Tally {
    pub fn of(answer: &Answer, agent: Option<&str>) -> Tally {
        Tally {
            channel: answer.channel,
            kind: answer.kind,
            scale: answer.scale,
            score: answer.score,
            silent_top: answer.scale.is_top(answer.score) && answer.comment.is_none(),
            agent: agent.unwrap_or("none").to_string(),
        }
    }

    /// `sms/service/nps/9/s/<agent>` (`s` silent top, `-` otherwise); the agent
    /// comes last, as the only part that may contain `/`.
    pub fn encode(&self) -> String {
        format!(
            "{}/{}/{}/{}/{}/{}",
            self.channel.as_str(),
            self.kind.as_str(),
            self.scale.as_str(),
            self.score,
            if self.silent_top { "s" } else { "-" },
            self.agent
        )
    }

    pub fn decode(s: &str) -> Option<Tally> {
        let word = |w: &str| serde_json::Value::String(w.to_string());
        let mut p = s.splitn(6, '/');
        Some(Tally {
            channel: serde_json::from_value(word(p.next()?)).ok()?,
            kind: serde_json::from_value(word(p.next()?)).ok()?,
            scale: serde_json::from_value(word(p.next()?)).ok()?,
            score: p.next()?.parse().ok()?,
            silent_top: p.next()? == "s",
            agent: p.next()?.to_string(),
        })
    }

    /// The group this tally falls in when a report groups `by` a dimension.
    pub fn group(&self, by: &str) -> &str {
        match by {
            "channel" => self.channel.as_str(),
            "kind" => self.kind.as_str(),
            "agent" => &self.agent,
            _ => "all",
        }
    }

    /// `count` answers of this tally, in [`SUMMARY_METRICS`] order.
    pub fn metrics(&self, count: i64) -> [i64; 7] {
        let mut m = [0, count, 0, 0, 0, 0, 0];
        match self.scale {
            Scale::Csat => {
                m[2] = count;
                if self.scale.is_satisfied(self.score) {
                    m[3] = count;
                }
            }
            Scale::Nps => {
                m[4] = count;
                if self.score >= 9 {
                    m[5] = count;
                } else if self.score <= 6 {
                    m[6] = count;
                }
            }
        }
        m
    }
}

/// The counters an answer adds to: its tally and, for a "did we fix it?"
/// re-survey, the recovery counters of the loop report (overall and for the
/// task's owner).
pub fn answer_counters(survey: &Survey, answer: &Answer) -> (Tally, Vec<String>) {
    let tally = Tally::of(answer, survey.agent_id.as_deref());
    let mut loop_keys = Vec::new();
    if survey.resurvey_of.is_some() {
        let owner = survey.agent_id.clone().unwrap_or_default();
        let mut metrics = vec!["resurveys_answered"];
        if answer.scale.is_satisfied(answer.score) {
            metrics.push("recovered");
        }
        for m in metrics {
            loop_keys.push(keys::loop_counter(m));
            loop_keys.push(keys::loop_counter(&format!("owner/{owner}/{m}")));
        }
    }
    (tally, loop_keys)
}

/// Count one answer on `day` (`YYYYMMDD`), tentatively (see [`Tentative`]).
/// The first answer of a tally on a day also enters the day's tally index, so a
/// report finds every counter without listing keys.
pub fn count_answer<S: Storage + ?Sized>(
    counts: &mut Tentative<S>,
    store: &S,
    day: &str,
    tally: &Tally,
) -> StoreResult<()> {
    let part = tally.encode();
    if counts.add(&keys::tally(day, &part), 1)? == 1 {
        // If this fails, the caller takes the count back, and the retry is the
        // first again and indexes it.
        store.add_to_list(&keys::tally_index(day), &part)?;
    }
    Ok(())
}

/// Every tally counted on `days`, with its count (two batch reads).
pub fn read_tallies<S: Storage + ?Sized>(
    store: &S,
    days: &[NaiveDate],
) -> StoreResult<Vec<(NaiveDate, Tally, i64)>> {
    let index_keys: Vec<String> = days
        .iter()
        .map(|d| keys::tally_index(&d.format("%Y%m%d").to_string()))
        .collect();
    let mut found = Vec::new();
    for (day, list) in days.iter().zip(store.get_many(&index_keys)?) {
        let parts: Vec<String> = list
            .and_then(|v| serde_json::from_slice(&v).ok())
            .unwrap_or_default();
        found.extend(parts.into_iter().map(|p| (*day, p)));
    }
    let counter_keys: Vec<String> = found
        .iter()
        .map(|(d, p)| keys::tally(&d.format("%Y%m%d").to_string(), p))
        .collect();
    let counts = store.counters(&counter_keys)?;
    Ok(found
        .into_iter()
        .zip(counts)
        .filter_map(|((d, p), n)| Some((d, Tally::decode(&p)?, n)))
        .collect())
}

/// `GET /reports/summary`: counts, response rate, CSAT% and NPS per group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryReport {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub group_by: String,
    pub rows: Vec<SummaryRow>,
    pub total: SummaryRow,
}

/// The groups a report can use.
pub const GROUP_BY: [&str; 4] = ["day", "agent", "channel", "kind"];

/// Build the summary for `from..=to` grouped `by` one of [`GROUP_BY`].
/// Issued counts come from the issuer's counters, answers from the tallies.
pub fn summary_report<S: Storage + ?Sized>(
    store: &S,
    from: NaiveDate,
    to: NaiveDate,
    by: &str,
    max_days: i64,
) -> Result<SummaryReport, crate::error::ApiError> {
    use crate::error::ApiError;
    if !GROUP_BY.contains(&by) {
        return Err(ApiError::bad_request(format!(
            "group_by must be day, agent, channel or kind (got {by:?})"
        )));
    }
    let days = days(from, to, max_days).map_err(ApiError::bad_request)?;
    let day_key = |d: &NaiveDate| d.format("%Y%m%d").to_string();
    let tallies = read_tallies(store, &days)?;
    // Groups: every value that had an issue or an answer, in a stable order.
    let mut groups: Vec<String> = match by {
        "day" => days.iter().map(|d| d.to_string()).collect(),
        "channel" => [Channel::Email, Channel::Sms, Channel::Whatsapp]
            .iter()
            .map(|c| c.as_str().to_string())
            .collect(),
        "kind" => SurveyKind::ALL
            .iter()
            .map(|k| k.as_str().to_string())
            .collect(),
        _ => {
            let idx: Vec<String> = days
                .iter()
                .map(|d| dimension_index_key(&day_key(d), "agent"))
                .collect();
            let mut agents: Vec<String> = store
                .get_many(&idx)?
                .into_iter()
                .flatten()
                .filter_map(|v| serde_json::from_slice::<Vec<String>>(&v).ok())
                .flatten()
                .chain(tallies.iter().map(|(_, t, _)| t.agent.clone()))
                .collect();
            agents.sort();
            agents.dedup();
            agents
        }
    };
    groups.dedup();
    let (dimension, issued_groups): (&str, Vec<(usize, NaiveDate, String)>) = if by == "day" {
        (
            "all",
            days.iter()
                .enumerate()
                .map(|(i, d)| (i, *d, "all".to_string()))
                .collect(),
        )
    } else {
        (
            by,
            groups
                .iter()
                .enumerate()
                .flat_map(|(i, g)| days.iter().map(move |d| (i, *d, g.clone())))
                .collect(),
        )
    };
    let issued_keys: Vec<String> = issued_groups
        .iter()
        .map(|(_, d, g)| keys::summary_counter(&day_key(d), dimension, g, "issued"))
        .collect();
    let mut values = vec![[0i64; 7]; groups.len()];
    for ((i, _, _), n) in issued_groups.iter().zip(store.counters(&issued_keys)?) {
        values[*i][0] += n;
    }
    for (day, tally, n) in &tallies {
        let group = if by == "day" {
            day.to_string()
        } else {
            tally.group(by).to_string()
        };
        if let Some(i) = groups.iter().position(|g| *g == group) {
            for (v, m) in values[i].iter_mut().zip(tally.metrics(*n)) {
                *v += m;
            }
        }
    }
    let mut total = [0i64; 7];
    if by == "day" || by == "channel" {
        // Every issue and answer is in exactly one of these groups.
        for v in &values {
            for (t, x) in total.iter_mut().zip(v) {
                *t += x;
            }
        }
    } else {
        let keys: Vec<String> = days
            .iter()
            .map(|d| keys::summary_counter(&day_key(d), "all", "all", "issued"))
            .collect();
        total[0] = store.counters(&keys)?.iter().sum();
        for (_, tally, n) in &tallies {
            for (t, m) in total.iter_mut().zip(tally.metrics(*n)).skip(1) {
                *t += m;
            }
        }
    }
    Ok(SummaryReport {
        from,
        to,
        group_by: by.to_string(),
        rows: groups
            .into_iter()
            .zip(values)
            .map(|(g, v)| summary_row(g, &v))
            .collect(),
        total: summary_row("total".into(), &total),
    })
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
    }

    #[test]
    fn tallies_round_trip_and_count_what_the_report_needs() {
        let t = Tally {
            channel: Channel::Whatsapp,
            kind: SurveyKind::Service,
            scale: Scale::Nps,
            score: 6,
            silent_top: false,
            agent: "team/ana".into(),
        };
        assert_eq!(t.encode(), "whatsapp/service/nps/6/-/team/ana");
        assert_eq!(Tally::decode(&t.encode()), Some(t.clone()));
        assert_eq!(t.metrics(2), [0, 2, 0, 0, 2, 0, 2], "detractors");
        let five = Tally {
            scale: Scale::Csat,
            score: 5,
            ..t.clone()
        };
        assert_eq!(five.metrics(1), [0, 1, 1, 1, 0, 0, 0]);
        assert_eq!(five.group("agent"), "team/ana");
        assert_eq!(Tally::decode("fax/service/nps/6/-/a"), None);
    }

    /// In every store mode: like the embedded host and like each of Spin's stores.
    #[test]
    fn counting_is_one_increment_and_taking_back_undoes_it() {
        for mode in crate::storage::KvMode::ALL {
            counting_is_one_increment_and_taking_back_undoes_it_in(mode);
        }
    }

    fn counting_is_one_increment_and_taking_back_undoes_it_in(mode: crate::storage::KvMode) {
        use crate::storage::MemoryStorage;
        let s = MemoryStorage::in_memory_like(mode);
        let t = Tally {
            channel: Channel::Sms,
            kind: SurveyKind::Product,
            scale: Scale::Csat,
            score: 2,
            silent_top: false,
            agent: "none".into(),
        };
        let d = |x: &str| x.parse::<NaiveDate>().unwrap();
        let mut kept = Tentative::new(&s);
        count_answer(&mut kept, &s, "20261204", &t).unwrap();
        let mut lost = Tentative::new(&s);
        count_answer(&mut lost, &s, "20261204", &t).unwrap();
        lost.take_back();
        let read = read_tallies(&s, &[d("2026-12-04"), d("2026-12-05")]).unwrap();
        assert_eq!(read, vec![(d("2026-12-04"), t.clone(), 1)]);
        s.increment(
            &keys::summary_counter("20261204", "all", "all", "issued"),
            4,
        )
        .unwrap();
        s.increment(
            &keys::summary_counter("20261204", "channel", "sms", "issued"),
            4,
        )
        .unwrap();
        let r = summary_report(&s, d("2026-12-04"), d("2026-12-05"), "channel", 92).unwrap();
        let sms = r.rows.iter().find(|r| r.group == "sms").unwrap();
        assert_eq!((sms.issued, sms.answers, sms.csat_pct), (4, 1, Some(0.0)));
        assert_eq!((r.total.issued, r.total.answers), (4, 1));
        let by_day = summary_report(&s, d("2026-12-04"), d("2026-12-05"), "day", 92).unwrap();
        assert_eq!(by_day.rows.len(), 2);
        assert_eq!(by_day.rows[0].response_rate_pct, 25.0);
        assert!(summary_report(&s, d("2026-12-04"), d("2026-12-05"), "week", 92).is_err());
    }

    #[test]
    fn day_ranges_are_bounded() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(days(d("2026-12-01"), d("2026-12-03"), 92).unwrap().len(), 3);
        assert!(days(d("2026-12-03"), d("2026-12-01"), 92).is_err());
        assert!(days(d("2026-01-01"), d("2026-12-31"), 92).is_err());
    }
}
