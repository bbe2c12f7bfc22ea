//! The outer loop (SPEC 1, "从点到面"): the root causes of closed repairs by
//! department and week, the fixes departments record, and whether low scores
//! and complaints of a cause fell after its fix. Pure: the counters are read
//! and written by `flows::findings` and `flows::escalation::commit`.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{derive_id, CallbackTask, TaskReason};
use crate::report::pct;
use crate::task::{is_repair, EscalationPolicy, UNCLASSIFIED};

/// What a finding was, as the counters split it.
pub const KINDS: [&str; 3] = ["low_score", "complaint", "other"];

/// The counter key's stand-in for "every cause".
pub const ALL_CAUSES: &str = "*";

/// The ISO week of `t` (`2026-W49`): findings are counted by the week the
/// problem surfaced (the task was created), not the week it was closed.
pub fn iso_week(t: DateTime<Utc>) -> String {
    crate::date_text::iso_week(t.date_naive())
}

/// One closed repair with a root cause, to count.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub cause: String,
    pub week: String,
    pub kind: &'static str,
    /// The reasons the customer gave with the answer that raised the task,
    /// each once: what customers said about problems of this cause.
    pub customer_reasons: Vec<String>,
}

/// What closing `before` into `after` adds to the findings: a repair that
/// closed with a root cause (a resolution always has one: `unclassified`
/// when the agent named none).
pub fn finding_of(before: &CallbackTask, after: &CallbackTask) -> Option<Finding> {
    if before.state.is_closed() || !after.state.is_closed() || !is_repair(after) {
        return None;
    }
    let has = |r: &[TaskReason]| after.reasons.iter().any(|x| r.contains(x));
    let kind = if has(&[TaskReason::Complaint, TaskReason::VipRepeat]) {
        "complaint"
    } else if has(&[TaskReason::LowScore, TaskReason::Dropping]) {
        "low_score"
    } else {
        "other"
    };
    Some(Finding {
        cause: after.root_cause.clone()?,
        week: iso_week(after.created_at),
        kind,
        customer_reasons: {
            let mut once: Vec<String> = Vec::new();
            for r in after.context.answer.iter().flat_map(|a| &a.reasons) {
                if !once.contains(r) {
                    once.push(r.clone());
                }
            }
            once
        },
    })
}

/// A fix as a department posts it (`POST /findings/fixes`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixInput {
    pub cause: String,
    /// What was changed, in the department's words.
    pub change: String,
    /// When the change took effect.
    pub fixed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fix {
    pub fix_id: String,
    pub cause: String,
    pub department: String,
    pub change: String,
    pub fixed_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
}

/// Why a fix is not taken (`422`), in words a person can act on.
#[derive(Debug, Clone, PartialEq)]
pub struct BadFix(pub String);

/// A fix, checked against the policy's causes: its department is the cause's.
pub fn check_fix(
    input: &FixInput,
    policy: &EscalationPolicy,
    now: DateTime<Utc>,
) -> Result<Fix, BadFix> {
    let Some(department) = policy.root_causes.get(&input.cause) else {
        let known: Vec<&str> = policy.root_causes.keys().map(String::as_str).collect();
        return Err(BadFix(format!(
            "`cause` {:?} is not one of the seller's root causes; use one of: {}",
            input.cause,
            known.join(", ")
        )));
    };
    let change = input.change.trim();
    if change.is_empty() || change.chars().count() > 2000 {
        return Err(BadFix(
            "`change` says what was changed: 1 to 2000 characters".into(),
        ));
    }
    if input.fixed_at > now + Duration::days(1) {
        return Err(BadFix(
            "`fixed_at` is in the future: record a fix once it is in effect".into(),
        ));
    }
    Ok(Fix {
        fix_id: derive_id("fix", &[&input.cause, &input.fixed_at.to_rfc3339(), change]),
        cause: input.cause.clone(),
        department: department.clone(),
        change: change.to_string(),
        fixed_at: input.fixed_at,
        recorded_at: now,
    })
}

/// The weeks from `from` to `to` (inclusive), at most `max` of them.
pub fn weeks(from: NaiveDate, to: NaiveDate, max: usize) -> Result<Vec<String>, String> {
    if to < from {
        return Err("`to` is before `from`".into());
    }
    let mut out: Vec<String> = Vec::new();
    let mut d = from;
    while d <= to {
        let w = crate::date_text::iso_week(d);
        if out.last() != Some(&w) {
            out.push(w);
        }
        if out.len() > max {
            return Err(format!(
                "at most {max} weeks at a time; narrow `from` and `to`"
            ));
        }
        d += Duration::days(1);
    }
    Ok(out)
}

