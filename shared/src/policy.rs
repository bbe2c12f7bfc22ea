//! The survey policy: which events plan which surveys, when, on which channels.
//! It is data (JSON in the `survey_policy` Spin variable), with defaults that
//! encode SPEC section 1; a policy that does not parse is refused with the path
//! of the bad field.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::event::{Category, Event};

use crate::model::derive_id;
use crate::model::EventType;
pub use crate::model::{Channel, Scale, SurveyKind};

/// One planning rule: on `on` (and `category`, if given) plan a `kind` survey
/// `delay_hours` later, sendable for `send_within_hours` after that.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRule {
    pub on: EventType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Category>,
    pub kind: SurveyKind,
    pub delay_hours: u32,
    pub send_within_hours: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SurveyPolicy {
    pub plans: Vec<PlanRule>,
    pub scales: BTreeMap<SurveyKind, Scale>,
    /// The channels a survey is sent on, all at once: each the customer has
    /// gets its own link (one contact; the first answer wins).
    pub channels: Vec<Channel>,
    /// How long a sent link can be answered.
    pub link_validity_days: u32,
    /// Calling hours, zones and contact limits: not part of this policy's JSON,
    /// but the one `contact_rules` every component shares (set by the loader).
    #[serde(skip)]
    pub contact: crate::contact::ContactRules,
    /// One reminder at most, on another channel, when nobody answered.
    #[serde(default = "default_reminder")]
    pub reminder: Option<ReminderRule>,
    /// Skip a survey when an inquiry, complaint or return is open for its order
    /// (checked at send time). Turn it off if answers ever go into public
    /// reviews: skipping unhappy customers there is review suppression.
    #[serde(default = "yes")]
    pub skip_on_open_case: bool,
    /// The short "did we fix it?" survey after a callback is resolved.
    #[serde(default = "default_resurvey")]
    pub resurvey: ResurveyRule,
    /// The reasons the survey page offers after a low score, per survey
    /// kind (ids: built-in ones are labelled in every language, see
    /// `i18n::REASON_IDS`; others need `reason_labels`). A kind with none
    /// asks for no reasons.
    #[serde(default = "default_low_score_reasons")]
    pub low_score_reasons: BTreeMap<SurveyKind, Vec<String>>,
    /// Labels of the policy's own reasons: id → language tag → text (`en`
    /// is the fallback).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reason_labels: BTreeMap<String, BTreeMap<String, String>>,
}

/// How many reasons a kind may offer (a short list is read; a long one is not).
pub const MAX_REASONS_PER_KIND: usize = 8;

/// The reasons offered after a low score when the policy names none.
fn default_low_score_reasons() -> BTreeMap<SurveyKind, Vec<String>> {
    use SurveyKind::*;
    let list = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    [
        (
            Product,
            list(&[
                "late_delivery",
                "damaged",
                "not_as_described",
                "hard_to_use",
                "price",
            ]),
        ),
        (
            Service,
            list(&[
                "not_fixed",
                "technician_late",
                "staff_attitude",
                "left_a_mess",
                "price",
            ]),
        ),
        (
            Usage,
            list(&["not_fixed", "broke_again", "hard_to_use", "not_working"]),
        ),
        (
            Installation,
            list(&[
                "not_working",
                "technician_late",
                "left_a_mess",
                "staff_attitude",
                "damaged",
            ]),
        ),
    ]
    .into_iter()
    .collect()
}

/// When the re-survey after a resolved callback goes out (always CSAT).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResurveyRule {
    pub kind: SurveyKind,
    pub delay_hours: u32,
    pub send_within_hours: u32,
}

/// When the one reminder goes out, and on which channels it may.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReminderRule {
    pub after_hours: u32,
    /// In order of preference; the first the survey was not sent on and the customer has.
    pub channels: Vec<Channel>,
}

fn default_reminder() -> Option<ReminderRule> {
    Some(ReminderRule {
        after_hours: 48,
        channels: vec![Channel::Sms, Channel::Whatsapp, Channel::Email],
    })
}

fn yes() -> bool {
    true
}

fn default_resurvey() -> ResurveyRule {
    ResurveyRule {
        kind: SurveyKind::Service,
        delay_hours: 24,
        send_within_hours: 72,
    }
}

