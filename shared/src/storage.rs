//! The one small storage trait components do all key-value I/O through, typed
//! helpers over it, and an in-memory implementation for native tests.
//!
//! The trait mirrors `wasi:keyvalue` (store, atomics, batch) so the wasm
//! implementation is a thin pass-through; race-prone writes go through
//! [`Storage::increment`] or the compare-and-swap pair.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
    /// Store `value` only if `key` is absent; `true` if this call created it.
    /// For keys that only ever come to exist through `create` or a swap
    /// (never a plain `set`): a store may then skip reading the key first.
    fn create(&self, key: &str, value: &[u8]) -> StoreResult<bool> {
        create_by_swap(self, key, value)
    }
}

/// [`Storage::create`] as a compare-and-swap from the absent key.
fn create_by_swap<S: Storage + ?Sized>(store: &S, key: &str, value: &[u8]) -> StoreResult<bool> {
    for attempt in 0..CAS_ATTEMPTS {
        backoff(attempt);
        let (current, cas) = store.cas_begin(key)?;
        if current.is_some() {
            return Ok(false);
        }
        if store.cas_swap(cas, value)? {
            return Ok(true);
        }
    }
    Err(StoreError(format!(
        "`{key}` changed {CAS_ATTEMPTS} times while being created; retry"
    )))
}

/// How an [`StorageExt::update_json`] closure answers.
pub enum Update<T> {
    Write(T),
    Keep,
}

/// How many times a compare-and-swap update is retried under contention.
const CAS_ATTEMPTS: usize = 64;

