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
pub mod calling_hours;
pub mod error;
pub mod event;
pub mod i18n;
pub mod keys;
pub mod policy;
pub mod report;
pub mod signing;
pub mod storage;
pub mod survey;
pub mod task;
pub mod window;

#[cfg(feature = "spin")]
pub mod spin;

pub use error::ApiError;