impl Default for SurveyPolicy {
    fn default() -> SurveyPolicy {
        use EventType::*;
        use SurveyKind::*;
        let rule = |on, category, kind, delay_hours, send_within_hours| PlanRule {
            on,
            category,
            kind,
            delay_hours,
            send_within_hours,
        };
        SurveyPolicy {
            plans: vec![
                // Expensive goods: 3–7 days after delivery.
                rule(OrderDelivered, Some(Category::HighValue), Product, 72, 96),
                // On-site services: the same day (about 2 h after, sendable into the next day).
                rule(ServiceCompleted, None, Service, 2, 34),
                // Repairs: same-day service survey, usage survey within 7 days.
                rule(RepairCompleted, None, Service, 2, 34),
                rule(RepairCompleted, None, Usage, 72, 96),
                // Installations: the installation and the product separately.
                rule(InstallationCompleted, None, Installation, 2, 34),
                rule(InstallationCompleted, None, Product, 72, 96),
            ],
            scales: [
                (Service, Scale::Csat),
                (Usage, Scale::Csat),
                (Installation, Scale::Csat),
                (Product, Scale::Nps),
            ]
            .into_iter()
            .collect(),
            // Coverage (SPEC 1): every channel the customer has, at once; a
            // phone-only customer gets an SMS, a cross-border one all three.
            channels: vec![Channel::Sms, Channel::Whatsapp, Channel::Email],
            link_validity_days: 14,
            resurvey: default_resurvey(),
            skip_on_open_case: true,
            reminder: default_reminder(),
            contact: crate::contact::ContactRules::default(),
            low_score_reasons: default_low_score_reasons(),
            reason_labels: BTreeMap::new(),
        }
    }
}

/// A survey the policy plans for an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedSurvey {
    pub survey_id: String,
    pub kind: SurveyKind,
    pub scale: Scale,
    pub due_at: DateTime<Utc>,
    /// Past this, the survey is expired and never sent.
    pub send_by: DateTime<Utc>,
    /// The link can be answered until then.
    pub expires_at: DateTime<Utc>,
}

/// A policy as JSON (what `from_json` reads back).
pub fn to_json(p: &SurveyPolicy) -> String {
    serde_json::to_string(p).expect("a policy always serializes")
}

impl SurveyPolicy {
    /// Parse a policy; the error names the path of the bad field.
    pub fn from_json(text: &str) -> Result<SurveyPolicy, String> {
        let de = &mut serde_json::Deserializer::from_str(text);
        let policy: SurveyPolicy = serde_path_to_error::deserialize(de)
            .map_err(|e| format!("survey policy: at `{}`: {}", e.path(), e.inner()))?;
        policy.check()?;
        Ok(policy)
    }

    fn check(&self) -> Result<(), String> {
        for (i, p) in self.plans.iter().enumerate() {
            if !self.scales.contains_key(&p.kind) {
                return Err(format!(
                    "survey policy: at `plans[{i}].kind`: no scale is set for {:?} in `scales`",
                    p.kind
                ));
            }
            if p.send_within_hours == 0 {
                return Err(format!(
                    "survey policy: at `plans[{i}].send_within_hours`: must be at least 1"
                ));
            }
        }
        if self.channels.is_empty() {
            return Err("survey policy: at `channels`: give at least one channel".into());
        }
        for (kind, ids) in &self.low_score_reasons {
            let at = format!("survey policy: at `low_score_reasons.{}`", kind.as_str());
            if ids.len() > MAX_REASONS_PER_KIND {
                return Err(format!("{at}: at most {MAX_REASONS_PER_KIND} reasons"));
            }
            for id in ids {
                if !is_reason_id(id) {
                    return Err(format!(
                        "{at}: {id:?} is not a reason id (1 to 40 of a-z, 0-9 and _)"
                    ));
                }
                if crate::i18n::texts(crate::i18n::Lang::En)
                    .reason(id)
                    .is_none()
                    && !self
                        .reason_labels
                        .get(id)
                        .is_some_and(|l| l.contains_key("en"))
                {
                    return Err(format!(
                        "{at}: {id:?} has no built-in label; give it one in `reason_labels.{id}.en`"
                    ));
                }
            }
        }
        if !(1..=365).contains(&self.link_validity_days) {
            return Err(format!(
                "survey policy: at `link_validity_days`: from 1 to 365 days (got {})",
                self.link_validity_days
            ));
        }
        Ok(())
    }

