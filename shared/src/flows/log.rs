//! The append-only logs whose entries count only once another record
//! confirms them (the answer log: the customer's history; the task log: the
//! customer's callbacks): numbering and writing an entry, voiding one,
//! reading the entries after a fold's cursor, and moving the cursor past
//! them. The folds that judge them are `answer_log` and `task_log`.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::answer_log::FoldCursor;
use crate::keys;
use crate::storage::{Storage, StorageExt, StoreResult, Update};

/// Where one log keeps its counter, its entries and its fold's cursor.
pub struct LogKeys {
    pub head: &'static str,
    pub slot: fn(u64) -> String,
    pub fold: &'static str,
}

pub const ANSWERS: LogKeys = LogKeys {
    head: keys::ANSWER_LOG_HEAD,
    slot: keys::answer_log,
    fold: keys::ANSWER_LOG_FOLD,
};

pub const TASKS: LogKeys = LogKeys {
    head: keys::TASK_LOG_HEAD,
    slot: keys::task_log,
    fold: keys::TASK_LOG_FOLD,
};

/// An entry that will never be confirmed: its number was taken and writing
/// it failed, or its writer went another way. A fold skips it at once
/// instead of waiting for its writer.
const VOID: &[u8] = b"\"void\"";

/// Log `entry` under the next number of the counter at `head` (in the slot
/// `slot(n)`); the number, for the confirming record to carry.
pub fn append<S: Storage + ?Sized, T: Serialize>(
    store: &S,
    log: &LogKeys,
    entry: &T,
) -> StoreResult<u64> {
    let slot = log.slot;
    let seq = store.increment(log.head, 1)? as u64;
    let bytes = serde_json::to_vec(entry).expect("log entries serialize");
    if let Err(e) = store.set(&slot(seq), &bytes) {
        // Best effort: if this fails too, the fold waits out ORPHAN_AFTER.
        let _ = void(store, &slot(seq));
        return Err(e);
    }
    Ok(seq)
}

/// Mark the entry in `slot` as never to be confirmed.
pub fn void<S: Storage + ?Sized>(store: &S, slot: &str) -> StoreResult<()> {
    store.set(slot, VOID)
}

/// An entry as read: `None` when absent, `Some(None)` when void. One that
/// does not parse counts as void: it can never be confirmed.
pub fn parse_entry<T: DeserializeOwned>(bytes: Option<Vec<u8>>) -> Option<Option<T>> {
    let bytes = bytes?;
    if bytes == VOID {
        return Some(None);
    }
    Some(serde_json::from_slice(&bytes).ok())
}

/// The fold's cursor and the log's head, in one read.
pub fn cursor_and_head<S: Storage + ?Sized>(
    store: &S,
    log: &LogKeys,
) -> StoreResult<(FoldCursor, u64)> {
    let read = store.get_many(&[log.fold.into(), log.head.into()])?;
    let cursor = read[0]
        .as_deref()
        .and_then(|b| serde_json::from_slice(b).ok())
        .unwrap_or_default();
    let head = read[1]
        .as_deref()
        .map(crate::storage::decode_counter)
        .unwrap_or(0);
    Ok((cursor, head.max(0) as u64))
}

/// The entries after the fold's cursor, up to the log's head and at most
/// `most` of them (one batch read), each as [`parse_entry`] reads it.
pub fn entries_after<S: Storage + ?Sized, T: DeserializeOwned>(
    store: &S,
    log: &LogKeys,
    (cursor, head): (&FoldCursor, u64),
    most: u64,
) -> StoreResult<Vec<(u64, Option<Option<T>>)>> {
    let seqs: Vec<u64> = (cursor.folded + 1..=head.min(cursor.folded + most)).collect();
    if seqs.is_empty() {
        return Ok(Vec::new());
    }
    let slots: Vec<String> = seqs.iter().map(|s| (log.slot)(*s)).collect();
    Ok(seqs
        .into_iter()
        .zip(store.get_many(&slots)?.into_iter().map(parse_entry))
        .collect())
}

/// Move the fold's cursor from `from` to `folded` (noting the entry it
/// waits for, if one is `missing`), then delete the entries it passed: they
/// are not read again. (A fold that stops before the deletes leaves a few
/// behind: harmless, never counted twice.)
pub fn advance<S: Storage + ?Sized>(
    store: &S,
    log: &LogKeys,
    (from, folded): (u64, u64),
    missing: Option<(u64, DateTime<Utc>)>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    store.update_json::<FoldCursor, _>(log.fold, |current| {
        let mut next = current.unwrap_or_default();
        next.advance(folded, missing, now);
        Update::Write(next)
    })?;
    for seq in from + 1..=folded {
        store.delete(&(log.slot)(seq))?;
    }
    Ok(())
}
