//! Rate counters: failed credentials per network and minute (past
//! `rate::AUTH_FAILURES_PER_MINUTE` every credential from that network is
//! refused until the minute is over), and the counting every rate limit
//! shares: a key per minute, noted in its hour's log when first counted, so
//! that [`sweep`] deletes it once it can matter no more.

use chrono::{DateTime, Duration, Utc};

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
    count(store, &key(network, now), now).map(drop)
}

/// Add one to the rate counter `key` (a per-minute key); the first count
/// notes it in the hour's log, where [`sweep`] finds it. The new count.
pub fn count<S: Storage + ?Sized>(store: &S, key: &str, now: DateTime<Utc>) -> StoreResult<i64> {
    let n = store.increment(key, 1)?;
    if n == 1 {
        store.append_to_log(&keys::rate_log(&keys::hour_bucket(now)), key)?;
    }
    Ok(n)
}

/// How long a rate counter is kept after its hour.
const KEEP_HOURS: i64 = 2;

/// Delete the rate counters of the hours that ended more than two hours ago
/// (and their logs), at most a day of them per call; the number deleted.
pub fn sweep<S: Storage + ?Sized>(store: &S, now: DateTime<Utc>) -> StoreResult<usize> {
    let until = now - Duration::hours(KEEP_HOURS);
    let oldest = until - Duration::hours(24);
    let mut t = store
        .get_json::<DateTime<Utc>>(keys::RATE_SWEEP_CURSOR)?
        .unwrap_or(oldest)
        .max(oldest);
    let mut deleted = 0;
    while keys::hour_bucket(t) < keys::hour_bucket(until) {
        let log = keys::rate_log(&keys::hour_bucket(t));
        for key in store.read_logs(std::slice::from_ref(&log))? {
            store.delete(&key)?;
            deleted += 1;
        }
        store.delete_log(&log)?;
        t += Duration::hours(1);
    }
    store.put_json(keys::RATE_SWEEP_CURSOR, &t)?;
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{KvMode, MemoryStorage};

    #[test]
    fn twenty_failures_block_the_network_for_the_minute_and_no_counter_lives_forever() {
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
                !blocked(&s, "net_a", now + Duration::minutes(1)).unwrap(),
                "the next minute"
            );
            // Swept once its hour is two hours past.
            assert_eq!(
                sweep(&s, now + Duration::hours(1)).unwrap(),
                0,
                "{mode:?}: too soon"
            );
            assert_eq!(sweep(&s, now + Duration::hours(3)).unwrap(), 1, "{mode:?}");
            let left: Vec<String> = s
                .keys()
                .into_iter()
                .filter(|k| k.starts_with("rl/") || k.starts_with("lg/rate/"))
                .collect();
            assert!(left.is_empty(), "{mode:?}: {left:?}");
        }
    }
}
