//! The answer log's rules: which entries count, and how a fold adds them up.
//!
//! An answer is logged (`model::LoggedAnswer`, under the next number of one
//! counter) before it is swapped into the customer's history, where it
//! carries that number. Reports are then folded from the log by the
//! escalator's tick (`flows::answer_log::fold`), which counts an entry only
//! when the history confirms it. So the counts are exact whatever crashes:
//! an answer is counted once, when it was recorded, and never otherwise.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// How long an entry nobody confirms is waited for: longer than any request
/// can run (the host's deadline is 2 minutes), so its writer is gone.
pub const ORPHAN_AFTER: Duration = Duration::minutes(5);

/// What a fold does with one entry of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryVerdict {
    /// The history holds the survey's answer under this entry: count it.
    Count,
    /// Nothing to count, now or later.
    Skip(SkipReason),
    /// Its writer may still be at work: the fold stops here for now.
    Wait,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The answer was recorded under another entry (a retry after a
    /// failure, or a submission that lost the race).
    CountedElsewhere,
    /// The writer logged it and stopped before recording the answer.
    NeverRecorded,
    /// The number was taken and the entry never written.
    Missing,
}

/// Judge entry `seq` of a log whose entries count only once a record
/// confirms them (the answer log: the customer's history; the task log: the
/// customer's callbacks): `logged_at` of the entry as read (`None`:
/// missing), `recorded` the number the confirming record holds for what the
/// entry names (`Some(None)`: it holds it under no number; `None`: not at
/// all); for a missing entry, `missing_since` is a time by which its number
/// had been taken (a fold first found it missing, or a later entry was logged).
pub fn judge(
    seq: u64,
    logged_at: Option<DateTime<Utc>>,
    recorded: Option<Option<u64>>,
    missing_since: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> EntryVerdict {
    let Some(logged_at) = logged_at else {
        return match missing_since {
            Some(since) if now - since >= ORPHAN_AFTER => EntryVerdict::Skip(SkipReason::Missing),
            _ => EntryVerdict::Wait,
        };
    };
    match recorded {
        Some(n) if n == Some(seq) => EntryVerdict::Count,
        Some(_) => EntryVerdict::Skip(SkipReason::CountedElsewhere),
        None if now - logged_at >= ORPHAN_AFTER => EntryVerdict::Skip(SkipReason::NeverRecorded),
        None => EntryVerdict::Wait,
    }
}

/// For each entry of a batch read in order (`logged_at`, `None` where
/// missing), the earliest time a later entry was logged: a missing entry's
/// number was taken by then, which bounds how long its writer has had.
pub fn taken_by(logged_at: &[Option<DateTime<Utc>>]) -> Vec<Option<DateTime<Utc>>> {
    let mut taken = vec![None; logged_at.len()];
    let mut earliest_after: Option<DateTime<Utc>> = None;
    for (i, at) in logged_at.iter().enumerate().rev() {
        taken[i] = earliest_after;
        if let Some(at) = at {
            earliest_after = Some(earliest_after.map_or(*at, |t| t.min(*at)));
        }
    }
    taken
}

/// How far the log is folded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FoldCursor {
    /// Every entry up to this number is folded (counted or skipped).
    pub folded: u64,
    /// The next entry, missing since then (see [`SkipReason::Missing`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<(u64, DateTime<Utc>)>,
    /// When the fold last ran: the reports are exact as of then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<DateTime<Utc>>,
}

impl FoldCursor {
    /// Since when entry `seq` is known to be missing: when a fold first
    /// found it so, or when a later entry was logged (`taken_by`), the earlier.
    pub fn missing_since(
        &self,
        seq: u64,
        taken_by: Option<DateTime<Utc>>,
    ) -> Option<DateTime<Utc>> {
        let seen = self.missing.filter(|(s, _)| *s == seq).map(|(_, t)| t);
        match (seen, taken_by) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Move on to `folded` (never back: two folds may overlap).
    pub fn advance(
        &mut self,
        folded: u64,
        missing: Option<(u64, DateTime<Utc>)>,
        now: DateTime<Utc>,
    ) {
        if folded >= self.folded {
            self.folded = folded;
            self.missing = missing;
        }
        self.as_of = Some(self.as_of.map_or(now, |t| t.max(now)));
    }
}

/// Counts folded from the log into one record (a day's tallies, the loop's
/// answer counters), with the last entry folded into it: a fold that is
/// retried, or runs beside another, adds each entry once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FoldedCounts {
    pub through: u64,
    pub counts: BTreeMap<String, i64>,
}

