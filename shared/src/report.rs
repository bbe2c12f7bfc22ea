//! Reports computed from counters (kept exact with atomic increments).

use chrono::{Duration, NaiveDate};
use serde::Serialize;

use crate::model::{Answer, LoggedAnswer};
use crate::model::{Channel, Scale, SurveyKind};

/// The loop counters the escalator keeps.
pub const LOOP_COUNTERS: [&str; 13] = [
    "created",
    "closed",
    "closed_within_deadline",
    "resolved",
    "resurveys_answered",
    "recovered",
    "complaints",
    "repeat_complaints",
    "breached",
    "repairs_closed",
    "repairs_resolved",
    "superseded",
    "too_late",
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
    /// Repairs (not thank-you calls) closed, and of them resolved with the
    /// customer's confirmation: the resolution rate's parts.
    pub repairs_closed: i64,
    pub repairs_resolved: i64,
    /// Missed-call tasks closed by themselves: the customer got through first.
    pub superseded: i64,
    /// Escalations that arrived past their validity: recorded expired, never called.
    pub too_late: i64,
    pub median_time_to_first_contact_minutes: Option<f64>,
}

/// `part` of `whole` in percent, to one decimal (0 when there is no whole).
pub fn pct(part: i64, whole: i64) -> f64 {
    if whole <= 0 {
        0.0
    } else {
        (part as f64 * 1000.0 / whole as f64).round() / 10.0
    }
}

/// `values` in the order of [`LOOP_COUNTERS`]; `first_contact_minutes` one entry per task reached.
///
/// Recovery is measured where the customer says it: the share of re-surveys after
/// a resolved callback answered satisfied. The resolution rate counts repairs
/// only (a thank-you call resolves nothing), and "closed within deadline"
/// counts resolutions only (an expired, refused or unreachable task is closed,
/// not closed in time).
pub fn loop_report(values: &[i64], first_contact_minutes: &[u32]) -> LoopReport {
    let [created, closed, within, resolved, resurveys, recovered, complaints, repeats, breached, repairs_closed, repairs_resolved, superseded, too_late] =
        values[..13]
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
        resolution_rate_pct: pct(repairs_resolved, repairs_closed),
        repeat_complaint_rate_pct: pct(repeats, complaints),
        resurveys_answered: resurveys,
        recovered,
        breached,
        repairs_closed,
        repairs_resolved,
        superseded,
        too_late,
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
        score_metrics(self.scale, self.score, count)
    }
}

/// `count` answers of `score` on `scale`, in [`SUMMARY_METRICS`] order
/// (nothing issued: an answer is not an issue).
fn score_metrics(scale: Scale, score: u8, count: i64) -> [i64; 7] {
    let mut m = [0, count, 0, 0, 0, 0, 0];
    match scale {
        Scale::Csat => {
            m[2] = count;
            if scale.is_satisfied(score) {
                m[3] = count;
            }
        }
        Scale::Nps => {
            m[4] = count;
            if score >= 9 {
                m[5] = count;
            } else if score <= 6 {
                m[6] = count;
            }
        }
    }
    m
}

/// A reason an answer gave, as the summary counts it (`group_by=reason`):
/// with the answer's scale and score, so a reason's row has its CSAT and NPS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReasonTally {
    pub scale: Scale,
    pub score: u8,
    /// A reason the policy offers, or [`OTHER_REASON`].
    pub reason: String,
}

/// What a reason the policy does not offer is counted as (an API client's
/// own tags): the reports stay one row per reason the seller chose.
pub const OTHER_REASON: &str = "other";

impl ReasonTally {
    /// The reasons `answer` gave, each once; `offered` tells the policy's.
    pub fn of(answer: &Answer, offered: impl Fn(&str) -> bool) -> Vec<ReasonTally> {
        let mut reasons: Vec<String> = Vec::new();
        for r in &answer.reasons {
            let r = match offered(r) {
                true => r.clone(),
                false => OTHER_REASON.to_string(),
            };
            if !reasons.contains(&r) {
                reasons.push(r);
            }
        }
        reasons
            .into_iter()
            .map(|reason| ReasonTally {
                scale: answer.scale,
                score: answer.score,
                reason,
            })
            .collect()
    }

    /// `reason/nps/3/damaged` (never a [`Tally`]: no channel is `reason`).
    pub fn encode(&self) -> String {
        format!(
            "reason/{}/{}/{}",
            self.scale.as_str(),
            self.score,
            self.reason
        )
    }

