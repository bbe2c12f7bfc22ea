//! The one small storage trait components do all key-value I/O through, typed
//! helpers over it, and an in-memory implementation for native tests.
//!
//! The trait mirrors `wasi:keyvalue` (store, atomics, batch) so the wasm
//! implementation is a thin pass-through; race-prone writes go through
//! [`Storage::increment`] or the compare-and-swap pair.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::de::DeserializeOwned;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

pub type StoreResult<T> = Result<T, StoreError>;

pub trait Storage {
    /// A pending compare-and-swap: the value the key had when it was read.
    type Cas;

    fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>>;
    fn set(&self, key: &str, value: &[u8]) -> StoreResult<()>;
    fn delete(&self, key: &str) -> StoreResult<()>;
    fn get_many(&self, keys: &[String]) -> StoreResult<Vec<Option<Vec<u8>>>>;
    /// Atomically add `delta` to the counter at `key` (absent = 0); the new value.
    fn increment(&self, key: &str, delta: i64) -> StoreResult<i64>;
    /// Read `key` for a later [`Storage::cas_swap`].
    fn cas_begin(&self, key: &str) -> StoreResult<(Option<Vec<u8>>, Self::Cas)>;
    /// Write `value` if the key is unchanged since `cas_begin`; `false` if it changed.
    fn cas_swap(&self, cas: Self::Cas, value: &[u8]) -> StoreResult<bool>;
}

/// How an [`StorageExt::update_json`] closure answers.
pub enum Update<T> {
    Write(T),
    Keep,
}

/// How many times a compare-and-swap update is retried under contention.
const CAS_ATTEMPTS: usize = 64;