/// The week a fix took effect in.
fn week_of(t: DateTime<Utc>) -> String {
    crate::date_text::iso_week(t.date_naive())
}

/// Counts of one cause (or all causes) in one week.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct WeekCounts {
    pub low_scores: i64,
    pub complaints: i64,
    pub other: i64,
}

impl WeekCounts {
    /// From the counters of [`KINDS`], in that order.
    pub fn from_kinds(v: &[i64]) -> WeekCounts {
        WeekCounts {
            low_scores: v[0],
            complaints: v[1],
            other: v[2],
        }
    }

    /// Low scores and complaints: what the outer loop is to bring down.
    pub fn unhappy(&self) -> i64 {
        self.low_scores + self.complaints
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CauseWeek {
    pub week: String,
    #[serde(flatten)]
    pub counts: WeekCounts,
    /// This cause's share of the week's low scores and complaints.
    pub share_pct: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeekTotal {
    pub week: String,
    #[serde(flatten)]
    pub counts: WeekCounts,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CauseRow {
    pub cause: String,
    pub total: i64,
    pub weeks: Vec<CauseWeek>,
    /// What customers said (the reasons they picked) about the problems
    /// this cause explained, over the report's weeks: reason → answers.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub customer_reasons: BTreeMap<String, i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DepartmentRow {
    pub department: String,
    pub total: i64,
    pub causes: Vec<CauseRow>,
}

/// Low scores and complaints of a fix's cause over some weeks.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Period {
    pub weeks: usize,
    pub count: i64,
    /// Per week on average.
    pub per_week: f64,
    /// The cause's share of all low scores and complaints in those weeks.
    pub share_pct: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FixEffect {
    #[serde(flatten)]
    pub fix: Fix,
    /// The report's weeks before the fix's week, and after it (its own
    /// week, half before and half after, is in neither).
    pub before: Period,
    pub after: Period,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FindingsReport {
    pub weeks: Vec<String>,
    pub departments: Vec<DepartmentRow>,
    /// All causes together, per week.
    pub all: Vec<WeekTotal>,
    pub fixes: Vec<FixEffect>,
}

/// The report, from counts per cause and week (`counts(cause, week)`; the
/// cause [`ALL_CAUSES`] for every cause together), the customers' reasons per
/// cause over the weeks (`reasons(cause)`) and the recorded fixes.
pub fn findings_report(
    policy: &EscalationPolicy,
    weeks: &[String],
    counts: impl Fn(&str, &str) -> WeekCounts,
    reasons: impl Fn(&str) -> BTreeMap<String, i64>,
    fixes: &[Fix],
) -> FindingsReport {
    let all: Vec<WeekCounts> = weeks.iter().map(|w| counts(ALL_CAUSES, w)).collect();
    let row = |cause: &str| {
        let per_week: Vec<CauseWeek> = weeks
            .iter()
            .zip(&all)
            .map(|(w, a)| {
                let c = counts(cause, w);
                CauseWeek {
                    week: w.clone(),
                    share_pct: pct(c.unhappy(), a.unhappy()),
                    counts: c,
                }
            })
            .collect();
        CauseRow {
            cause: cause.to_string(),
            total: per_week
                .iter()
                .map(|w| w.counts.unhappy() + w.counts.other)
                .sum(),
            weeks: per_week,
            customer_reasons: reasons(cause),
        }
    };
    let mut departments: Vec<DepartmentRow> = Vec::new();
    let causes = policy
        .root_causes
        .iter()
        .map(|(c, d)| (c.as_str(), d.as_str()))
        .chain([(UNCLASSIFIED, "unassigned")]);
    for (cause, dept) in causes {
        let r = row(cause);
        match departments.iter_mut().find(|d| d.department == dept) {
            Some(d) => {
                d.total += r.total;
                d.causes.push(r);
            }
            None => departments.push(DepartmentRow {
                department: dept.to_string(),
                total: r.total,
                causes: vec![r],
            }),
        }
    }
    let period = |cause: &str, ws: &[&String]| {
        let count: i64 = ws.iter().map(|w| counts(cause, w).unhappy()).sum();
        let whole: i64 = ws.iter().map(|w| counts(ALL_CAUSES, w).unhappy()).sum();
        Period {
            weeks: ws.len(),
            count,
            per_week: if ws.is_empty() {
                0.0
            } else {
                (count as f64 * 10.0 / ws.len() as f64).round() / 10.0
            },
            share_pct: pct(count, whole),
        }
    };
    let fixes = fixes
        .iter()
        .map(|f| {
            let w = week_of(f.fixed_at);
            let before: Vec<&String> = weeks.iter().filter(|x| **x < w).collect();
            let after: Vec<&String> = weeks.iter().filter(|x| **x > w).collect();
            FixEffect {
                fix: f.clone(),
                before: period(&f.cause, &before),
                after: period(&f.cause, &after),
            }
        })
        .collect();
    FindingsReport {
        weeks: weeks.to_vec(),
        all: weeks
            .iter()
            .zip(&all)
            .map(|(w, a)| WeekTotal {
                week: w.clone(),
                counts: *a,
            })
            .collect(),
        departments,
        fixes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn weeks_are_iso_weeks_and_bounded() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(
            weeks(d("2026-12-28"), d("2027-01-04"), 10).unwrap(),
            vec!["2026-W53", "2027-W01"]
        );
        assert!(weeks(d("2026-01-01"), d("2026-12-31"), 10).is_err());
        assert!(weeks(d("2026-02-01"), d("2026-01-01"), 10).is_err());
        assert_eq!(iso_week(at("2026-12-01T10:00:00Z")), "2026-W49");
    }

    #[test]
    fn a_fix_names_a_known_cause_and_takes_its_department() {
        let p = EscalationPolicy::default();
        let now = at("2026-12-01T10:00:00Z");
        let input = |cause: &str, change: &str| FixInput {
            cause: cause.into(),
            change: change.into(),
            fixed_at: now,
        };
        let fix = check_fix(&input("delivery", "new courier"), &p, now).unwrap();
        assert_eq!(fix.department, "logistics");
        assert_eq!(
            fix,
            check_fix(&input("delivery", " new courier "), &p, now).unwrap()
        );
        let bad = check_fix(&input("weather", "x"), &p, now).unwrap_err();
        assert!(bad.0.contains("product_defect"), "{}", bad.0);
        assert!(check_fix(&input("delivery", " "), &p, now).is_err());
    }

    #[test]
    fn the_report_splits_by_department_and_compares_before_and_after_a_fix() {
        let p = EscalationPolicy::default();
        let weeks: Vec<String> = ["2026-W45", "2026-W46", "2026-W47", "2026-W48"]
            .map(String::from)
            .to_vec();
        // Delivery: 4 low scores a week before the fix (in W46), 1 after;
        // product defects: 2 complaints a week throughout.
        let mut table: BTreeMap<(String, String), WeekCounts> = BTreeMap::new();
        for w in &weeks {
            let delivery = if w.as_str() < "2026-W46" { 4 } else { 1 };
            table.insert(
                ("delivery".into(), w.clone()),
                WeekCounts {
                    low_scores: delivery,
                    ..Default::default()
                },
            );
            table.insert(
                ("product_defect".into(), w.clone()),
                WeekCounts {
                    complaints: 2,
                    ..Default::default()
                },
            );
            table.insert(
                (ALL_CAUSES.into(), w.clone()),
                WeekCounts {
                    low_scores: delivery,
                    complaints: 2,
                    other: 0,
                },
            );
        }
        let counts = |c: &str, w: &str| {
            table
                .get(&(c.to_string(), w.to_string()))
                .copied()
                .unwrap_or_default()
        };
        let fix = check_fix(
            &FixInput {
                cause: "delivery".into(),
                change: "new courier".into(),
                fixed_at: at("2026-11-11T10:00:00Z"),
            },
            &p,
            at("2026-12-01T10:00:00Z"),
        )
        .unwrap();
        let said = |c: &str| match c {
            "delivery" => BTreeMap::from([("late_delivery".to_string(), 3)]),
            _ => BTreeMap::new(),
        };
        let r = findings_report(&p, &weeks, counts, said, &[fix]);
        let logistics = r
            .departments
            .iter()
            .find(|d| d.department == "logistics")
            .unwrap();
        assert_eq!(logistics.total, 4 + 1 + 1 + 1);
        let delivery = &logistics
            .causes
            .iter()
            .find(|c| c.cause == "delivery")
            .unwrap();
        assert_eq!(delivery.weeks[0].share_pct, 66.7);
        assert_eq!(delivery.customer_reasons["late_delivery"], 3);
        let effect = &r.fixes[0];
        assert_eq!(
            (
                effect.before.weeks,
                effect.before.count,
                effect.before.per_week
            ),
            (1, 4, 4.0)
        );
        assert_eq!(
            (
                effect.after.weeks,
                effect.after.count,
                effect.after.per_week
            ),
            (2, 2, 1.0)
        );
        assert_eq!(
            (effect.before.share_pct, effect.after.share_pct),
            (66.7, 33.3)
        );
        assert!(r.departments.iter().any(|d| d.department == "unassigned"));
    }
}
