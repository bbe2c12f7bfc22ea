//! A customer's answer to a survey: validation, and what it means (low,
//! dropping, first top score, recovered) against the customer's history.

use crate::model::Scale;
use crate::model::TaskReason;
pub use crate::model::{Answer, ComplaintEntry, History, KEEP_ANSWERS_DAYS};

pub const MAX_COMMENT_CHARS: usize = 2000;
const MAX_REASONS: usize = 10;
const MAX_REASON_CHARS: usize = 40;

/// Why a submission is not an answer on the survey's scale (`422`): what is
/// allowed, in words a customer can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidAnswer(pub String);

/// Validate the submitted fields for `scale`; 422 with what is allowed otherwise.
pub fn validate_answer(
    scale: Scale,
    score: Option<&str>,
    comment: Option<&str>,
    reasons: &[String],
) -> Result<(u8, Option<String>, Vec<String>), InvalidAnswer> {
    let range = scale.range();
    let Some(raw) = score.map(str::trim).filter(|s| !s.is_empty()) else {
        return Err(InvalidAnswer(format!(
            "score is required: a whole number from {} to {}",
            range.start(),
            range.end()
        )));
    };
    let score = raw
        .parse::<u8>()
        .ok()
        .filter(|s| range.contains(s))
        .ok_or_else(|| {
            InvalidAnswer(format!(
                "score must be a whole number from {} to {} (got {raw:?})",
                range.start(),
                range.end()
            ))
        })?;
    let comment = comment
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    if let Some(c) = &comment {
        if c.chars().count() > MAX_COMMENT_CHARS {
            return Err(InvalidAnswer(format!(
                "comment is limited to {MAX_COMMENT_CHARS} characters"
            )));
        }
    }
    if reasons.len() > MAX_REASONS || reasons.iter().any(|r| r.chars().count() > MAX_REASON_CHARS) {
        return Err(InvalidAnswer(format!(
            "reasons: at most {MAX_REASONS} tags of at most {MAX_REASON_CHARS} characters"
        )));
    }
    Ok((score, comment, reasons.to_vec()))
}

/// The survey page's second step: a low score chosen on its first step,
/// with no reasons given, is not recorded yet; the page asks for reasons
/// (offered by the policy for the survey's kind) first. Returns the score
/// to carry into that step, or `None` when the answer is recorded now (an
/// API client, a form of the seller's own, a satisfied score, a kind with no
/// reasons, or reasons already given).
pub fn asks_for_reasons(
    scale: Scale,
    score: Option<&str>,
    from_first_step: bool,
    offers_reasons: bool,
    given: &[String],
) -> Option<u8> {
    if !from_first_step || !offers_reasons || !given.is_empty() {
        return None;
    }
    let score = score?.trim().parse::<u8>().ok()?;
    (scale.range().contains(&score) && scale.is_low(score)).then_some(score)
}

