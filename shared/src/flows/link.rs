//! Opening a survey link (`GET|POST /s/:token`), with the limits on guessing
//! links from one network and on posting to one link in vain.

use chrono::{DateTime, Utc};

use crate::keys;
use crate::model::Survey;
use crate::rate::{minute, LINK_REJECTIONS_PER_MINUTE, NETWORK_FAILURES_PER_MINUTE};
use crate::signing::LinkToken;
use crate::storage::{decode_counter, Storage, StoreResult};

/// What a link leads to.
#[derive(Debug)]
pub enum LinkOpen {
    /// The survey; posts to it that recorded nothing are counted at
    /// `rejections_key` (`rejections` so far this minute).
    Open {
        survey: Survey,
        rejections_key: String,
        rejections: i64,
    },
    /// A forged, mangled or unknown link (404), counted against the network.
    NotFound,
    /// The network failed too often this minute, or the link was posted to in
    /// vain too often (429).
    TooMany,
}

/// Open the link whose token decoded to `token` (`None`: it did not) for a
/// client of `network` at `now`: one batch read when all is well (the
/// survey, the link's rejections); a forged token counts against the network,
/// and past `NETWORK_FAILURES_PER_MINUTE` its forged tokens get `TooMany`.
pub fn open_link<S: Storage + ?Sized>(
    store: &S,
    token: Option<&LinkToken>,
    network: &str,
    now: DateTime<Utc>,
) -> StoreResult<LinkOpen> {
    let failures_key = keys::rate(&format!("net/{network}"), &minute(now));
    let Some(token) = token else {
        // A forged or mangled token: one increment both counts and checks.
        return Ok(
            match crate::flows::attempts::count(store, &failures_key, now) {
                Ok(n) if n > NETWORK_FAILURES_PER_MINUTE => LinkOpen::TooMany,
                _ => LinkOpen::NotFound,
            },
        );
    };
    // A genuinely signed token is never refused for its network's failures:
    // behind a carrier's NAT, one guesser must not lock out every customer.
    let rejections_key = keys::rate(&format!("link/{}", token.survey_id), &minute(now));
    let read = store.get_many(&[keys::survey(&token.survey_id), rejections_key.clone()])?;
    let counter = |v: &Option<Vec<u8>>| v.as_deref().map(decode_counter).unwrap_or(0);
    let Some(survey) = read[0]
        .as_deref()
        .and_then(|b| serde_json::from_slice::<Survey>(b).ok())
    else {
        let _ = crate::flows::attempts::count(store, &failures_key, now);
        return Ok(LinkOpen::NotFound);
    };
    Ok(LinkOpen::Open {
        survey,
        rejections_key,
        rejections: counter(&read[1]),
    })
}

/// Whether a link already refused too many posts this minute.
pub fn too_many_rejections(rejections: i64) -> bool {
    rejections >= LINK_REJECTIONS_PER_MINUTE
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStorage;

    #[test]
    fn guessing_from_one_network_is_stopped_after_thirty_a_minute() {
        let s = MemoryStorage::new();
        let now: DateTime<Utc> = "2026-12-04T10:00:00Z".parse().unwrap();
        for _ in 0..NETWORK_FAILURES_PER_MINUTE {
            assert!(matches!(
                open_link(&s, None, "net_a", now).unwrap(),
                LinkOpen::NotFound
            ));
        }
        assert!(matches!(
            open_link(&s, None, "net_a", now).unwrap(),
            LinkOpen::TooMany
        ));
        assert!(matches!(
            open_link(&s, None, "net_b", now).unwrap(),
            LinkOpen::NotFound
        ));
        let next_minute = now + chrono::Duration::minutes(1);
        assert!(matches!(
            open_link(&s, None, "net_a", next_minute).unwrap(),
            LinkOpen::NotFound
        ));
    }
}