impl FoldedCounts {
    /// Add the `(entry, name)` items that come after what is already folded,
    /// and mark everything up to `end` folded; `false` when nothing changed.
    pub fn add(&mut self, end: u64, items: &[(u64, String)]) -> bool {
        if end <= self.through {
            return false;
        }
        for (seq, name) in items {
            if *seq > self.through && *seq <= end {
                *self.counts.entry(name.clone()).or_default() += 1;
            }
        }
        self.through = end;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Answer, Channel, LoggedAnswer, Scale, SurveyKind};

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn entry(at: &str) -> LoggedAnswer {
        LoggedAnswer {
            survey_id: "sv".into(),
            customer: "c".into(),
            agent: None,
            resurvey: false,
            device: "d".into(),
            work_order_id: None,
            call: vec![],
            reopens: None,
            logged_at: t(at),
        }
    }

    fn answer(seq: Option<u64>) -> Answer {
        Answer {
            survey_id: "sv".into(),
            channel: Channel::Email,
            kind: SurveyKind::Product,
            scale: Scale::Csat,
            score: 5,
            comment: None,
            reasons: vec![],
            answered_at: t("2026-12-04T10:00:00Z"),
            log_seq: seq,
        }
    }

    #[test]
    fn an_entry_counts_only_when_the_history_names_it() {
        let now = t("2026-12-04T10:00:01Z");
        let e = entry("2026-12-04T10:00:00Z");
        assert_eq!(
            judge(
                7,
                Some(e.logged_at),
                Some(answer(Some(7)).log_seq),
                None,
                now
            ),
            EntryVerdict::Count
        );
        assert_eq!(
            judge(
                7,
                Some(e.logged_at),
                Some(answer(Some(9)).log_seq),
                None,
                now
            ),
            EntryVerdict::Skip(SkipReason::CountedElsewhere)
        );
        assert_eq!(
            judge(7, Some(e.logged_at), Some(answer(None).log_seq), None, now),
            EntryVerdict::Skip(SkipReason::CountedElsewhere)
        );
    }

    #[test]
    fn an_unconfirmed_entry_is_waited_for_then_skipped() {
        let e = entry("2026-12-04T10:00:00Z");
        assert_eq!(
            judge(7, Some(e.logged_at), None, None, t("2026-12-04T10:04:59Z")),
            EntryVerdict::Wait
        );
        assert_eq!(
            judge(7, Some(e.logged_at), None, None, t("2026-12-04T10:05:00Z")),
            EntryVerdict::Skip(SkipReason::NeverRecorded)
        );
        let since = Some(t("2026-12-04T10:00:00Z"));
        assert_eq!(
            judge(7, None, None, None, t("2026-12-04T11:00:00Z")),
            EntryVerdict::Wait
        );
        assert_eq!(
            judge(7, None, None, since, t("2026-12-04T10:01:00Z")),
            EntryVerdict::Wait
        );
        assert_eq!(
            judge(7, None, None, since, t("2026-12-04T10:05:00Z")),
            EntryVerdict::Skip(SkipReason::Missing)
        );
    }

    #[test]
    fn folded_counts_add_each_entry_once() {
        let mut c = FoldedCounts::default();
        let items = vec![(1, "a".to_string()), (2, "b".into()), (3, "a".into())];
        assert!(c.add(2, &items[..2]));
        // A retry of the same fold, and one that got further.
        assert!(!c.add(2, &items));
        assert!(c.add(3, &items));
        assert_eq!(c.counts["a"], 2);
        assert_eq!(c.counts["b"], 1);
        assert_eq!(c.through, 3);
    }

    #[test]
    fn the_cursor_never_goes_back() {
        let mut c = FoldCursor::default();
        c.advance(10, None, t("2026-12-04T10:00:00Z"));
        c.advance(
            4,
            Some((5, t("2026-12-04T09:00:00Z"))),
            t("2026-12-04T09:59:00Z"),
        );
        assert_eq!((c.folded, c.missing), (10, None));
        assert_eq!(c.as_of, Some(t("2026-12-04T10:00:00Z")));
    }
}
