//! Opening a survey link (`GET|POST /s/:token`), with the limits on guessing
//! links from one network and on posting to one link in vain.

use chrono::{DateTime, Utc};

use crate::keys;
use crate::model::Survey;
use crate::rate::{minute, network_of, LINK_REJECTIONS_PER_MINUTE, NETWORK_FAILURES_PER_MINUTE};
use crate::signing::LinkToken;
use crate::storage::{Storage, StoreResult};

/// What a link leads to.
#[derive(Debug)]
pub enum LinkOpen {
    /// The survey.
    Open { survey: Survey },
    /// A forged, mangled or unknown link (404), counted against the network.
    NotFound,
    /// The network failed too often this minute (429).
    TooMany,
}

/// Open the link whose token decoded to `token` (`None`: it did not) for a
/// client at address `client` (`ip:port`) at `now`: one read when all is
/// well (the survey); a forged token counts against the client's network
/// (`rate::network_of`, worked out only then), and past
/// `NETWORK_FAILURES_PER_MINUTE` its forged tokens get `TooMany`.
pub fn open_link<S: Storage + ?Sized>(
    store: &S,
    token: Option<&LinkToken>,
    client: &str,
    now: DateTime<Utc>,
) -> StoreResult<LinkOpen> {
    let failures_key = || keys::rate(&format!("net/{}", network_of(client)), &minute(now));
    let Some(token) = token else {
        // A forged or mangled token: one increment both counts and checks.
        return Ok(
            match crate::flows::attempts::count(store, &failures_key(), now) {
                Ok(n) if n > NETWORK_FAILURES_PER_MINUTE => LinkOpen::TooMany,
                _ => LinkOpen::NotFound,
            },
        );
    };
    // A genuinely signed token is never refused for its network's failures:
    // behind a carrier's NAT, one guesser must not lock out every customer.
    let stored = store.get(&keys::survey(&token.survey_id))?;
    let Some(survey) = stored.and_then(|b| serde_json::from_slice::<Survey>(&b).ok()) else {
        let _ = crate::flows::attempts::count(store, &failures_key(), now);
        return Ok(LinkOpen::NotFound);
    };
    Ok(LinkOpen::Open { survey })
}

/// Count a post to `survey_id`'s link that recorded nothing (the survey was
/// answered before, the answer is invalid) at `now`; whether the link is now
/// past [`LINK_REJECTIONS_PER_MINUTE`], and the post is to be refused (429)
/// instead of answered. Only such posts pay for the count: an answer never
/// reads it. A count that cannot be made refuses nothing.
pub fn refuse_after_rejection<S: Storage + ?Sized>(
    store: &S,
    survey_id: &str,
    now: DateTime<Utc>,
) -> bool {
    let key = keys::rate(&format!("link/{survey_id}"), &minute(now));
    crate::flows::attempts::count(store, &key, now).is_ok_and(|n| n > LINK_REJECTIONS_PER_MINUTE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStorage;

    #[test]
    fn a_link_posted_to_in_vain_is_refused_after_sixty_a_minute() {
        let s = MemoryStorage::new();
        let now: DateTime<Utc> = "2026-12-04T10:00:00Z".parse().unwrap();
        for n in 1..=LINK_REJECTIONS_PER_MINUTE {
            assert!(!refuse_after_rejection(&s, "sv_1", now), "rejection {n}");
        }
        assert!(refuse_after_rejection(&s, "sv_1", now));
        assert!(!refuse_after_rejection(&s, "sv_2", now), "another link");
        let next_minute = now + chrono::Duration::minutes(1);
        assert!(!refuse_after_rejection(&s, "sv_1", next_minute));
    }

    #[test]
    fn guessing_from_one_network_is_stopped_after_thirty_a_minute() {
        let s = MemoryStorage::new();
        let now: DateTime<Utc> = "2026-12-04T10:00:00Z".parse().unwrap();
        for _ in 0..NETWORK_FAILURES_PER_MINUTE {
            assert!(matches!(
                open_link(&s, None, "10.0.1.5:40000", now).unwrap(),
                LinkOpen::NotFound
            ));
        }
        // Another address of the same /24 is the same network.
        assert!(matches!(
            open_link(&s, None, "10.0.1.77:51000", now).unwrap(),
            LinkOpen::TooMany
        ));
        assert!(matches!(
            open_link(&s, None, "10.0.2.5:40000", now).unwrap(),
            LinkOpen::NotFound
        ));
        let next_minute = now + chrono::Duration::minutes(1);
        assert!(matches!(
            open_link(&s, None, "10.0.1.5:40000", next_minute).unwrap(),
            LinkOpen::NotFound
        ));
    }
}
