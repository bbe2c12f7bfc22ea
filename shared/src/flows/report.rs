//! Counting answers and what was sent, and the summary report built from the counts.

use chrono::{DateTime, NaiveDate, Utc};

use crate::answer_log::{FoldCursor, FoldedCounts};
use crate::flows::escalation::FirstContact;
use crate::keys;
use crate::model::TaskReason;
use crate::model::{Channel, SurveyKind};
use crate::report::*;
use crate::storage::{Storage, StorageExt, StoreResult, Tentative};
use crate::ApiError;

/// Every part counted on `days` (tallies, reasons), with its count: one
/// batch read of the days' records, as folded from the answer log.
fn read_folded<S: Storage + ?Sized>(
    store: &S,
    days: &[NaiveDate],
) -> StoreResult<Vec<(NaiveDate, String, i64)>> {
    let day_keys: Vec<String> = days
        .iter()
        .map(|d| keys::tallies(&crate::date_text::compact_day(*d)))
        .collect();
    let mut found = Vec::new();
    for (day, record) in days.iter().zip(store.get_many(&day_keys)?) {
        let counts: FoldedCounts = record
            .and_then(|v| serde_json::from_slice(&v).ok())
            .unwrap_or_default();
        found.extend(counts.counts.into_iter().map(|(part, n)| (*day, part, n)));
    }
    Ok(found)
}

fn tallies_of(parts: &[(NaiveDate, String, i64)]) -> Vec<(NaiveDate, Tally, i64)> {
    parts
        .iter()
        .filter_map(|(day, part, n)| Some((*day, Tally::decode(part)?, *n)))
        .collect()
}

/// Every tally counted on `days`, with its count.
pub fn read_tallies<S: Storage + ?Sized>(
    store: &S,
    days: &[NaiveDate],
) -> StoreResult<Vec<(NaiveDate, Tally, i64)>> {
    Ok(tallies_of(&read_folded(store, days)?))
}

/// Until when answers are counted in the reports (the answer log's last fold).
pub fn answers_as_of<S: Storage + ?Sized>(store: &S) -> StoreResult<Option<DateTime<Utc>>> {
    Ok(store
        .get_json::<FoldCursor>(keys::ANSWER_LOG_FOLD)?
        .and_then(|c| c.as_of))
}

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
            "group_by must be day, agent, channel, kind or reason (got {by:?})"
        )));
    }
    let days = days(from, to, max_days).map_err(ApiError::bad_request)?;
    let day_key = |d: &NaiveDate| crate::date_text::compact_day(*d);
    let parts = read_folded(store, &days)?;
    let tallies = tallies_of(&parts);
    // By reason: an answer's reasons are counted apart from its tally.
    let reasons: Vec<(ReasonTally, i64)> = match by {
        "reason" => parts
            .iter()
            .filter_map(|(_, part, n)| Some((ReasonTally::decode(part)?, *n)))
            .collect(),
        _ => Vec::new(),
    };
    // Groups: every value that had an issue or an answer, in a stable order.
    let mut groups: Vec<String> = match by {
        "reason" => {
            let mut given: Vec<String> = reasons.iter().map(|(r, _)| r.reason.clone()).collect();
            given.sort();
            given.dedup();
            given
        }
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
                .map(|d| keys::dimension_index(&day_key(d), "agent"))
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
    let (dimension, issued_groups): (&str, Vec<(usize, NaiveDate, String)>) = if by == "reason" {
        // Nothing is issued per reason.
        (by, Vec::new())
    } else if by == "day" {
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
    for (reason, n) in &reasons {
        if let Some(i) = groups.iter().position(|g| *g == reason.reason) {
            for (v, m) in values[i].iter_mut().zip(reason.metrics(*n)) {
                *v += m;
            }
        }
    }
    for (day, tally, n) in tallies.iter().filter(|_| by != "reason") {
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
        answers_as_of: answers_as_of(store)?,
        group_by: by.to_string(),
        rows: groups
            .into_iter()
            .zip(values)
            .map(|(g, v)| summary_row(g, &v))
            .collect(),
        total: summary_row("total".into(), &total),
    })
}