/// Before retry `attempt` of a compare-and-swap: nothing for the first few,
/// then a pause that doubles up to 3.2 ms, so that writers piling onto one
/// key spread out instead of all losing to each other again.
pub(crate) fn backoff(attempt: usize) {
    if attempt >= 4 {
        let micros = 50u64 << (attempt - 4).min(6);
        std::thread::sleep(std::time::Duration::from_micros(micros));
    }
}

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
    /// Only for keys never written by a plain `set` (see [`Storage::create`]).
    fn create_json<T: Serialize>(&self, key: &str, value: &T) -> StoreResult<bool> {
        self.create(key, &to_bytes(value))
    }

    /// Read-modify-write with compare-and-swap, retried while others write in
    /// between. Returns the value as written (or as kept).
    fn update_json<T, F>(&self, key: &str, mut f: F) -> StoreResult<Option<T>>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> Update<T>,
    {
        for attempt in 0..CAS_ATTEMPTS {
            backoff(attempt);
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

    /// Add `id` to the list at `key` like [`add_to_list`](Self::add_to_list),
    /// keeping only the newest `max` (the oldest go first): for lists a
    /// report reads whole, which must not grow without bound.
    fn add_to_capped_list(&self, key: &str, id: &str, max: usize) -> StoreResult<()> {
        self.update_json::<Vec<String>, _>(key, |cur| {
            let mut ids = cur.unwrap_or_default();
            if ids.iter().any(|i| i == id) {
                return Update::Keep;
            }
            ids.push(id.to_string());
            if ids.len() > max {
                ids.drain(..ids.len() - max);
            }
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

    /// Delete a log: its slots, then its count.
    fn delete_log(&self, log: &str) -> StoreResult<()> {
        let n = self.counter(&format!("{log}/n"))?;
        for i in 1..=n {
            self.delete(&format!("{log}/{i}"))?;
        }
        self.delete(&format!("{log}/n"))
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

    /// The JSON values of `ids` (each read once, in one batch), by id;
    /// `key(id)` names each one's key. Absent or unparsable values are left out.
    fn get_json_by<T: DeserializeOwned>(
        &self,
        ids: impl IntoIterator<Item = String>,
        key: impl Fn(&str) -> String,
    ) -> StoreResult<BTreeMap<String, T>> {
        let ids: Vec<String> = ids
            .into_iter()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let keys: Vec<String> = ids.iter().map(|id| key(id)).collect();
        Ok(ids
            .into_iter()
            .zip(self.get_many(&keys)?)
            .filter_map(|(id, v)| Some((id, serde_json::from_slice(&v?).ok()?)))
            .collect())
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

// ---------------------------------------------------------------------------
// Portable: exact on every store Spin has, as those stores are.
// ---------------------------------------------------------------------------

/// A host's `wasi:keyvalue` store as it really behaves, quirks included. The
/// app never uses one directly: [`Portable`] makes any of them exact.
///
/// What real hosts do that the interface does not promise against (Spin
/// 4.0.2, `../shared/tools/README.md`):
/// - Spin's SQLite store makes a compare-and-swap on an absent key an upsert:
///   two swaps that both began on the absent key both succeed.
/// - Spin's Redis store reports every swap as failed (its `UNWATCH <key>` is
///   refused), whether or not the value was stored; its batch read sends
///   `KEYS k1 k2 …`: an error for two keys or more, a wrong answer for one.
pub trait HostKv {
    type Cas;
    fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>>;
    fn set(&self, key: &str, value: &[u8]) -> StoreResult<()>;
    fn delete(&self, key: &str) -> StoreResult<()>;
    /// `(key, value)` pairs as the host answers them (absent keys may be
    /// missing). May fail, or answer wrongly, where the host is broken.
    fn get_many(&self, keys: &[String]) -> StoreResult<Vec<(String, Option<Vec<u8>>)>>;
    fn increment(&self, key: &str, delta: i64) -> StoreResult<i64>;
    fn cas_begin(&self, key: &str) -> StoreResult<(Option<Vec<u8>>, Self::Cas)>;
    /// `true`: stored. `false`: not known to be stored (it may have been).
    fn cas_swap(&self, cas: Self::Cas, value: &[u8]) -> StoreResult<bool>;
}

/// [`Storage`] with exact semantics over any [`HostKv`]:
/// - **No swap from an absent key.** Who creates an absent key is decided by
///   an increment on [`crate::keys::creation_claim`], which every store does
///   exactly: the first claimer writes its value; every other writer waits
///   until the key exists, then reads it again and swaps from that value.
///   Swaps from a present value are exact on every store.
/// - **Swaps confirmed by reading back.** Every value written by a swap ends
///   with a writer tag (`0x1E` and 16 random hex digits, stripped on every
///   read), so a swap reported as failed is known to have landed exactly when
///   the key still holds this writer's bytes. Identical values from two
///   writers can never be mistaken for each other.
/// - **Batch reads never trusted blindly**: one key is a plain `get`; a batch
///   that fails (or names keys not asked for) falls back to single reads, and
///   this store skips batches from then on.
pub struct Portable<K: HostKv> {
    kv: K,
    batch_works: AtomicBool,
}

/// What a key holds when it exists but reads as absent: written only by a
/// writer that took over the creation of a key whose creator never wrote it.
pub const PLACEHOLDER: &[u8] = b"null";

/// The writer tag's length: `0x1E` and 16 hex digits.
const TAG_LEN: usize = 17;

/// How long a writer waits for another to finish creating a key (doubling
/// sleeps, about 1 s in all) before it takes the creation over.
const CREATION_WAITS_MS: [u64; 10] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

/// A pending swap: on a present value (`raw`), or the creation of an absent key.
pub struct PortableCas<C> {
    raw: Option<C>,
    key: String,
}

impl<K: HostKv> Portable<K> {
    pub fn over(kv: K) -> Portable<K> {
        Portable {
            kv,
            batch_works: AtomicBool::new(true),
        }
    }

    /// The store underneath, as the host has it.
    pub fn host(&self) -> &K {
        &self.kv
    }

    /// Create absent `key` holding `value` if this writer wins its creation
    /// claim (`true`). Otherwise wait until the winner has written it, and
    /// `false`: the caller reads it again. A writer that waits in vain (the
    /// winner died between its claim and its write) makes the key exist
    /// holding [`PLACEHOLDER`], read as absent, so that swaps can go on.
    fn claim_and_write(&self, key: &str, value: &[u8]) -> StoreResult<bool> {
        if self.kv.increment(&crate::keys::creation_claim(key), 1)? == 1 {
            self.kv.set(key, &tagged(value))?;
            return Ok(true);
        }
        for ms in CREATION_WAITS_MS {
            if self.kv.get(key)?.is_some() {
                return Ok(false);
            }
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        let (current, cas) = self.kv.cas_begin(key)?;
        if current.is_none() {
            self.kv.cas_swap(cas, PLACEHOLDER)?;
        }
        Ok(false)
    }
}

/// A value as the app sees it: writer tag stripped, the placeholder absent.
fn visible(raw: Option<Vec<u8>>) -> Option<Vec<u8>> {
    let mut bytes = raw?;
    if has_tag(&bytes) {
        bytes.truncate(bytes.len() - TAG_LEN);
    }
    (bytes != PLACEHOLDER).then_some(bytes)
}

fn has_tag(bytes: &[u8]) -> bool {
    bytes.len() >= TAG_LEN
        && bytes[bytes.len() - TAG_LEN] == 0x1E
        && bytes[bytes.len() - TAG_LEN + 1..]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

/// `value` with a writer tag no other write carries: 64 random bits from
/// the standard library's OS-seeded hasher keys (`wasi:random` in a
/// component), mixed with a process-wide sequence number.
fn tagged(value: &[u8]) -> Vec<u8> {
    use std::hash::BuildHasher;
    static SEQUENCE: AtomicU64 = AtomicU64::new(0);
    let n = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let random = std::collections::hash_map::RandomState::new().hash_one(n);
    let mut out = Vec::with_capacity(value.len() + TAG_LEN);
    out.extend_from_slice(value);
    out.push(0x1E);
    out.extend_from_slice(format!("{random:016x}").as_bytes());
    out
}

impl<K: HostKv> Storage for Portable<K> {
    type Cas = PortableCas<K::Cas>;

    fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(visible(self.kv.get(key)?))
    }

    fn set(&self, key: &str, value: &[u8]) -> StoreResult<()> {
        self.kv.set(key, value)
    }

    /// The key and its creation claim: a key made again later is claimed afresh.
    fn delete(&self, key: &str) -> StoreResult<()> {
        self.kv.delete(key)?;
        self.kv.delete(&crate::keys::creation_claim(key))
    }

    fn get_many(&self, keys: &[String]) -> StoreResult<Vec<Option<Vec<u8>>>> {
        if keys.len() <= 1 {
            return keys.iter().map(|k| self.get(k)).collect();
        }
        if self.batch_works.load(Ordering::Relaxed) {
            if let Ok(pairs) = self.kv.get_many(keys) {
                let asked: std::collections::HashSet<&str> =
                    keys.iter().map(String::as_str).collect();
                if pairs.iter().all(|(k, _)| asked.contains(k.as_str())) {
                    // (A key asked for twice is answered twice.)
                    let by_key: std::collections::HashMap<String, Option<Vec<u8>>> =
                        pairs.into_iter().collect();
                    return Ok(keys
                        .iter()
                        .map(|k| visible(by_key.get(k).cloned().flatten()))
                        .collect());
                }
            }
            self.batch_works.store(false, Ordering::Relaxed);
        }
        keys.iter().map(|k| self.get(k)).collect()
    }

    fn increment(&self, key: &str, delta: i64) -> StoreResult<i64> {
        self.kv.increment(key, delta)
    }

    fn cas_begin(&self, key: &str) -> StoreResult<(Option<Vec<u8>>, Self::Cas)> {
        let (current, raw) = self.kv.cas_begin(key)?;
        let raw = current.is_some().then_some(raw);
        let cas = PortableCas {
            raw,
            key: key.to_string(),
        };
        Ok((visible(current), cas))
    }

    fn cas_swap(&self, cas: Self::Cas, value: &[u8]) -> StoreResult<bool> {
        let Some(raw) = cas.raw else {
            return self.claim_and_write(&cas.key, value);
        };
        let mine = tagged(value);
        if self.kv.cas_swap(raw, &mine)? {
            return Ok(true);
        }
        Ok(self.kv.get(&cas.key)?.as_deref() == Some(&mine[..]))
    }

    /// The creation claim at once, without reading the key first (a key that
    /// exists was claimed): two operations instead of three. A claim lost to
    /// a creator that died before writing falls back to the swap.
    fn create(&self, key: &str, value: &[u8]) -> StoreResult<bool> {
        if self.claim_and_write(key, value)? {
            return Ok(true);
        }
        create_by_swap(self, key, value)
    }
}

/// How a [`MemoryKv`] behaves: like the embedded host, or like one of Spin's
/// stores with its quirks (see [`HostKv`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvMode {
    /// The embedded host: swaps exact even on absent keys, batches exact,
    /// counters as 8-byte little-endian.
    Exact,
    /// Spin's SQLite store: a swap on an absent key is an upsert; a swap on
    /// a present one compares values; a batch answers only present keys;
    /// incrementing a key that is no counter fails (Spin's host panics).
    SpinSqlite,
    /// Spin's Redis store: a swap stores when the key was not written since
    /// its read (WATCH) and always reports failure; a batch of two keys or
    /// more fails, of one answers wrongly; counters as decimal text.
    SpinRedis,
}

impl KvMode {
    pub const ALL: [KvMode; 3] = [KvMode::Exact, KvMode::SpinSqlite, KvMode::SpinRedis];
}

/// An in-memory [`HostKv`] for native tests, in one of the [`KvMode`]s.
pub struct MemoryKv {
    mode: KvMode,
    data: Mutex<BTreeMap<String, (Vec<u8>, u64)>>,
    writes: AtomicU64,
    /// Every operation as a host counts it (`op key`), for tests of how
    /// many a flow costs.
    trace: Mutex<Vec<String>>,
}

pub struct MemoryKvCas {
    key: String,
    original: Option<Vec<u8>>,
    version: Option<u64>,
}

impl MemoryKv {
    pub fn new(mode: KvMode) -> MemoryKv {
        MemoryKv {
            mode,
            data: Mutex::new(BTreeMap::new()),
            writes: AtomicU64::new(0),
            trace: Mutex::new(Vec::new()),
        }
    }

    /// The operations since the last call, as a host counts them: one per
    /// call, `cas_begin` included (a host's `Cas::new`), as `op key`.
    pub fn take_trace(&self) -> Vec<String> {
        std::mem::take(&mut self.trace.lock().unwrap())
    }

    fn note(&self, op: &str, key: &str) {
        self.trace.lock().unwrap().push(format!("{op} {key}"));
    }

    fn write(&self, data: &mut BTreeMap<String, (Vec<u8>, u64)>, key: &str, value: Vec<u8>) {
        let version = self.writes.fetch_add(1, Ordering::Relaxed) + 1;
        data.insert(key.to_string(), (value, version));
    }
}

impl HostKv for MemoryKv {
    type Cas = MemoryKvCas;

    fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        self.note("get", key);
        Ok(self.data.lock().unwrap().get(key).map(|(v, _)| v.clone()))
    }

    fn set(&self, key: &str, value: &[u8]) -> StoreResult<()> {
        self.note("set", key);
        let mut data = self.data.lock().unwrap();
        self.write(&mut data, key, value.to_vec());
        Ok(())
    }

    fn delete(&self, key: &str) -> StoreResult<()> {
        self.note("delete", key);
        self.data.lock().unwrap().remove(key);
        Ok(())
    }

    fn get_many(&self, keys: &[String]) -> StoreResult<Vec<(String, Option<Vec<u8>>)>> {
        self.note("get_many", &keys.join(" "));
        let data = self.data.lock().unwrap();
        match self.mode {
            KvMode::Exact => Ok(keys
                .iter()
                .map(|k| (k.clone(), data.get(k).map(|(v, _)| v.clone())))
                .collect()),
            KvMode::SpinSqlite => Ok(keys
                .iter()
                .filter_map(|k| data.get(k).map(|(v, _)| (k.clone(), Some(v.clone()))))
                .rev()
                .collect()),
            KvMode::SpinRedis if keys.len() >= 2 => Err(StoreError(
                "ERR wrong number of arguments for 'keys' command".into(),
            )),
            KvMode::SpinRedis => Ok(keys.iter().map(|k| (k.clone(), None)).collect()),
        }
    }

    fn increment(&self, key: &str, delta: i64) -> StoreResult<i64> {
        self.note("increment", key);
        let mut data = self.data.lock().unwrap();
        let current = match (self.mode, data.get(key)) {
            (_, None) => 0,
            (KvMode::SpinRedis, Some((v, _))) => std::str::from_utf8(v)
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| StoreError(format!("ERR value is not an integer at `{key}`")))?,
            (_, Some((v, _))) if v.len() == 8 => decode_counter(v),
            (_, Some(_)) => {
                return Err(StoreError(format!(
                    "`{key}` does not hold an 8-byte counter"
                )))
            }
        };
        let next = current + delta;
        let bytes = match self.mode {
            KvMode::SpinRedis => next.to_string().into_bytes(),
            _ => next.to_le_bytes().to_vec(),
        };
        self.write(&mut data, key, bytes);
        Ok(next)
    }

    fn cas_begin(&self, key: &str) -> StoreResult<(Option<Vec<u8>>, MemoryKvCas)> {
        self.note("cas_begin", key);
        let data = self.data.lock().unwrap();
        let (original, version) = match data.get(key) {
            Some((v, n)) => (Some(v.clone()), Some(*n)),
            None => (None, None),
        };
        let cas = MemoryKvCas {
            key: key.to_string(),
            original: original.clone(),
            version,
        };
        Ok((original, cas))
    }

    fn cas_swap(&self, cas: MemoryKvCas, value: &[u8]) -> StoreResult<bool> {
        self.note("cas_swap", &cas.key);
        let mut data = self.data.lock().unwrap();
        let now = data.get(&cas.key);
        let swapped = match self.mode {
            KvMode::Exact => now.map(|(v, _)| v) == cas.original.as_ref(),
            KvMode::SpinSqlite => {
                cas.original.is_none() || now.map(|(v, _)| v) == cas.original.as_ref()
            }
            KvMode::SpinRedis => now.map(|(_, n)| *n) == cas.version,
        };
        if swapped {
            self.write(&mut data, &cas.key, value.to_vec());
        }
        Ok(swapped && self.mode != KvMode::SpinRedis)
    }
}

/// The in-memory [`Storage`] of native tests: [`Portable`] over a [`MemoryKv`].
pub type MemoryStorage = Portable<MemoryKv>;

impl Portable<MemoryKv> {
    /// Like the embedded host.
    pub fn new() -> MemoryStorage {
        Portable::over(MemoryKv::new(KvMode::Exact))
    }

    /// Like one of Spin's stores.
    pub fn in_memory_like(mode: KvMode) -> MemoryStorage {
        Portable::over(MemoryKv::new(mode))
    }

    /// All keys, for tests that inspect the layout.
    pub fn keys(&self) -> Vec<String> {
        self.kv.data.lock().unwrap().keys().cloned().collect()
    }
}

impl Default for Portable<MemoryKv> {
    fn default() -> Self {
        Portable::new()
    }
}

/// A [`Storage`] that fails one chosen operation (counting every call from
/// 0), for native tests that a flow survives a store failure at each step.
pub struct Faulty<S: Storage> {
    inner: S,
    calls: AtomicU64,
    fail_at: AtomicU64,
    failed: AtomicBool,
}

impl<S: Storage> Faulty<S> {
    pub fn new(inner: S) -> Faulty<S> {
        Faulty {
            inner,
            calls: AtomicU64::new(0),
            fail_at: AtomicU64::new(u64::MAX),
            failed: AtomicBool::new(false),
        }
    }

    /// Fail the operation numbered `n` from now (0: the next one).
    pub fn fail_op(&self, n: u64) {
        let now = self.calls.load(Ordering::SeqCst);
        self.fail_at.store(now + n, Ordering::SeqCst);
        self.failed.store(false, Ordering::SeqCst);
    }

    /// Fail nothing from now on.
    pub fn disarm(&self) {
        self.fail_at.store(u64::MAX, Ordering::SeqCst);
    }

    /// Whether the chosen operation came (and failed).
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn op(&self) -> StoreResult<()> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == self.fail_at.load(Ordering::SeqCst) {
            self.failed.store(true, Ordering::SeqCst);
            return Err(StoreError("injected store failure".into()));
        }
        Ok(())
    }
}

impl Faulty<MemoryStorage> {
    /// Fail each store operation of `scenario` in turn: run it once per step
    /// on a fresh store in `mode`. The scenario sets up, arms the fault with
    /// `fail_op(step)`, runs, disarms and checks; the sweep ends after the
    /// first run in which the armed operation never came. Returns how many
    /// operations were failed in turn.
    pub fn sweep(mode: KvMode, mut scenario: impl FnMut(&Faulty<MemoryStorage>, u64)) -> u64 {
        let mut step = 0;
        loop {
            let store = Faulty::new(MemoryStorage::in_memory_like(mode));
            scenario(&store, step);
            if !store.failed() {
                return step;
            }
            step += 1;
        }
    }
}

impl<S: Storage> Storage for Faulty<S> {
    type Cas = S::Cas;

    fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        self.op()?;
        self.inner.get(key)
    }

    fn set(&self, key: &str, value: &[u8]) -> StoreResult<()> {
        self.op()?;
        self.inner.set(key, value)
    }

    fn delete(&self, key: &str) -> StoreResult<()> {
        self.op()?;
        self.inner.delete(key)
    }

    fn get_many(&self, keys: &[String]) -> StoreResult<Vec<Option<Vec<u8>>>> {
        self.op()?;
        self.inner.get_many(keys)
    }

    fn increment(&self, key: &str, delta: i64) -> StoreResult<i64> {
        self.op()?;
        self.inner.increment(key, delta)
    }

    fn cas_begin(&self, key: &str) -> StoreResult<(Option<Vec<u8>>, Self::Cas)> {
        self.op()?;
        self.inner.cas_begin(key)
    }

    fn cas_swap(&self, cas: Self::Cas, value: &[u8]) -> StoreResult<bool> {
        self.op()?;
        self.inner.cas_swap(cas, value)
    }

    fn create(&self, key: &str, value: &[u8]) -> StoreResult<bool> {
        self.op()?;
        self.inner.create(key, value)
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
    fn a_capped_list_keeps_the_newest() {
        let s = MemoryStorage::new();
        for i in 0..5 {
            s.add_to_capped_list("l", &i.to_string(), 3).unwrap();
        }
        s.add_to_capped_list("l", "4", 3).unwrap();
        assert_eq!(
            s.get_json::<Vec<String>>("l").unwrap().unwrap(),
            vec!["2", "3", "4"]
        );
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

    // --- The memory modes behave like Spin's stores (so the tests below prove something).

    #[test]
    fn spin_sqlite_mode_upserts_a_swap_on_an_absent_key() {
        let kv = MemoryKv::new(KvMode::SpinSqlite);
        let (_, a) = kv.cas_begin("k").unwrap();
        let (_, b) = kv.cas_begin("k").unwrap();
        assert!(kv.cas_swap(a, b"a").unwrap());
        assert!(
            kv.cas_swap(b, b"b").unwrap(),
            "both win: the bug Portable avoids"
        );
        let (_, c) = kv.cas_begin("k").unwrap();
        kv.set("k", b"x").unwrap();
        assert!(!kv.cas_swap(c, b"c").unwrap(), "exact on a present key");
        assert!(kv.increment("k", 1).is_err(), "no counter");
        kv.set("n", &3i64.to_le_bytes()).unwrap();
        let batch = kv.get_many(&["n".into(), "none".into()]).unwrap();
        assert_eq!(
            batch,
            vec![("n".to_string(), Some(3i64.to_le_bytes().to_vec()))]
        );
    }

    #[test]
    fn spin_redis_mode_reports_every_swap_failed_and_breaks_batches() {
        let kv = MemoryKv::new(KvMode::SpinRedis);
        let (_, a) = kv.cas_begin("k").unwrap();
        assert!(!kv.cas_swap(a, b"a").unwrap(), "reported failed…");
        assert_eq!(
            kv.get("k").unwrap().as_deref(),
            Some(&b"a"[..]),
            "…yet stored"
        );
        let (_, b) = kv.cas_begin("k").unwrap();
        kv.set("k", b"a").unwrap(); // the same bytes, but a write: WATCH aborts
        assert!(!kv.cas_swap(b, b"b").unwrap());
        assert_eq!(kv.get("k").unwrap().as_deref(), Some(&b"a"[..]));
        assert!(kv.get_many(&["k".into(), "j".into()]).is_err());
        assert_eq!(
            kv.get_many(&["k".into()]).unwrap(),
            vec![("k".to_string(), None)]
        );
        assert_eq!(kv.increment("n", 12).unwrap(), 12);
        assert_eq!(kv.get("n").unwrap().as_deref(), Some(&b"12"[..]));
    }

    // --- Portable is exact over every mode.

    fn each_mode(test: impl Fn(KvMode, std::sync::Arc<MemoryStorage>)) {
        for mode in KvMode::ALL {
            test(
                mode,
                std::sync::Arc::new(MemoryStorage::in_memory_like(mode)),
            );
        }
    }

    /// `threads` threads run `f(thread index)` at once (as concurrent requests do).
    fn race<T: Send>(threads: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
        let barrier = std::sync::Barrier::new(threads);
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|i| {
                    let (f, barrier) = (&f, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        f(i)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    #[test]
    fn exactly_one_creator_of_a_new_key_in_every_mode() {
        each_mode(|mode, s| {
            for round in 0..20 {
                let key = format!("ev/{round}");
                let created = race(8, |i| s.create_json(&key, &i).unwrap());
                assert_eq!(created.iter().filter(|c| **c).count(), 1, "{mode:?}");
                let winner = created.iter().position(|c| *c).unwrap();
                assert_eq!(s.get_json::<usize>(&key).unwrap(), Some(winner), "{mode:?}");
            }
        });
    }

    #[test]
    fn identical_values_from_two_writers_still_have_one_creator() {
        each_mode(|mode, s| {
            for round in 0..20 {
                let key = format!("same/{round}");
                let created = race(4, |_| s.create_json(&key, &"same").unwrap());
                assert_eq!(created.iter().filter(|c| **c).count(), 1, "{mode:?}");
            }
        });
    }

    #[test]
    fn concurrent_updates_of_a_new_key_lose_nothing_in_every_mode() {
        each_mode(|mode, s| {
            race(8, |i| {
                for j in 0..25 {
                    s.add_to_list("list", &format!("{i}-{j}")).unwrap();
                }
            });
            let list = s.get_json::<Vec<String>>("list").unwrap().unwrap();
            assert_eq!(list.len(), 200, "{mode:?}");
        });
    }

    #[test]
    fn an_update_reports_its_own_write_once_in_every_mode() {
        // Each writer claims the value only while it is unclaimed: exactly one
        // update_if may report the change as its own.
        each_mode(|mode, s| {
            for round in 0..20 {
                let key = format!("claim/{round}");
                s.put_json(&key, &0usize).unwrap();
                let mine = race(6, |i| {
                    s.update_if::<usize, _>(&key, |v| {
                        if *v != 0 {
                            return false;
                        }
                        *v = i + 1;
                        true
                    })
                    .unwrap()
                    .is_some()
                });
                assert_eq!(mine.iter().filter(|m| **m).count(), 1, "{mode:?}");
            }
        });
    }

    #[test]
    fn batch_reads_fall_back_where_the_host_cannot_batch() {
        each_mode(|mode, s| {
            s.put_json("a", &1).unwrap();
            s.increment("n", 5).unwrap();
            s.create_json("c", &"x").unwrap();
            let keys: Vec<String> = ["a", "none", "n", "c"].map(String::from).into();
            let values = s.get_many(&keys).unwrap();
            assert_eq!(values[0].as_deref(), Some(&b"1"[..]), "{mode:?}");
            assert_eq!(values[1], None, "{mode:?}");
            assert_eq!(
                values[3].as_deref(),
                Some(&b"\"x\""[..]),
                "tag stripped: {mode:?}"
            );
            assert_eq!(s.counters(&keys[2..3]).unwrap(), vec![5], "{mode:?}");
            assert_eq!(
                s.get_many(&keys[..1]).unwrap()[0].as_deref(),
                Some(&b"1"[..])
            );
            // A key asked for twice is answered twice (a caller reading a
            // record once per entry that names it gets it each time).
            let twice: Vec<String> = ["a", "c", "a"].map(String::from).into();
            let values = s.get_many(&twice).unwrap();
            assert_eq!(values[0], values[2], "{mode:?}");
            assert_eq!(values[2].as_deref(), Some(&b"1"[..]), "{mode:?}");
        });
    }

    #[test]
    fn a_deleted_key_is_created_afresh_without_waiting() {
        each_mode(|mode, s| {
            assert!(s.create_json("k", &1).unwrap());
            s.delete("k").unwrap();
            let started = std::time::Instant::now();
            assert!(s.create_json("k", &2).unwrap(), "{mode:?}");
            assert!(
                started.elapsed() < std::time::Duration::from_millis(500),
                "{mode:?}"
            );
            assert_eq!(s.get_json::<i32>("k").unwrap(), Some(2));
        });
    }

    #[test]
    fn a_creator_that_died_after_its_claim_does_not_block_the_key() {
        each_mode(|mode, s| {
            // The claim was taken, but its write never happened.
            s.increment(&crate::keys::creation_claim("k"), 1).unwrap();
            assert!(s.create_json("k", &7).unwrap(), "{mode:?}");
            assert_eq!(s.get_json::<i32>("k").unwrap(), Some(7));
        });
    }

    #[test]
    fn writer_tags_are_unique_and_stripped() {
        let a = tagged(b"v");
        let b = tagged(b"v");
        assert_ne!(a, b);
        assert!(has_tag(&a));
        assert_eq!(visible(Some(a)).as_deref(), Some(&b"v"[..]));
        assert_eq!(visible(Some(tagged(PLACEHOLDER))), None);
        assert_eq!(
            visible(Some(b"plain".to_vec())).as_deref(),
            Some(&b"plain"[..])
        );
        assert_eq!(
            visible(Some(7i64.to_le_bytes().to_vec())).as_deref(),
            Some(&7i64.to_le_bytes()[..])
        );
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
