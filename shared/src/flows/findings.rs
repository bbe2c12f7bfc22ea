//! The outer loop's endpoints: a department records a fix
//! (`POST /findings/fixes`), and the findings report
//! (`GET /reports/findings?from=&to=`) reads exact counters — one per cause,
//! week and kind, counted when a repair closes (`escalation::commit`) — and
//! the fixes; it never lists keys.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};

use crate::findings::{
    check_fix, findings_report, weeks, FindingsReport, Fix, FixInput, WeekCounts, ALL_CAUSES, KINDS,
};
use crate::keys;
use crate::policy::SurveyPolicy;
use crate::report::OTHER_REASON;
use crate::storage::{Storage, StorageExt, Update};
use crate::task::{EscalationPolicy, UNCLASSIFIED};
use crate::ApiError;

/// How many fixes are kept (the oldest go first).
const MAX_FIXES: usize = 1000;

/// How many weeks one report covers at most.
const MAX_WEEKS: usize = 106;

/// Record a fix once: the same fix again is `Ok((fix, false))`.
pub fn record_fix<S: Storage + ?Sized>(
    store: &S,
    input: &FixInput,
    policy: &EscalationPolicy,
    now: DateTime<Utc>,
) -> Result<(Fix, bool), ApiError> {
    let fix = check_fix(input, policy, now).map_err(|e| ApiError::unprocessable(e.0))?;
    let mut created = false;
    let stored = store.update_json::<Vec<Fix>, _>(keys::FINDING_FIXES, |cur| {
        let mut fixes = cur.unwrap_or_default();
        created = !fixes.iter().any(|f| f.fix_id == fix.fix_id);
        if !created {
            return Update::Keep;
        }
        fixes.push(fix.clone());
        fixes.sort_by_key(|f| f.fixed_at);
        if fixes.len() > MAX_FIXES {
            fixes.remove(0);
        }
        Update::Write(fixes)
    })?;
    let fix = stored
        .unwrap_or_default()
        .into_iter()
        .find(|f| f.fix_id == fix.fix_id)
        .unwrap_or(fix);
    Ok((fix, created))
}

