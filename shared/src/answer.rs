//! A customer's answer to a survey: validation, and what it means (low,
//! dropping, first top score, recovered) against the customer's history.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::policy::{Channel, Scale, SurveyKind};
use crate::task::TaskReason;

pub const MAX_COMMENT_CHARS: usize = 2000;
const MAX_REASONS: usize = 10;
const MAX_REASON_CHARS: usize = 40;
/// How many past answers a customer's history keeps at least…
const HISTORY_LEN: usize = 20;
/// …and for how long every answer is kept: longer than any survey link can
/// live (policies cap `link_validity_days` at 365).
pub const KEEP_ANSWERS_DAYS: i64 = 366;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub survey_id: String,
    pub channel: Channel,
    pub kind: SurveyKind,
    pub scale: Scale,
    pub score: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default)]
    pub reasons: Vec<String>,
    pub answered_at: DateTime<Utc>,
}

/// Validate the submitted fields for `scale`; 422 with what is allowed otherwise.
pub fn validate_answer(
    scale: Scale,
    score: Option<&str>,
    comment: Option<&str>,
    reasons: &[String],
) -> Result<(u8, Option<String>, Vec<String>), ApiError> {
    let range = scale.range();
    let Some(raw) = score.map(str::trim).filter(|s| !s.is_empty()) else {
        return Err(ApiError::unprocessable(format!(
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
            ApiError::unprocessable(format!(
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
            return Err(ApiError::unprocessable(format!(
                "comment is limited to {MAX_COMMENT_CHARS} characters"
            )));
        }
    }
    if reasons.len() > MAX_REASONS || reasons.iter().any(|r| r.chars().count() > MAX_REASON_CHARS) {
        return Err(ApiError::unprocessable(format!(
            "reasons: at most {MAX_REASONS} tags of at most {MAX_REASON_CHARS} characters"
        )));
    }
    Ok((score, comment, reasons.to_vec()))
}

/// A customer's answers and complaints. It is also where an answer is
/// recorded: one compare-and-swap on this record decides "first answer wins"
/// for the survey *and* updates the history the next answer is judged against,
/// so the two can never disagree (and the answer path saves a round trip).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// Oldest first.
    #[serde(default)]
    pub answers: Vec<Answer>,
    /// Complaints opened since the customer's last satisfied answer.
    #[serde(default)]
    pub complaints_since_satisfied: u32,
    /// Complaints opened (most recent last, bounded), with their topic if given.
    #[serde(default)]
    pub complaints: Vec<ComplaintEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplaintEntry {
    pub event_id: String,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

impl History {
    /// The answer recorded for `survey_id`, if any.
    pub fn answer_to(&self, survey_id: &str) -> Option<&Answer> {
        self.answers.iter().find(|a| a.survey_id == survey_id)
    }

    /// The history as it was just before `survey_id` was answered (what that
    /// answer was judged against).
    pub fn before(&self, survey_id: &str) -> History {
        let mut h = self.clone();
        if let Some(i) = h.answers.iter().position(|a| a.survey_id == survey_id) {
            h.answers.truncate(i);
        }
        h
    }

    /// Record an answer. `false` when the survey already has one: the first
    /// answer wins. Old answers are forgotten only past [`HISTORY_LEN`] *and*
    /// [`KEEP_ANSWERS_DAYS`], so a link can never be answered twice while valid.
    pub fn record(&mut self, answer: Answer) -> bool {
        if self.answer_to(&answer.survey_id).is_some() {
            return false;
        }
        if answer.scale.is_satisfied(answer.score) {
            self.complaints_since_satisfied = 0;
        }
        let keep_from = answer.answered_at - chrono::Duration::days(KEEP_ANSWERS_DAYS);
        self.answers.push(answer);
        while self.answers.len() > HISTORY_LEN && self.answers[0].answered_at < keep_from {
            self.answers.remove(0);
        }
        true
    }
}

impl History {
    /// Record a complaint (idempotent per event); returns how many complaints the
    /// customer had opened before it, and how many of those were about the same topic.
    pub fn record_complaint(&mut self, entry: ComplaintEntry) -> (u32, u32) {
        let before: Vec<&ComplaintEntry> = self
            .complaints
            .iter()
            .filter(|c| c.event_id != entry.event_id)
            .collect();
        let prior = before.len() as u32;
        let same_topic = match &entry.topic {
            Some(t) => before
                .iter()
                .filter(|c| c.topic.as_deref() == Some(t.as_str()))
                .count() as u32,
            None => 0,
        };
        if !self.complaints.iter().any(|c| c.event_id == entry.event_id) {
            self.complaints_since_satisfied += 1;
            self.complaints.push(entry);
            if self.complaints.len() > HISTORY_LEN {
                self.complaints.remove(0);
            }
        }
        (prior, same_topic)
    }
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
    fn validates_scores_per_scale() {
        assert_eq!(
            validate_answer(Scale::Nps, Some("0"), None, &[]).unwrap().0,
            0
        );
        assert_eq!(
            validate_answer(Scale::Nps, Some("11"), None, &[])
                .unwrap_err()
                .status,
            422
        );
        assert_eq!(
            validate_answer(Scale::Csat, Some("0"), None, &[])
                .unwrap_err()
                .status,
            422
        );
        assert_eq!(
            validate_answer(Scale::Csat, Some("x"), None, &[])
                .unwrap_err()
                .status,
            422
        );
        assert!(validate_answer(Scale::Csat, None, None, &[])
            .unwrap_err()
            .message
            .contains("required"));
        let long = "é".repeat(2001);
        assert_eq!(
            validate_answer(Scale::Csat, Some("3"), Some(&long), &[])
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