    /// The surveys `event` plans. Ids derive from the event id and kind, so a
    /// repeated delivery plans the very same surveys.
    pub fn plan(&self, event: &Event) -> Vec<PlannedSurvey> {
        self.plans
            .iter()
            .filter(|r| {
                r.on == event.kind && (r.category.is_none() || r.category == event.category)
            })
            .map(|r| {
                let due_at = event.occurred_at + Duration::hours(r.delay_hours.into());
                let send_by = due_at + Duration::hours(r.send_within_hours.into());
                // One product survey per order (SPEC 1): whichever event plans
                // it (the delivery, the installation), it is the same survey.
                let survey_id = match (&event.order_id, r.kind) {
                    (Some(order), SurveyKind::Product) => derive_id("sv", &[order, "product"]),
                    _ => derive_id(
                        "sv",
                        &[&event.event_id, r.kind.as_str(), &r.delay_hours.to_string()],
                    ),
                };
                PlannedSurvey {
                    survey_id,
                    kind: r.kind,
                    scale: self.scales[&r.kind],
                    due_at,
                    send_by,
                    expires_at: send_by + Duration::days(self.link_validity_days.into()),
                }
            })
            .collect()
    }
}

/// A reason id: what the reports group by and the task's context carries.
fn is_reason_id(id: &str) -> bool {
    (1..=40).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The reasons part of the survey policy, as the survey page needs it: read
/// from the same `survey_policy` JSON without the rest of the policy (the
/// score receiver parses only this; `SurveyPolicy::from_json` checks it).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct LowScoreReasons {
    #[serde(default = "default_low_score_reasons")]
    pub low_score_reasons: BTreeMap<SurveyKind, Vec<String>>,
    #[serde(default)]
    pub reason_labels: BTreeMap<String, BTreeMap<String, String>>,
}

impl LowScoreReasons {
    /// The reasons of a survey policy's JSON (none given: the defaults); a
    /// policy that does not parse offers none (the page still takes answers).
    pub fn from_policy_json(text: Option<&str>) -> LowScoreReasons {
        match text {
            None => serde_json::from_slice(b"{}").expect("defaults parse"),
            Some(t) => serde_json::from_slice(t.as_bytes()).unwrap_or_default(),
        }
    }