pub trait StorageExt: Storage {
    fn get_json<T: DeserializeOwned>(&self, key: &str) -> StoreResult<Option<T>> {
        match self.get(key)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StoreError(format!("stored value at `{key}` does not parse: {e}"))),
        }
    }

    fn put_json<T: Serialize>(&self, key: &str, value: &T) -> StoreResult<()> {
        self.set(key, &to_bytes(value))
    }

    /// Store `value` only if `key` is absent. `true` if this call created it.
    fn create_json<T: Serialize>(&self, key: &str, value: &T) -> StoreResult<bool> {
        let (current, cas) = self.cas_begin(key)?;
        if current.is_some() {
            return Ok(false);
        }
        self.cas_swap(cas, &to_bytes(value))
    }

    /// Read-modify-write with compare-and-swap, retried while others write in
    /// between. Returns the value as written (or as kept).
    fn update_json<T, F>(&self, key: &str, mut f: F) -> StoreResult<Option<T>>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> Update<T>,
    {
        for _ in 0..CAS_ATTEMPTS {
            let (current, cas) = self.cas_begin(key)?;
            let parsed = match &current {
                None => None,
                Some(b) => Some(serde_json::from_slice::<T>(b).map_err(|e| {
                    StoreError(format!("stored value at `{key}` does not parse: {e}"))
                })?),
            };
            match f(parsed) {
                Update::Keep => {
                    return match current {
                        None => Ok(None),
                        Some(b) => Ok(serde_json::from_slice(&b).ok()),
                    }
                }
                Update::Write(next) => {
                    if self.cas_swap(cas, &to_bytes(&next))? {
                        return Ok(Some(next));
                    }
                }
            }
        }
        Err(StoreError(format!(
            "`{key}` changed {CAS_ATTEMPTS} times while being updated; retry"
        )))
    }

    /// Change an existing value under compare-and-swap when `f` says so (`f`
    /// edits it and returns `true`). The value as written, or `None` when the
    /// key is absent or `f` declined — so a caller knows whether it was this
    /// call that made the change (and so owns its consequences).
    fn update_if<T, F>(&self, key: &str, mut f: F) -> StoreResult<Option<T>>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(&mut T) -> bool,
    {
        let mut wrote = false;
        let value = self.update_json::<T, _>(key, |cur| {
            let Some(mut v) = cur else {
                wrote = false;
                return Update::Keep;
            };
            wrote = f(&mut v);
            if wrote {
                Update::Write(v)
            } else {
                Update::Keep
            }
        })?;
        Ok(if wrote { value } else { None })
    }

    /// Add `id` to the list at `key` unless it is there (compare-and-swap).
    /// Lists like this are the indexes that spare every hot path a key scan.
    fn add_to_list(&self, key: &str, id: &str) -> StoreResult<()> {
        self.update_json::<Vec<String>, _>(key, |cur| {
            let mut ids = cur.unwrap_or_default();
            if ids.iter().any(|i| i == id) {
                return Update::Keep;
            }
            ids.push(id.to_string());
            Update::Write(ids)
        })
        .map(drop)
    }

    /// The ids in several lists (one batch read), in order, duplicates kept.
    fn read_lists(&self, keys: &[String]) -> StoreResult<Vec<String>> {
        Ok(self
            .get_many(keys)?
            .into_iter()
            .flatten()
            .flat_map(|v| serde_json::from_slice::<Vec<String>>(&v).unwrap_or_default())
            .collect())
    }

    /// Append `item` to the append-only log `log`: one increment allocates a
    /// slot (`<log>/<n>`, counted at `<log>/n`), one write fills it. Unlike a
    /// compare-and-swap list, nothing is rewritten as the log grows and
    /// concurrent writers never retry; for indexes that only ever grow.
    fn append_to_log(&self, log: &str, item: &str) -> StoreResult<()> {
        let n = self.increment(&format!("{log}/n"), 1)?;
        self.set(&format!("{log}/{n}"), item.as_bytes())
    }

    /// The items of several logs, oldest first (two batch reads). A slot whose
    /// write failed after its increment is skipped.
    fn read_logs(&self, logs: &[String]) -> StoreResult<Vec<String>> {
        Ok(self.read_logs_after(logs, &BTreeMap::new())?.0)
    }

    /// The items of several logs past the slots already `read` of each, and
    /// how far each log has now been read: a reader that keeps this pays only
    /// for what is new.
    fn read_logs_after(
        &self,
        logs: &[String],
        read: &BTreeMap<String, i64>,
    ) -> StoreResult<(Vec<String>, BTreeMap<String, i64>)> {
        let counts = self.counters(&logs.iter().map(|l| format!("{l}/n")).collect::<Vec<_>>())?;
        let now_read: BTreeMap<String, i64> = logs.iter().cloned().zip(counts).collect();
        let slots: Vec<String> = now_read
            .iter()
            .flat_map(|(l, n)| {
                let from = read.get(l).copied().unwrap_or(0) + 1;
                (from..=*n).map(move |i| format!("{l}/{i}"))
            })
            .collect();
        let items = self
            .get_many(&slots)?
            .into_iter()
            .flatten()
            .filter_map(|v| String::from_utf8(v).ok())
            .collect();
        Ok((items, now_read))
    }

    /// Remove `id` from the list at `key` (compare-and-swap).
    fn remove_from_list(&self, key: &str, id: &str) -> StoreResult<()> {
        self.update_json::<Vec<String>, _>(key, |cur| {
            let mut ids = cur.unwrap_or_default();
            let before = ids.len();
            ids.retain(|i| i != id);
            if ids.len() == before {
                Update::Keep
            } else {
                Update::Write(ids)
            }
        })
        .map(drop)
    }

    /// A counter's value (0 when absent), as written by `increment`.
    fn counter(&self, key: &str) -> StoreResult<i64> {
        Ok(self.get(key)?.as_deref().map(decode_counter).unwrap_or(0))
    }

    /// Several counters in one batch read.
    fn counters(&self, keys: &[String]) -> StoreResult<Vec<i64>> {
        Ok(self
            .get_many(keys)?
            .into_iter()
            .map(|v| v.as_deref().map(decode_counter).unwrap_or(0))
            .collect())
    }
}

impl<S: Storage + ?Sized> StorageExt for S {}

/// Counter increments that belong to one change not yet recorded, taken back
/// together if the change is not recorded after all (it failed, or another
/// request recorded it first). `wasi:keyvalue` has no multi-key transaction:
/// counting first and taking back on failure is what keeps counters exact
/// when a store operation fails half-way and the client retries.
pub struct Tentative<'a, S: Storage + ?Sized> {
    store: &'a S,
    done: Vec<(String, i64)>,
}

impl<'a, S: Storage + ?Sized> Tentative<'a, S> {
    pub fn new(store: &'a S) -> Self {
        Tentative {
            store,
            done: Vec::new(),
        }
    }

    /// Increment now; remembered so that [`Tentative::take_back`] can undo it.
    pub fn add(&mut self, key: &str, delta: i64) -> StoreResult<i64> {
        let n = self.store.increment(key, delta)?;
        self.done.push((key.to_string(), delta));
        Ok(n)
    }