/// Count one message issued on `day` in each `(dimension, value)`,
/// tentatively (see [`Tentative`]); the first of a value on a day also enters
/// the day's index of that dimension, so a report finds it without listing keys.
pub fn count_issued<S: Storage + ?Sized>(
    counts: &mut Tentative<S>,
    store: &S,
    day: &str,
    dims: &[(&str, String)],
) -> StoreResult<()> {
    for (dimension, value) in dims {
        let key = keys::summary_counter(day, dimension, value, "issued");
        if counts.add(&key, 1)? == 1 {
            store.add_to_list(&keys::dimension_index(day, dimension), value)?;
        }
    }
    Ok(())
}

/// `GET /reports/loop`: totals, and the same by owner and by reason.
pub fn loop_report_now<S: Storage + ?Sized>(store: &S) -> Result<serde_json::Value, ApiError> {
    let totals = read_loop_report(store, "")?;
    let owners: Vec<String> = store.get_json(keys::LOOP_OWNERS)?.unwrap_or_default();
    let mut by_owner = serde_json::Map::new();
    for owner in owners {
        by_owner.insert(
            owner.clone(),
            read_loop_report(store, &format!("owner/{owner}/"))?,
        );
    }
    let mut by_reason = serde_json::Map::new();
    for reason in TaskReason::ALL {
        let reason = reason.as_str();
        let r = read_loop_report(store, &format!("reason/{reason}/"))?;
        if r["created"].as_i64().unwrap_or(0) > 0 {
            by_reason.insert(reason.to_string(), r);
        }
    }
    let mut value = totals;
    value["by_owner"] = by_owner.into();
    value["by_reason"] = by_reason.into();
    Ok(value)
}

fn read_loop_report<S: Storage + ?Sized>(
    store: &S,
    prefix: &str,
) -> Result<serde_json::Value, ApiError> {
    let keys: Vec<String> = LOOP_COUNTERS
        .iter()
        .map(|c| keys::loop_counter(&format!("{prefix}{c}")))
        .collect();
    let mut values = store.counters(&keys)?;
    // Re-surveys answered and recovered come from the answer log's fold,
    // tasks created from the task log's.
    let folded: Vec<FoldedCounts> = store
        .get_many(&[
            keys::ANSWER_LOOP_COUNTS.into(),
            keys::TASK_LOOP_COUNTS.into(),
        ])?
        .into_iter()
        .map(|v| {
            v.and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default()
        })
        .collect();
    for (value, name) in values.iter_mut().zip(LOOP_COUNTERS) {
        let name = format!("{prefix}{name}");
        *value += folded
            .iter()
            .map(|f| f.counts.get(&name).copied().unwrap_or(0))
            .sum::<i64>();
    }
    let minutes: Vec<u32> = if prefix.is_empty() {
        let older: Vec<u32> = store
            .get_json(keys::FIRST_CONTACT_MINUTES)?
            .unwrap_or_default();
        let firsts: Vec<FirstContact> = store.get_json(keys::FIRST_CONTACTS)?.unwrap_or_default();
        older
            .into_iter()
            .chain(firsts.into_iter().map(|f| f.minutes))
            .collect()
    } else {
        Vec::new()
    };
    serde_json::to_value(loop_report(&values, &minutes))
        .map_err(|e| ApiError::internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Channel, Scale, SurveyKind};

    /// In every store mode: like the embedded host and like each of Spin's stores.
    #[test]
    fn counting_is_one_increment_and_taking_back_undoes_it() {
        for mode in crate::storage::KvMode::ALL {
            tallies_folded_on_a_day_make_the_summary_in(mode);
        }
    }

    fn tallies_folded_on_a_day_make_the_summary_in(mode: crate::storage::KvMode) {
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
        let mut folded = FoldedCounts::default();
        folded.add(1, &[(1, t.encode())]);
        s.put_json(&keys::tallies("20261204"), &folded).unwrap();
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
}