    /// The reasons the page offers after a low score on a `kind` survey.
    pub fn reasons_for(&self, kind: SurveyKind) -> &[String] {
        self.low_score_reasons
            .get(&kind)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Whether `id` is one of the reasons the policy offers (for any kind).
    pub fn offers_reason(&self, id: &str) -> bool {
        self.low_score_reasons.values().flatten().any(|r| r == id)
    }

    /// Every reason the policy offers, each once, in the policy's order.
    pub fn all_reasons(&self) -> Vec<&str> {
        let mut all: Vec<&str> = Vec::new();
        for id in self.low_score_reasons.values().flatten() {
            if !all.contains(&id.as_str()) {
                all.push(id);
            }
        }
        all
    }

    /// A reason's label in `lang`: the policy's own, the built-in one, the
    /// policy's English one, or the id itself.
    pub fn reason_label(&self, lang: crate::i18n::Lang, id: &str) -> String {
        let own = self.reason_labels.get(id);
        own.and_then(|l| l.get(lang.tag()))
            .map(String::as_str)
            .or_else(|| crate::i18n::texts(lang).reason(id))
            .or_else(|| own.and_then(|l| l.get("en")).map(String::as_str))
            .unwrap_or(id)
            .to_string()
    }
}

impl SurveyPolicy {
    /// The policy's reasons after a low score.
    pub fn reasons(&self) -> LowScoreReasons {
        LowScoreReasons {
            low_score_reasons: self.low_score_reasons.clone(),
            reason_labels: self.reason_labels.clone(),
        }
    }
}

impl SurveyPolicy {
    /// The re-survey after the `resolution`-th resolution of a task.
    pub fn plan_resurvey(
        &self,
        task_id: &str,
        resolution: u32,
        now: DateTime<Utc>,
    ) -> PlannedSurvey {
        let r = &self.resurvey;
        let due_at = now + Duration::hours(r.delay_hours.into());
        let send_by = due_at + Duration::hours(r.send_within_hours.into());
        PlannedSurvey {
            survey_id: derive_id("sv", &[task_id, "resurvey", &resolution.to_string()]),
            kind: r.kind,
            scale: Scale::Csat,
            due_at,
            send_by,
            expires_at: send_by + Duration::days(self.link_validity_days.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Customer;
    use proptest::prelude::*;

    // The policy fuzz target's property (`./run fuzz` searches deeper).
    proptest! {
        #[test]
        fn any_text_is_a_policy_that_round_trips_or_an_error(
            text in prop_oneof![".{0,200}", "\\{\"plans\":\\[.{0,120}\\]\\}"],
        ) {
            if let Ok(policy) = SurveyPolicy::from_json(&text) {
                let again = SurveyPolicy::from_json(&to_json(&policy)).expect("a parsed policy re-parses");
                prop_assert_eq!(again.plans, policy.plans);
            }
            let _ = crate::contact::ContactRules::from_json(&text);
        }
    }

    fn event(kind: EventType, category: Option<Category>) -> Event {
        Event {
            event_id: "e1".into(),
            kind,
            occurred_at: "2026-12-01T09:00:00Z".parse().unwrap(),
            order_id: Some("o1".into()),
            customer: Customer {
                id: "c1".into(),
                ..Default::default()
            },
            category,
            agent_id: None,
            work_order_id: Some("w1".into()),
            promised_at: None,
            amount: None,
            topic: None,
        }
    }

    #[test]
    fn high_value_delivery_is_due_three_days_later() {
        let p = SurveyPolicy::default();
        let plan = p.plan(&event(EventType::OrderDelivered, Some(Category::HighValue)));
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].kind, SurveyKind::Product);
        assert_eq!(plan[0].scale, Scale::Nps);
        assert_eq!(plan[0].due_at.to_rfc3339(), "2026-12-04T09:00:00+00:00");
        assert_eq!(plan[0].send_by.to_rfc3339(), "2026-12-08T09:00:00+00:00");
        assert!(p
            .plan(&event(EventType::OrderDelivered, Some(Category::Standard)))
            .is_empty());
    }

    #[test]
    fn repair_plans_two_surveys_with_distinct_ids() {
        let plan = SurveyPolicy::default().plan(&event(EventType::RepairCompleted, None));
        assert_eq!(plan.len(), 2);
        assert_ne!(plan[0].survey_id, plan[1].survey_id);
        assert_eq!(
            plan,
            SurveyPolicy::default().plan(&event(EventType::RepairCompleted, None))
        );
    }

    #[test]
    fn policy_roundtrips_and_bad_fields_are_named() {
        let text = serde_json::to_string(&SurveyPolicy::default()).unwrap();
        assert_eq!(
            SurveyPolicy::from_json(&text).unwrap(),
            SurveyPolicy::default()
        );
        let bad = text.replacen("\"delay_hours\":72", "\"delay_hours\":\"soon\"", 1);
        let err = SurveyPolicy::from_json(&bad).unwrap_err();
        assert!(err.contains("plans[0].delay_hours"), "{err}");
    }

    #[test]
    fn low_score_reasons_are_policy_data_with_labels() {
        use crate::i18n::Lang;
        let p = SurveyPolicy::default().reasons();
        assert_eq!(p, LowScoreReasons::from_policy_json(None));
        assert!(p
            .reasons_for(SurveyKind::Service)
            .contains(&"not_fixed".to_string()));
        assert_eq!(
            p.reason_label(Lang::De, "damaged"),
            "Beschädigt oder defekt"
        );
        let own = r#"{"plans":[],"scales":{},"channels":["sms"],"link_validity_days":14,
            "low_score_reasons":{"product":["box_crushed","damaged"]},
            "reason_labels":{"box_crushed":{"en":"Box crushed","es":"Caja aplastada"}}}"#;
        let p = SurveyPolicy::from_json(own).unwrap().reasons();
        assert_eq!(
            p,
            LowScoreReasons::from_policy_json(Some(own)),
            "the page's view"
        );
        assert_eq!(p.reason_label(Lang::Es, "box_crushed"), "Caja aplastada");
        assert_eq!(p.reason_label(Lang::Ja, "box_crushed"), "Box crushed");
        assert_eq!(p.reason_label(Lang::Ja, "damaged"), "破損・不良");
        assert!(p.reasons_for(SurveyKind::Service).is_empty());
        assert!(p.offers_reason("box_crushed") && !p.offers_reason("price"));
        let unlabelled = own.replace(r#""en":"Box crushed","#, "");
        let err = SurveyPolicy::from_json(&unlabelled).unwrap_err();
        assert!(err.contains("reason_labels.box_crushed.en"), "{err}");
        let bad = own.replace("box_crushed\",\"damaged", "Box Crushed\",\"damaged");
        let err = SurveyPolicy::from_json(&bad).unwrap_err();
        assert!(err.contains("low_score_reasons.product"), "{err}");
    }

    #[test]
    fn scales() {
        assert!(Scale::Nps.is_low(6) && !Scale::Nps.is_low(7));
        assert!(Scale::Csat.is_low(2) && !Scale::Csat.is_low(3));
        assert!(Scale::Nps.range().contains(&0) && !Scale::Csat.range().contains(&0));
    }
}