    /// Undo every increment made so far (best effort: a store that fails
    /// again is logged).
    pub fn take_back(&mut self) {
        for (key, delta) in std::mem::take(&mut self.done).into_iter().rev() {
            if let Err(e) = self.store.increment(&key, -delta) {
                eprintln!("could not take back {delta} at `{key}`: {}", e.0);
            }
        }
    }
}

fn to_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("domain types always serialize")
}

/// A counter's value as `increment` left it. Stores differ: Spin's SQLite
/// store (and the embedded host) keep an 8-byte little-endian `i64`, Spin's
/// Redis store keeps what Redis's `INCRBY` keeps, the number in decimal text.
/// Both are read. Text wins when every byte is a digit (after an optional
/// `-`): as little-endian bytes that would be a number above 3.4 × 10^18,
/// which no counter here reaches. Anything else reads as 0.
pub fn decode_counter(bytes: &[u8]) -> i64 {
    let digits = bytes.strip_prefix(b"-").unwrap_or(bytes);
    if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) {
        if let Some(n) = std::str::from_utf8(bytes).ok().and_then(|t| t.parse().ok()) {
            return n;
        }
    }
    <[u8; 8]>::try_from(bytes)
        .map(i64::from_le_bytes)
        .unwrap_or(0)
}

/// An in-memory [`Storage`] for native tests, with the same semantics.
#[derive(Default)]
pub struct MemoryStorage {
    data: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemoryStorage {
    pub fn new() -> MemoryStorage {
        MemoryStorage::default()
    }

    /// All keys, for tests that inspect the layout.
    pub fn keys(&self) -> Vec<String> {
        self.data.lock().unwrap().keys().cloned().collect()
    }
}

pub struct MemoryCas {
    key: String,
    original: Option<Vec<u8>>,
}

impl Storage for MemoryStorage {
    type Cas = MemoryCas;

    fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.data.lock().unwrap().get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8]) -> StoreResult<()> {
        self.data
            .lock()
            .unwrap()
            .insert(key.to_string(), value.to_vec());
        Ok(())
    }

    fn delete(&self, key: &str) -> StoreResult<()> {
        self.data.lock().unwrap().remove(key);
        Ok(())
    }

    fn get_many(&self, keys: &[String]) -> StoreResult<Vec<Option<Vec<u8>>>> {
        let data = self.data.lock().unwrap();
        Ok(keys.iter().map(|k| data.get(k).cloned()).collect())
    }

    fn increment(&self, key: &str, delta: i64) -> StoreResult<i64> {
        let mut data = self.data.lock().unwrap();
        let current = match data.get(key) {
            None => 0,
            Some(b) if b.len() == 8 => decode_counter(b),
            Some(_) => {
                return Err(StoreError(format!(
                    "`{key}` does not hold an 8-byte counter"
                )))
            }
        };
        let next = current + delta;
        data.insert(key.to_string(), next.to_le_bytes().to_vec());
        Ok(next)
    }

    fn cas_begin(&self, key: &str) -> StoreResult<(Option<Vec<u8>>, MemoryCas)> {
        let original = self.get(key)?;
        Ok((
            original.clone(),
            MemoryCas {
                key: key.to_string(),
                original,
            },
        ))
    }

    fn cas_swap(&self, cas: MemoryCas, value: &[u8]) -> StoreResult<bool> {
        let mut data = self.data.lock().unwrap();
        if data.get(&cas.key) != cas.original.as_ref() {
            return Ok(false);
        }
        data.insert(cas.key, value.to_vec());
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_is_insert_if_absent() {
        let s = MemoryStorage::new();
        assert!(s.create_json("k", &1).unwrap());
        assert!(!s.create_json("k", &2).unwrap());
        assert_eq!(s.get_json::<i32>("k").unwrap(), Some(1));
    }

    #[test]
    fn update_retries_until_it_wins() {
        let s = std::sync::Arc::new(MemoryStorage::new());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        s.update_json::<Vec<u32>, _>("list", |cur| {
                            let mut v = cur.unwrap_or_default();
                            v.push(1);
                            Update::Write(v)
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(s.get_json::<Vec<u32>>("list").unwrap().unwrap().len(), 400);
    }

    #[test]
    fn update_if_reports_whether_it_changed() {
        let s = MemoryStorage::new();
        assert_eq!(
            s.update_if::<i32, _>("n", |_| true).unwrap(),
            None,
            "absent: nothing to change"
        );
        s.put_json("n", &1).unwrap();
        assert_eq!(s.update_if::<i32, _>("n", |v| *v > 5).unwrap(), None);
        assert_eq!(
            s.update_if::<i32, _>("n", |v| {
                *v += 1;
                true
            })
            .unwrap(),
            Some(2)
        );
        assert_eq!(s.get_json::<i32>("n").unwrap(), Some(2));
    }

    #[test]
    fn lists_add_once_and_remove() {
        let s = MemoryStorage::new();
        s.add_to_list("l", "a").unwrap();
        s.add_to_list("l", "b").unwrap();
        s.add_to_list("l", "a").unwrap();
        assert_eq!(
            s.get_json::<Vec<String>>("l").unwrap().unwrap(),
            vec!["a", "b"]
        );
        s.remove_from_list("l", "a").unwrap();
        s.remove_from_list("l", "zz").unwrap();
        assert_eq!(s.get_json::<Vec<String>>("l").unwrap().unwrap(), vec!["b"]);
    }

    #[test]
    fn tentative_counts_are_taken_back_together() {
        let s = MemoryStorage::new();
        let mut t = Tentative::new(&s);
        t.add("a", 1).unwrap();
        t.add("b", 2).unwrap();
        t.take_back();
        assert_eq!(s.counters(&["a".into(), "b".into()]).unwrap(), vec![0, 0]);
        let mut kept = Tentative::new(&s);
        kept.add("a", 1).unwrap();
        drop(kept);
        assert_eq!(s.counter("a").unwrap(), 1, "kept unless taken back");
    }

    #[test]
    fn logs_append_without_rewriting_and_read_in_order() {
        let s = MemoryStorage::new();
        s.append_to_log("log/a", "1").unwrap();
        s.append_to_log("log/b", "x").unwrap();
        s.append_to_log("log/a", "2").unwrap();
        s.delete("log/a/1").unwrap(); // a slot whose write never happened
        s.append_to_log("log/a", "3").unwrap();
        assert_eq!(
            s.read_logs(&["log/a".into(), "log/b".into(), "log/none".into()])
                .unwrap(),
            vec!["2", "3", "x"]
        );
        let (first, read) = s
            .read_logs_after(&["log/a".into()], &BTreeMap::new())
            .unwrap();
        assert_eq!(first, vec!["2", "3"]);
        s.append_to_log("log/a", "4").unwrap();
        let (next, read) = s.read_logs_after(&["log/a".into()], &read).unwrap();
        assert_eq!(next, vec!["4"], "only what is new");
        assert_eq!(read["log/a"], 4);
        s.put_json("l1", &vec!["a", "b"]).unwrap();
        s.put_json("l2", &vec!["b"]).unwrap();
        assert_eq!(
            s.read_lists(&["l1".into(), "l2".into(), "l3".into()])
                .unwrap(),
            vec!["a", "b", "b"]
        );
    }

    #[test]
    fn counters_read_as_sqlite_and_redis_keep_them() {
        // Spin's SQLite store and the embedded host: 8-byte little-endian.
        assert_eq!(decode_counter(&7i64.to_le_bytes()), 7);
        assert_eq!(decode_counter(&(-2i64).to_le_bytes()), -2);
        // 8-byte values made of digit bytes happen too: 0x30 is '0'.
        assert_eq!(decode_counter(&48i64.to_le_bytes()), 48);
        assert_eq!(
            decode_counter(&(i64::from(b'1') << 8).to_le_bytes()),
            256 * 49
        );
        // Spin's Redis store: INCRBY's decimal text, 8 digits included.
        assert_eq!(decode_counter(b"7"), 7);
        assert_eq!(decode_counter(b"-12"), -12);
        assert_eq!(decode_counter(b"12345678"), 12_345_678);
        // Neither: 0, as absent.
        assert_eq!(decode_counter(b""), 0);
        assert_eq!(decode_counter(b"-"), 0);
        assert_eq!(decode_counter(b"{\"json\":1}"), 0);
    }

    proptest::proptest! {
        /// Any counter within ±2.3 × 10^18 reads back from either encoding.
        #[test]
        fn counters_round_trip_both_encodings(n in -(1i64 << 61)..(1i64 << 61)) {
            proptest::prop_assert_eq!(decode_counter(&n.to_string().into_bytes()), n);
            proptest::prop_assert_eq!(decode_counter(&n.to_le_bytes()), n);
        }
    }

    #[test]
    fn counters_are_le_i64() {
        let s = MemoryStorage::new();
        s.increment("c", 3).unwrap();
        s.increment("c", 4).unwrap();
        assert_eq!(s.counter("c").unwrap(), 7);
        assert_eq!(
            s.counters(&["c".into(), "none".into()]).unwrap(),
            vec![7, 0]
        );
    }
}
