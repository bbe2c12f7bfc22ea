//! Revisit's domain, shared by the four components.
//!
//! The rules are plain functions of (state, input, now) that return decisions
//! ([`policy::SurveyPolicy::plan`], [`survey::decide_send`], [`answer::classify`],
//! [`task::plan_task`], [`task::apply_outcome`], [`window::check_window`], ...).
//! They do no I/O, so they are tested natively with any clock. Components parse
//! HTTP, do key-value I/O through [`storage::Storage`], and render.
//!
//! With the `spin` feature, [`spin`] adds the `wasi:keyvalue` storage and the
//! small HTTP glue every component uses.

pub mod answer;
pub mod answer_log;
pub mod calling_hours;
pub mod contact;
pub mod date_text;
pub mod error;
pub mod event;
pub mod findings;
pub mod flows;
pub mod holidays;
pub mod i18n;
pub mod integrity;
pub mod keys;
pub mod market;
pub mod message;
pub mod model;
pub mod phone;
pub mod policy;
pub mod providers;
pub mod rate;
pub mod report;
pub mod routes;
pub mod shops;
pub mod signing;
pub mod sms;
pub mod storage;
pub mod survey;
pub mod task;
pub mod webhooks;
pub mod window;
pub mod zone;

#[cfg(feature = "spin")]
pub mod spin;

pub use error::ApiError;

/// The contact rules from their JSON text, or the defaults when there are none.
pub fn contact_rules_or_default(text: Option<&str>) -> Result<contact::ContactRules, ApiError> {
    match text {
        None => Ok(contact::ContactRules::default()),
        Some(t) => contact::ContactRules::from_json(t).map_err(ApiError::internal),
    }
}

/// The survey policy from its JSON text, or the defaults when there is none.
/// A policy that does not parse is refused, naming the bad field.
pub fn survey_policy_or_default(text: Option<&str>) -> Result<policy::SurveyPolicy, ApiError> {
    match text {
        None => Ok(policy::SurveyPolicy::default()),
        Some(t) => policy::SurveyPolicy::from_json(t).map_err(ApiError::internal),
    }
}

/// The escalation policy from its JSON text, or the defaults when there is none.
pub fn escalation_policy_or_default(
    text: Option<&str>,
) -> Result<task::EscalationPolicy, ApiError> {
    match text {
        None => Ok(task::EscalationPolicy::default()),
        Some(t) => {
            let de = &mut serde_json::Deserializer::from_str(t);
            let policy: task::EscalationPolicy =
                serde_path_to_error::deserialize(de).map_err(|e| {
                    ApiError::internal(format!(
                        "escalation policy: at `{}`: {}",
                        e.path(),
                        e.inner()
                    ))
                })?;
            policy.check().map_err(ApiError::internal)?;
            Ok(policy)
        }
    }
}
