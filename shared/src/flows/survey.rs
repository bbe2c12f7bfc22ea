//! Creating a survey and putting it in the issuer's due index.

use chrono::{DateTime, Utc};

use crate::keys;
use crate::model::Survey;
use crate::storage::{Storage, StorageExt, StoreResult};

/// Put a survey id into the log of the hour bucket of `at`, where the
/// issuer's tick will find it.
pub fn index_due<S: Storage + ?Sized>(
    store: &S,
    survey_id: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    store.append_to_log(&keys::due_log(&keys::hour_bucket(at)), survey_id)
}

/// Create a survey exactly once and index it; `false` if it already existed.
/// A marker written after indexing lets a retry tell whether an earlier
/// attempt stopped between creating and indexing, and finish it.
pub fn create_survey<S: Storage + ?Sized>(store: &S, survey: &Survey) -> StoreResult<bool> {
    let created = store.create_json(&keys::survey(&survey.survey_id), survey)?;
    if created
        || store
            .get(&keys::survey_indexed(&survey.survey_id))?
            .is_none()
    {
        index_due(store, &survey.survey_id, survey.next_attempt_at)?;
        store.set(&keys::survey_indexed(&survey.survey_id), b"1")?;
    }
    Ok(created)
}
