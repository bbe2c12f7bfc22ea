//! Failed credentials, counted per network and minute: past
//! `rate::AUTH_FAILURES_PER_MINUTE` every credential from that network is
//! refused until the minute is over. A key per minute: old ones are never
//! read again.

use chrono::{DateTime, Utc};

use crate::keys;
use crate::rate::{minute, AUTH_FAILURES_PER_MINUTE};
use crate::storage::{Storage, StorageExt, StoreResult};

fn key(network: &str, now: DateTime<Utc>) -> String {
    keys::rate(&format!("auth/{network}"), &minute(now))
}

/// Whether `network` failed too often this minute (one read).
pub fn blocked<S: Storage + ?Sized>(
    store: &S,
    network: &str,
    now: DateTime<Utc>,
) -> StoreResult<bool> {
    Ok(store.counter(&key(network, now))? >= AUTH_FAILURES_PER_MINUTE)
}

/// Count one failed credential from `network` (one increment).
pub fn failed<S: Storage + ?Sized>(
    store: &S,
    network: &str,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    store.increment(&key(network, now), 1).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{KvMode, MemoryStorage};

    #[test]
    fn twenty_failures_block_the_network_for_the_minute() {
        for mode in KvMode::ALL {
            let s = MemoryStorage::in_memory_like(mode);
            let now: DateTime<Utc> = "2026-12-01T10:00:10Z".parse().unwrap();
            for _ in 0..AUTH_FAILURES_PER_MINUTE {
                assert!(!blocked(&s, "net_a", now).unwrap());
                failed(&s, "net_a", now).unwrap();
            }
            assert!(blocked(&s, "net_a", now).unwrap(), "{mode:?}");
            assert!(!blocked(&s, "net_b", now).unwrap(), "another network");
            assert!(
                !blocked(&s, "net_a", now + chrono::Duration::minutes(1)).unwrap(),
                "the next minute"
            );
        }
    }
}