    pub fn decode(s: &str) -> Option<ReasonTally> {
        let mut p = s.splitn(4, '/');
        (p.next()? == "reason").then_some(())?;
        let scale = serde_json::from_value(serde_json::Value::String(p.next()?.into())).ok()?;
        Some(ReasonTally {
            scale,
            score: p.next()?.parse().ok()?,
            reason: p.next()?.to_string(),
        })
    }

    pub fn metrics(&self, count: i64) -> [i64; 7] {
        score_metrics(self.scale, self.score, count)
    }
}

/// The counters an answer adds to: its tally and, for a "did we fix it?"
/// re-survey, the loop report's recovery metrics (overall and for the task's
/// owner, named as `keys::loop_counter` names the other loop counters).
pub fn answer_counters(logged: &LoggedAnswer, answer: &Answer) -> (Tally, Vec<String>) {
    let tally = Tally::of(answer, logged.agent.as_deref());
    let mut loop_metrics = Vec::new();
    if logged.resurvey {
        let owner = logged.agent.clone().unwrap_or_default();
        let mut metrics = vec!["resurveys_answered"];
        if answer.scale.is_satisfied(answer.score) {
            metrics.push("recovered");
        }
        for m in metrics {
            loop_metrics.push(m.to_string());
            loop_metrics.push(format!("owner/{owner}/{m}"));
        }
    }
    (tally, loop_metrics)
}

/// `GET /reports/summary`: counts, response rate, CSAT% and NPS per group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SummaryReport {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Answers are counted as of then: the answer log's last fold (the
    /// escalator's tick), `null` before the first.
    pub answers_as_of: Option<chrono::DateTime<chrono::Utc>>,
    pub group_by: String,
    pub rows: Vec<SummaryRow>,
    pub total: SummaryRow,
}

/// The groups a report can use.
/// By `reason`, a row counts the answers that gave that reason (an answer may
/// give several, so rows need not add up to the total; nothing is issued
/// per reason).
pub const GROUP_BY: [&str; 5] = ["day", "agent", "channel", "kind", "reason"];

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loop_counters_match_the_report() {
        // The report reads exactly these counters, in this order.
        let values: Vec<i64> = (1..=LOOP_COUNTERS.len() as i64).collect();
        let r = loop_report(&values, &[]);
        assert_eq!((r.created, r.breached), (1, 9));
        assert_eq!(r.too_late, LOOP_COUNTERS.len() as i64);
    }

    #[test]
    fn loop_percentages() {
        // Two closed, one in time; of three repairs closed, one resolved.
        let r = loop_report(&[4, 2, 1, 2, 2, 1, 4, 1, 0, 3, 1, 0, 0], &[30, 10, 20]);
        assert_eq!(r.closed_within_deadline_pct, 50.0);
        assert_eq!(r.recovery_rate_pct, 50.0);
        assert_eq!(r.resolution_rate_pct, 33.3);
        assert_eq!(r.repeat_complaint_rate_pct, 25.0);
        assert_eq!(r.median_time_to_first_contact_minutes, Some(20.0));
        assert_eq!(loop_report(&[0; 13], &[]).closed_within_deadline_pct, 0.0);
        assert_eq!(
            loop_report(&[0; 13], &[1, 2]).median_time_to_first_contact_minutes,
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

    #[test]
    fn reasons_are_counted_once_each_and_unknown_ones_as_other() {
        let answer = Answer {
            survey_id: "sv".into(),
            channel: Channel::Sms,
            kind: SurveyKind::Product,
            scale: Scale::Nps,
            score: 3,
            comment: None,
            reasons: vec![
                "damaged".into(),
                "my own tag".into(),
                "damaged".into(),
                "x".into(),
            ],
            answered_at: "2026-12-01T00:00:00Z".parse().unwrap(),
            log_seq: None,
        };
        let tallies = ReasonTally::of(&answer, |r| r == "damaged");
        let names: Vec<String> = tallies.iter().map(ReasonTally::encode).collect();
        assert_eq!(names, ["reason/nps/3/damaged", "reason/nps/3/other"]);
        assert_eq!(ReasonTally::decode(&names[0]), Some(tallies[0].clone()));
        assert_eq!(tallies[0].metrics(2), [0, 2, 0, 0, 2, 0, 2], "detractors");
        assert_eq!(Tally::decode(&names[0]), None, "never read as a tally");
        assert_eq!(ReasonTally::decode("sms/service/nps/6/-/a"), None);
    }

    #[test]
    fn day_ranges_are_bounded() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(days(d("2026-12-01"), d("2026-12-03"), 92).unwrap().len(), 3);
        assert!(days(d("2026-12-03"), d("2026-12-01"), 92).is_err());
        assert!(days(d("2026-01-01"), d("2026-12-31"), 92).is_err());
    }
}