/// `GET /reports/findings`: from `from` to `to` (dates, inclusive); the
/// survey policy names the reasons customers could give.
pub fn report<S: Storage + ?Sized>(
    store: &S,
    (policy, survey_policy): (&EscalationPolicy, &SurveyPolicy),
    from: NaiveDate,
    to: NaiveDate,
) -> Result<FindingsReport, ApiError> {
    let weeks = weeks(from, to, MAX_WEEKS).map_err(ApiError::bad_request)?;
    let causes: Vec<&str> = policy
        .root_causes
        .keys()
        .map(String::as_str)
        .chain([UNCLASSIFIED, ALL_CAUSES])
        .collect();
    let mut keys = Vec::new();
    for cause in &causes {
        for week in &weeks {
            for kind in KINDS {
                keys.push(keys::finding_counter(cause, week, kind));
            }
        }
    }
    let values = store.counters(&keys)?;
    let at = |cause: &str, week: &str| {
        let (Some(c), Some(w)) = (
            causes.iter().position(|x| *x == cause),
            weeks.iter().position(|x| x == week),
        ) else {
            return WeekCounts::default();
        };
        let i = (c * weeks.len() + w) * KINDS.len();
        WeekCounts::from_kinds(&values[i..i + KINDS.len()])
    };
    // What customers said, per cause over the weeks: one batch read.
    let offered = survey_policy.reasons();
    let reasons: Vec<&str> = offered
        .all_reasons()
        .into_iter()
        .chain([OTHER_REASON])
        .collect();
    let own_causes = &causes[..causes.len() - 1];
    let mut reason_keys = Vec::new();
    for cause in own_causes {
        for week in &weeks {
            for reason in &reasons {
                reason_keys.push(keys::finding_reason_counter(cause, week, reason));
            }
        }
    }
    let said = store.counters(&reason_keys)?;
    let said_of = |cause: &str| -> BTreeMap<String, i64> {
        let mut out = BTreeMap::new();
        let Some(c) = own_causes.iter().position(|x| *x == cause) else {
            return out;
        };
        let per_cause = weeks.len() * reasons.len();
        for (i, n) in said[c * per_cause..(c + 1) * per_cause].iter().enumerate() {
            if *n > 0 {
                *out.entry(reasons[i % reasons.len()].to_string())
                    .or_default() += n;
            }
        }
        out
    };
    let fixes: Vec<Fix> = store.get_json(keys::FINDING_FIXES)?.unwrap_or_default();
    Ok(findings_report(policy, &weeks, at, said_of, &fixes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flows::escalation::{commit, receive};
    use crate::flows::testing::{at, request};
    use crate::model::{Outcome, TaskReason};
    use crate::policy::SurveyPolicy;
    use crate::storage::{KvMode, MemoryStorage};
    use crate::task::{apply_outcome, OutcomeInput};

    #[test]
    fn a_resolved_repair_counts_once_for_its_cause_and_a_fix_once() {
        for mode in KvMode::ALL {
            let s = MemoryStorage::in_memory_like(mode);
            let p = EscalationPolicy::default();
            let now = at("2026-12-01T10:00:00+01:00");
            // The customer said why: a reason the policy offers, twice, and
            // a tag of an API client's own.
            let mut req = request("sv_1", TaskReason::LowScore);
            req.answer = Some(crate::model::Answer {
                survey_id: "sv_1".into(),
                channel: crate::model::Channel::Sms,
                kind: crate::model::SurveyKind::Product,
                scale: crate::model::Scale::Nps,
                score: 2,
                comment: None,
                reasons: vec![
                    "late_delivery".into(),
                    "my tag".into(),
                    "late_delivery".into(),
                ],
                answered_at: now,
                log_seq: None,
            });
            let task = receive(&s, &req, (&p, &crate::webhooks::NOBODY), now)
                .unwrap()
                .unwrap();
            let input = OutcomeInput {
                outcome: Outcome::Resolved,
                resolution: Some("refund".into()),
                customer_satisfied: Some(true),
                note: None,
                root_cause: Some("delivery".into()),
            };
            let step = |t: &crate::model::CallbackTask| Ok(apply_outcome(t, &input, &p, now)?);
            commit(
                &s,
                &task.task_id,
                None,
                Some(Outcome::Resolved),
                (&SurveyPolicy::default(), &crate::webhooks::NOBODY),
                now,
                step,
            )
            .unwrap();
            assert!(commit(
                &s,
                &task.task_id,
                None,
                Some(Outcome::Resolved),
                (&SurveyPolicy::default(), &crate::webhooks::NOBODY),
                now,
                step
            )
            .is_err());
            let day = |d: &str| d.parse::<NaiveDate>().unwrap();
            let r = report(
                &s,
                (&p, &SurveyPolicy::default()),
                day("2026-11-30"),
                day("2026-12-06"),
            )
            .unwrap();
            let logistics = r
                .departments
                .iter()
                .find(|d| d.department == "logistics")
                .unwrap();
            assert_eq!(logistics.total, 1, "{mode:?}");
            let said = &logistics
                .causes
                .iter()
                .find(|c| c.cause == "delivery")
                .unwrap();
            let said: Vec<(&str, i64)> = said
                .customer_reasons
                .iter()
                .map(|(r, n)| (r.as_str(), *n))
                .collect();
            assert_eq!(said, [("late_delivery", 1), ("other", 1)], "{mode:?}");
            assert_eq!(r.all[0].counts.low_scores, 1, "{mode:?}");
            let fix = FixInput {
                cause: "delivery".into(),
                change: "new courier".into(),
                fixed_at: now,
            };
            assert!(record_fix(&s, &fix, &p, now).unwrap().1);
            assert!(
                !record_fix(&s, &fix, &p, now).unwrap().1,
                "{mode:?}: the same fix again"
            );
            assert_eq!(
                report(
                    &s,
                    (&p, &SurveyPolicy::default()),
                    day("2026-11-30"),
                    day("2026-12-06")
                )
                .unwrap()
                .fixes
                .len(),
                1
            );
        }
    }
}
