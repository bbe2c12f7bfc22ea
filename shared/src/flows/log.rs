//! The append-only logs whose entries count only once another record
//! confirms them (the answer log: the customer's history; the task log: the
//! customer's callbacks): numbering and writing an entry, voiding one, and
//! reading one back. The folds that judge them are `answer_log` and `task_log`.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::storage::{Storage, StoreResult};

/// An entry that will never be confirmed: its number was taken and writing
/// it failed, or its writer went another way. A fold skips it at once
/// instead of waiting for its writer.
const VOID: &[u8] = b"\"void\"";

/// Log `entry` under the next number of the counter at `head` (in the slot
/// `slot(n)`); the number, for the confirming record to carry.
pub fn append<S: Storage + ?Sized, T: Serialize>(
    store: &S,
    head: &str,
    slot: fn(u64) -> String,
    entry: &T,
) -> StoreResult<u64> {
    let seq = store.increment(head, 1)? as u64;
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