/// Why this answer deserves a human callback, judged against the history
/// *before* it. Empty: nothing to do.
pub fn classify(before: &History, scale: Scale, score: u8) -> Vec<TaskReason> {
    let mut reasons = Vec::new();
    if scale.is_low(score) {
        reasons.push(TaskReason::LowScore);
    }
    let previous_same_scale = before.answers.iter().rev().find(|a| a.scale == scale);
    if let Some(prev) = previous_same_scale {
        if prev.score >= score && prev.score - score >= scale.drop_threshold() {
            reasons.push(TaskReason::Dropping);
        }
    }
    if scale.is_satisfied(score) {
        let last = before.answers.last();
        let was_unhappy =
            last.is_some_and(|a| a.scale.is_low(a.score)) || before.complaints_since_satisfied > 0;
        if was_unhappy {
            reasons.push(TaskReason::Recovered);
        } else if scale.is_top(score) && !before.answers.iter().any(|a| a.scale.is_top(a.score)) {
            reasons.push(TaskReason::FirstPromoter);
        }
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Channel, SurveyKind, HISTORY_LEN};

    fn entry(id: &str, scale: Scale, score: u8) -> Answer {
        entry_at(id, scale, score, "2026-12-01T00:00:00Z")
    }

    fn entry_at(id: &str, scale: Scale, score: u8, at: &str) -> Answer {
        Answer {
            survey_id: id.into(),
            channel: Channel::Email,
            kind: SurveyKind::Product,
            scale,
            score,
            comment: None,
            reasons: vec![],
            answered_at: at.parse().unwrap(),
            log_seq: None,
        }
    }

    fn history(entries: &[(Scale, u8)]) -> History {
        let mut h = History::default();
        for (i, (s, v)) in entries.iter().enumerate() {
            h.record(entry(&format!("s{i}"), *s, *v));
        }
        h
    }

    #[test]
    fn only_a_low_score_from_the_first_step_is_asked_for_reasons() {
        let (offered, none) = (true, false);
        let given = vec!["price".to_string()];
        let ask = |scale, score, first, offered: bool, given: &[String]| {
            asks_for_reasons(scale, Some(score), first, offered, given)
        };
        assert_eq!(ask(Scale::Nps, "3", true, offered, &[]), Some(3));
        assert_eq!(ask(Scale::Csat, " 2 ", true, offered, &[]), Some(2));
        assert_eq!(ask(Scale::Nps, "7", true, offered, &[]), None, "not low");
        assert_eq!(ask(Scale::Nps, "3", false, offered, &[]), None, "API");
        assert_eq!(ask(Scale::Nps, "3", true, none, &[]), None, "no reasons");
        assert_eq!(ask(Scale::Nps, "3", true, offered, &given), None, "given");
        assert_eq!(ask(Scale::Csat, "0", true, offered, &[]), None, "off scale");
        assert_eq!(ask(Scale::Nps, "x", true, offered, &[]), None);
    }

    #[test]
    fn validates_scores_per_scale() {
        assert_eq!(
            validate_answer(Scale::Nps, Some("0"), None, &[]).unwrap().0,
            0
        );
        assert_eq!(
            validate_answer(Scale::Nps, Some("11"), None, &[])
                .map_err(crate::ApiError::from)
                .unwrap_err()
                .status,
            422
        );
        assert_eq!(
            validate_answer(Scale::Csat, Some("0"), None, &[])
                .map_err(crate::ApiError::from)
                .unwrap_err()
                .status,
            422
        );
        assert_eq!(
            validate_answer(Scale::Csat, Some("x"), None, &[])
                .map_err(crate::ApiError::from)
                .unwrap_err()
                .status,
            422
        );
        assert!(validate_answer(Scale::Csat, None, None, &[])
            .map_err(crate::ApiError::from)
            .unwrap_err()
            .message
            .contains("required"));
        let long = "é".repeat(2001);
        assert_eq!(
            validate_answer(Scale::Csat, Some("3"), Some(&long), &[])
                .map_err(crate::ApiError::from)
                .unwrap_err()
                .status,
            422
        );
        assert_eq!(
            validate_answer(Scale::Csat, Some("3"), Some("  "), &[])
                .unwrap()
                .1,
            None
        );
    }

    #[test]
    fn low_and_dropping() {
        assert_eq!(
            classify(&History::default(), Scale::Nps, 3),
            vec![TaskReason::LowScore]
        );
        assert_eq!(
            classify(&history(&[(Scale::Nps, 10)]), Scale::Nps, 7),
            vec![TaskReason::Dropping]
        );
        assert_eq!(
            classify(&history(&[(Scale::Nps, 9)]), Scale::Nps, 7),
            vec![]
        );
        assert_eq!(
            classify(&history(&[(Scale::Csat, 5)]), Scale::Csat, 2),
            vec![TaskReason::LowScore, TaskReason::Dropping]
        );
        // Other scales do not count for dropping.
        assert_eq!(
            classify(&history(&[(Scale::Nps, 10)]), Scale::Csat, 3),
            vec![]
        );
    }

    #[test]
    fn first_promoter_and_recovered() {
        assert_eq!(
            classify(&History::default(), Scale::Csat, 5),
            vec![TaskReason::FirstPromoter]
        );
        assert_eq!(
            classify(&history(&[(Scale::Csat, 5)]), Scale::Csat, 5),
            vec![]
        );
        assert_eq!(
            classify(&history(&[(Scale::Nps, 3)]), Scale::Csat, 4),
            vec![TaskReason::Recovered]
        );
        let mut h = history(&[(Scale::Csat, 4)]);
        h.complaints_since_satisfied = 1;
        assert_eq!(classify(&h, Scale::Nps, 9), vec![TaskReason::Recovered]);
    }

    #[test]
    fn complaints_count_repeats_by_topic() {
        let mut h = History::default();
        let c = |id: &str, topic: Option<&str>| ComplaintEntry {
            event_id: id.into(),
            at: "2026-12-01T00:00:00Z".parse().unwrap(),
            topic: topic.map(str::to_string),
        };
        assert_eq!(h.record_complaint(c("e1", Some("delivery_time"))), (0, 0));
        assert_eq!(h.record_complaint(c("e2", Some("packaging"))), (1, 0));
        assert_eq!(h.record_complaint(c("e3", Some("delivery_time"))), (2, 1));
        assert_eq!(
            h.record_complaint(c("e3", Some("delivery_time"))),
            (2, 1),
            "idempotent"
        );
        assert_eq!(h.complaints_since_satisfied, 3);
    }

    #[test]
    fn first_answer_wins_and_old_answers_go_only_when_no_link_can_be_open() {
        let mut h = History::default();
        for i in 0..30 {
            assert!(h.record(entry(&format!("s{i}"), Scale::Nps, 8)));
        }
        assert!(!h.record(entry("s29", Scale::Nps, 1)), "first answer wins");
        assert_eq!(h.answer_to("s29").unwrap().score, 8);
        assert_eq!(h.answers.len(), 30, "all answered within a year: all kept");
        assert!(h.record(entry_at("late", Scale::Nps, 9, "2028-01-01T00:00:00Z")));
        assert_eq!(h.answers.len(), HISTORY_LEN, "a year on, the oldest go");
        assert!(h.answer_to("s0").is_none());
        assert_eq!(h.before("late").answers.len(), HISTORY_LEN - 1);
        assert_eq!(h.before("s29").answers.last().unwrap().survey_id, "s28");
    }
}
