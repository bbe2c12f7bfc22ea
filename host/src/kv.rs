//! `wasi:keyvalue@0.2.0-draft2` (store, atomics, batch) on SQLite.
//!
//! One database file, one table shaped like Spin's own SQLite store
//! (`spin_key_value(store, key, value)`), counters kept as 8-byte little-endian
//! `i64` as Spin keeps them. WAL mode with `synchronous=NORMAL` keeps every
//! committed write across a process kill, and a thread of its own
//! checkpoints the WAL, so no commit pays for it; a small pool of connections lets reads
//! run beside a write, and each operation is its own short transaction, so no
//! lock is held across a request.
//!
//! A label the runtime config puts on Redis (`runtime_config.rs`) is served by
//! `kv_redis.rs` instead; every operation below picks its backend by label.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// How long a store call waits on a lock another process holds.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

use anyhow::{Context, Result};
use rusqlite::{params, Connection, OptionalExtension};
use wasmtime::component::Resource;

use crate::bindings::wasi::keyvalue::{atomics, batch, store};
use crate::kv_redis::RedisKv;
use crate::runtime_config::{RuntimeConfig, StoreConfig};
use crate::state::RequestState;

/// The key-value stores shared by every request and component: SQLite, and
/// Redis for the labels the runtime config puts there.
pub struct KvStore {
    path: std::path::PathBuf,
    pool: Mutex<Vec<Connection>>,
    /// The one connection that writes, held by the one thread writing at a
    /// time (see `with_write`), and used by short reads when free (see
    /// `with_read`). Its page cache stays warm: no other connection of this
    /// process writes. It never waits in SQLite's busy handler but in
    /// `with_write`'s retry.
    writer: std::sync::Arc<Mutex<Connection>>,
    /// Its holder waits on a lock another process holds.
    writer_stalled: AtomicBool,
    /// Labels the runtime config puts on Redis.
    redis: HashMap<String, RedisKv>,
    /// When the WAL is made to start over ([`WAL_RESTART_PAGES`]).
    wal_restart_pages: i64,
}

/// How often the WAL is copied back into the database (see `checkpoints`).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// The page size of a new database (see `connect`).
const PAGE_SIZE: i64 = 2048;

/// A WAL longer than this (64 MiB of new pages) is checkpointed once more
/// with the writes held off, so that the next write starts it over. Each
/// such hold lasts 4–23 ms (mostly its two `fsync`s), and every write
/// waits it out: at 16 MiB it came every ~1,600 answers in the bench and
/// set the answers' p99 (11–22 ms in five quick runs, 9–14 ms at 64 MiB).
const WAL_RESTART_PAGES: i64 = (64 << 20) / PAGE_SIZE;

/// The longest a `RESTART` checkpoint waits for readers, writes held off.
const RESTART_WAIT: Duration = Duration::from_millis(50);

/// A `bucket` resource: an opened store label.
pub struct Bucket {
    label: String,
}

/// A `cas` resource: the value a key had when the handle was made.
pub struct Cas {
    label: String,
    key: String,
    original: Option<Vec<u8>>,
}

pub(crate) type KvResult<T> = std::result::Result<T, String>;

impl KvStore {
    /// The SQLite store at `path`, plus the Redis stores `config` names.
    pub fn open(path: &Path, config: &RuntimeConfig) -> Result<KvStore> {
        KvStore::open_restarting_at(path, config, WAL_RESTART_PAGES)
    }

    /// [`KvStore::open`], the WAL made to start over past `wal_restart_pages`.
    fn open_restarting_at(
        path: &Path,
        config: &RuntimeConfig,
        wal_restart_pages: i64,
    ) -> Result<KvStore> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
        }
        let mut store = KvStore {
            path: path.to_path_buf(),
            pool: Mutex::new(Vec::new()),
            writer: std::sync::Arc::new(Mutex::new(connect_writer(path, wal_restart_pages)?)),
            writer_stalled: AtomicBool::new(false),
            redis: HashMap::new(),
            wal_restart_pages,
        };
        let conn = connect(path, wal_restart_pages)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS spin_key_value (
                store TEXT NOT NULL,
                key   TEXT NOT NULL,
                value BLOB NOT NULL,
                PRIMARY KEY (store, key)
            );",
        )?;
        store.pool.lock().unwrap().push(conn);
        store.checkpoints()?;
        for (label, c) in &config.key_value_stores {
            if let StoreConfig::Redis { url } = c {
                store
                    .redis
                    .insert(label.clone(), RedisKv::open(label, url)?);
            }
        }
        Ok(store)
    }

    /// A thread of its own that checkpoints the WAL every
    /// [`CHECKPOINT_EVERY`], so a commit never pays for the copy. `PASSIVE`
    /// never waits for, nor blocks, a reader or a writer; but under steady
    /// writes it never catches up with the WAL's end, and a WAL starts over
    /// only from a write that finds it all copied and no reader in it. So a
    /// WAL grown past [`WAL_RESTART_PAGES`] is checkpointed again with the
    /// writes held off (`RESTART`: the pages written meanwhile, then a wait
    /// for the readers in the WAL, microseconds each), and the next write
    /// starts it over: the WAL stays bounded (it reached 12 GB in a
    /// 100k-survey bench run without this; `journal_size_limit` then cuts
    /// the file back). The thread stops when the store is dropped.
    fn checkpoints(&self) -> Result<()> {
        let conn = connect(&self.path, self.wal_restart_pages)?;
        let restart_pages = self.wal_restart_pages;
        // A reader that stays in the WAL (another process's long read) makes
        // a RESTART give up after this, writes held off no longer: the
        // next period tries again.
        conn.busy_timeout(RESTART_WAIT)?;
        let writer = std::sync::Arc::downgrade(&self.writer);
        // (busy, pages in the WAL, pages copied): the pages in the WAL.
        let checkpoint = move |mode: &str| -> rusqlite::Result<i64> {
            conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| r.get(1))
        };
        std::thread::Builder::new()
            .name("wal-checkpoint".into())
            .spawn(move || loop {
                std::thread::sleep(CHECKPOINT_EVERY);
                let Some(writer) = writer.upgrade() else {
                    return;
                };
                let done = checkpoint("PASSIVE").and_then(|pages| match pages > restart_pages {
                    true => {
                        let _no_writes = writer.lock().unwrap_or_else(|e| e.into_inner());
                        checkpoint("RESTART")
                    }
                    false => Ok(pages),
                });
                if let Err(e) = done {
                    eprintln!("warning: key-value store checkpoint failed (retried): {e}");
                }
            })?;
        Ok(())
    }

    /// A write: one writer of this process at a time. SQLite allows one
    /// writer anyway; waiting on this lock instead of in SQLite's busy
    /// handler, which sleeps in steps of up to 100 ms, keeps writes close
    /// together under load.
    ///
    /// A lock held by another process (SQLite answers "busy" at once: the
    /// first try waits for nothing) is waited for off the async runtime, and
    /// so is this lock while its holder waits so: then only the requests that
    /// need the store wait, and the others go on being served.
    fn with_write<R>(
        &self,
        mut f: impl FnMut(&mut Connection) -> rusqlite::Result<R>,
    ) -> KvResult<R> {
        let lock = || self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut c = if self.writer_stalled.load(Ordering::Acquire) {
            off_runtime(lock)
        } else {
            lock()
        };
        let mut write = || -> rusqlite::Result<R> {
            let first = f(&mut c);
            let busy = matches!(&first, Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::DatabaseBusy);
            if !busy {
                return first;
            }
            self.writer_stalled.store(true, Ordering::Release);
            let waited = off_runtime(|| {
                c.busy_timeout(BUSY_TIMEOUT)?;
                let waited = f(&mut c);
                c.busy_timeout(Duration::ZERO)?;
                waited
            });
            self.writer_stalled.store(false, Ordering::Release);
            waited
        };
        write().map_err(|e| format!("key-value store error: {e}"))
    }

    /// A short read: on the writer's connection when no write holds it (its
    /// page cache is the warm one; every write empties the other
    /// connections' caches), else on a pooled connection.
    fn with_read<R>(
        &self,
        mut f: impl FnMut(&mut Connection) -> rusqlite::Result<R>,
    ) -> KvResult<R> {
        if !self.writer_stalled.load(Ordering::Acquire) {
            if let Ok(mut c) = self.writer.try_lock() {
                match f(&mut c) {
                    // (The writer's connection does not wait: a pooled one does.)
                    Err(rusqlite::Error::SqliteFailure(e, _))
                        if e.code == rusqlite::ErrorCode::DatabaseBusy => {}
                    done => return done.map_err(|e| format!("key-value store error: {e}")),
                }
            }
        }
        self.with_conn(f)
    }

    fn with_conn<R>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<R>) -> KvResult<R> {
        let pooled = self.pool.lock().unwrap().pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => connect(&self.path, self.wal_restart_pages).map_err(|e| format!("{e:#}"))?,
        };
        let result = f(&mut conn).map_err(|e| format!("key-value store error: {e}"));
        let mut pool = self.pool.lock().unwrap();
        if pool.len() < 16 {
            pool.push(conn);
        }
        result
    }

    pub fn get(&self, label: &str, key: &str) -> KvResult<Option<Vec<u8>>> {
        if let Some(r) = self.redis.get(label) {
            return r.get(key);
        }
        self.with_read(|c| read_value(c, label, key))
    }

    pub fn set(&self, label: &str, key: &str, value: &[u8]) -> KvResult<()> {
        if let Some(r) = self.redis.get(label) {
            return r.set(key, value);
        }
        self.with_write(|c| write_value(c, label, key, value))
    }

    pub fn delete(&self, label: &str, key: &str) -> KvResult<()> {
        if let Some(r) = self.redis.get(label) {
            return r.delete(key);
        }
        self.with_write(|c| {
            c.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                .execute(params![label, key])
                .map(drop)
        })
    }

    pub fn exists(&self, label: &str, key: &str) -> KvResult<bool> {
        if let Some(r) = self.redis.get(label) {
            return r.exists(key);
        }
        Ok(self.get(label, key)?.is_some())
    }

    pub fn list_keys(&self, label: &str) -> KvResult<Vec<String>> {
        if let Some(r) = self.redis.get(label) {
            return r.list_keys();
        }
        self.with_conn(|c| {
            let mut stmt = c.prepare_cached("SELECT key FROM spin_key_value WHERE store = ?1")?;
            let keys = stmt.query_map(params![label], |r| r.get(0))?.collect();
            keys
        })
    }

    /// Atomically add `delta` to the counter at `key` (absent counts as 0) and
    /// return the new value. SQLite keeps it as 8 little-endian bytes, Redis
    /// as `INCRBY` does (decimal text), each as Spin's store of that kind.
    pub fn increment(&self, label: &str, key: &str, delta: i64) -> KvResult<i64> {
        if let Some(r) = self.redis.get(label) {
            return r.increment(key, delta);
        }
        let mut bad_value = false;
        let result = self.with_write(|c| {
            in_transaction(c, Begin::Write, |tx| {
                let current = read_value(tx, label, key)?;
                let current = match current.as_deref().map(<[u8; 8]>::try_from) {
                    None => 0,
                    Some(Ok(bytes)) => i64::from_le_bytes(bytes),
                    Some(Err(_)) => {
                        bad_value = true;
                        return Ok(0);
                    }
                };
                let next = current.wrapping_add(delta);
                write_value(tx, label, key, &next.to_le_bytes())?;
                Ok(next)
            })
        });
        if bad_value {
            return Err(format!("`{key}` does not hold an 8-byte counter"));
        }
        result
    }

    /// Write `value` only if `key` still holds `expected` (`None`: still absent).
    /// Returns whether the write happened.
    pub fn swap_if(
        &self,
        label: &str,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> KvResult<bool> {
        if let Some(r) = self.redis.get(label) {
            return r.swap_if(key, expected, value);
        }
        self.with_write(|c| {
            in_transaction(c, Begin::Write, |tx| {
                let current = read_value(tx, label, key)?;
                if current.as_deref() != expected {
                    return Ok(false);
                }
                write_value(tx, label, key, value)?;
                Ok(true)
            })
        })
    }

    pub fn get_many(&self, label: &str, keys: &[String]) -> KvResult<Vec<Option<Vec<u8>>>> {
        if let Some(r) = self.redis.get(label) {
            return r.get_many(keys);
        }
        self.with_read(|c| {
            in_transaction(c, Begin::Read, |tx| {
                keys.iter().map(|key| read_value(tx, label, key)).collect()
            })
        })
    }

    pub fn set_many(&self, label: &str, pairs: &[(String, Vec<u8>)]) -> KvResult<()> {
        if let Some(r) = self.redis.get(label) {
            return r.set_many(pairs);
        }
        self.with_write(|c| {
            in_transaction(c, Begin::Write, |tx| {
                pairs
                    .iter()
                    .try_for_each(|(k, v)| write_value(tx, label, k, v))
            })
        })
    }

    pub fn delete_many(&self, label: &str, keys: &[String]) -> KvResult<()> {
        if let Some(r) = self.redis.get(label) {
            return r.delete_many(keys);
        }
        self.with_write(|c| {
            in_transaction(c, Begin::Write, |tx| {
                let mut stmt =
                    tx.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?;
                for k in keys {
                    stmt.execute(params![label, k])?;
                }
                Ok(())
            })
        })
    }
}

fn other(e: String) -> store::Error {
    store::Error::Other(e)
}

impl RequestState {
    fn bucket(&mut self, b: &Resource<Bucket>) -> wasmtime::Result<String> {
        self.kv_ops += 1;
        Ok(self.table.get(b)?.label.clone())
    }
}

/// The value at `key` in store `label` (statements are prepared once per
/// connection).
fn read_value(c: &Connection, label: &str, key: &str) -> rusqlite::Result<Option<Vec<u8>>> {
    c.prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?
        .query_row(params![label, key], |r| r.get(0))
        .optional()
}

/// Store `value` at `key` in store `label`, over what was there.
fn write_value(c: &Connection, label: &str, key: &str, value: &[u8]) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![label, key, value])
    .map(drop)
}

/// How a transaction begins: a write takes SQLite's write lock at once
/// (`IMMEDIATE`: it cannot fail half-way for want of it), a read takes a
/// snapshot at its first statement.
#[derive(Clone, Copy)]
enum Begin {
    Write,
    Read,
}

/// `f` in one transaction, committed when it returns `Ok`, else rolled back.
/// Its `BEGIN` and `COMMIT` are prepared once per connection (rusqlite's
/// `Transaction` parses them again on every call: a few percent of a
/// store operation's cost in the bench's profile).
fn in_transaction<R>(
    c: &Connection,
    begin: Begin,
    f: impl FnOnce(&Connection) -> rusqlite::Result<R>,
) -> rusqlite::Result<R> {
    let begin = match begin {
        Begin::Write => "BEGIN IMMEDIATE",
        Begin::Read => "BEGIN",
    };
    c.prepare_cached(begin)?.execute([])?;
    let done = f(c).and_then(|r| {
        c.prepare_cached("COMMIT")?.execute([])?;
        Ok(r)
    });
    if done.is_err() && !c.is_autocommit() {
        let _ = c.prepare_cached("ROLLBACK").and_then(|mut s| s.execute([]));
    }
    done
}

/// A connection to the database at `path`, set up as every connection here
/// is; a WAL that starts over past `wal_restart_pages` is cut back to that.
fn connect(path: &Path, wal_restart_pages: i64) -> Result<Connection> {
    let conn = Connection::open(path)
        .with_context(|| format!("cannot open the key-value database {}", path.display()))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // A new database's pages: every commit writes the pages it changed
    // whole to the WAL, and most values here are a few hundred bytes to
    // 2 KB. Measured on a satisfied answer's five operations against 4 KiB
    // pages: 15% less time with 600-byte histories, a third less with
    // 2 KB ones (which split 4 KiB leaves). (No effect on a database that
    // exists: SQLite keeps its page size.)
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // No commit copies the WAL back into the database (SQLite's default
    // every 1,000 pages, an fsync inside the write lock that every writer
    // queued behind waits for): `KvStore::checkpoints` does it beside them.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    // A WAL that starts over is cut back to this size on disk.
    conn.pragma_update(None, "journal_size_limit", wal_restart_pages * PAGE_SIZE)?;
    Ok(conn)
}

/// The writer's connection: it answers "busy" at once (see `with_write`).
fn connect_writer(path: &Path, wal_restart_pages: i64) -> Result<Connection> {
    let conn = connect(path, wal_restart_pages)?;
    conn.busy_timeout(Duration::ZERO)?;
    Ok(conn)
}

/// Wait for something that may take long (a lock another process holds)
/// without stalling the async runtime: the worker thread hands its other
/// connections to the rest of the pool first. Only where waiting is certain:
/// on every store call it cost about 40 ms of p99 latency in the bench.
fn off_runtime<T>(call: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(call)
        }
        _ => call(),
    }
}

impl store::Host for RequestState {
    fn open(
        &mut self,
        identifier: String,
    ) -> wasmtime::Result<Result<Resource<Bucket>, store::Error>> {
        if !self.component.key_value_stores.contains(&identifier) {
            return Ok(Err(store::Error::AccessDenied));
        }
        Ok(Ok(self.table.push(Bucket { label: identifier })?))
    }
}

impl store::HostBucket for RequestState {
    fn get(
        &mut self,
        b: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, store::Error>> {
        let label = self.bucket(&b)?;
        Ok(self
            .faults
            .check()
            .and_then(|_| self.kv.get(&label, &key))
            .map_err(other))
    }

    fn set(
        &mut self,
        b: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), store::Error>> {
        let label = self.bucket(&b)?;
        Ok(self
            .faults
            .check()
            .and_then(|_| self.kv.set(&label, &key, &value))
            .map_err(other))
    }

    fn delete(
        &mut self,
        b: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<(), store::Error>> {
        let label = self.bucket(&b)?;
        Ok(self
            .faults
            .check()
            .and_then(|_| self.kv.delete(&label, &key))
            .map_err(other))
    }

    fn exists(
        &mut self,
        b: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<bool, store::Error>> {
        let label = self.bucket(&b)?;
        Ok(self
            .faults
            .check()
            .and_then(|_| self.kv.exists(&label, &key))
            .map_err(other))
    }

    fn list_keys(
        &mut self,
        b: Resource<Bucket>,
        _cursor: Option<String>,
    ) -> wasmtime::Result<Result<store::KeyResponse, store::Error>> {
        let label = self.bucket(&b)?;
        Ok(self
            .faults
            .check()
            .and_then(|_| self.kv.list_keys(&label))
            .map(|keys| store::KeyResponse { keys, cursor: None })
            .map_err(other))
    }

    fn drop(&mut self, b: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(b)?;
        Ok(())
    }
}

impl atomics::HostCas for RequestState {
    fn new(
        &mut self,
        b: Resource<Bucket>,
        key: String,
    ) -> wasmtime::Result<Result<Resource<Cas>, store::Error>> {
        let label = self.bucket(&b)?;
        let original = match self.faults.check().and_then(|_| self.kv.get(&label, &key)) {
            Ok(v) => v,
            Err(e) => return Ok(Err(other(e))),
        };
        Ok(Ok(self.table.push(Cas {
            label,
            key,
            original,
        })?))
    }

    fn current(
        &mut self,
        cas: Resource<Cas>,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, store::Error>> {
        Ok(Ok(self.table.get(&cas)?.original.clone()))
    }

    fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl atomics::Host for RequestState {
    fn increment(
        &mut self,
        b: Resource<Bucket>,
        key: String,
        delta: i64,
    ) -> wasmtime::Result<Result<i64, store::Error>> {
        let label = self.bucket(&b)?;
        Ok(self
            .faults
            .check()
            .and_then(|_| self.kv.increment(&label, &key, delta))
            .map_err(other))
    }

    fn swap(
        &mut self,
        cas: Resource<Cas>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        self.kv_ops += 1;
        let (label, key, original) = {
            let c = self.table.get(&cas)?;
            (c.label.clone(), c.key.clone(), c.original.clone())
        };
        let swapped = self
            .faults
            .check()
            .and_then(|_| self.kv.swap_if(&label, &key, original.as_deref(), &value));
        Ok(match swapped {
            Ok(true) => {
                self.table.delete(cas)?;
                Ok(())
            }
            Ok(false) => Err(atomics::CasError::CasFailed(cas)),
            Err(e) => {
                self.table.delete(cas)?;
                Err(atomics::CasError::StoreError(other(e)))
            }
        })
    }
}

impl batch::Host for RequestState {
    fn get_many(
        &mut self,
        b: Resource<Bucket>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<Vec<(String, Option<Vec<u8>>)>, store::Error>> {
        let label = self.bucket(&b)?;
        Ok(self
            .faults
            .check()
            .and_then(|_| self.kv.get_many(&label, &keys))
            .map(|values| keys.into_iter().zip(values).collect())
            .map_err(other))
    }

    fn set_many(
        &mut self,
        b: Resource<Bucket>,
        pairs: Vec<(String, Vec<u8>)>,
    ) -> wasmtime::Result<Result<(), store::Error>> {
        let label = self.bucket(&b)?;
        Ok(self
            .faults
            .check()
            .and_then(|_| self.kv.set_many(&label, &pairs))
            .map_err(other))
    }

    fn delete_many(
        &mut self,
        b: Resource<Bucket>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<(), store::Error>> {
        let label = self.bucket(&b)?;
        Ok(self
            .faults
            .check()
            .and_then(|_| self.kv.delete_many(&label, &keys))
            .map_err(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempdir::TempDir, KvStore) {
        let dir = tempdir::TempDir::new();
        let kv = KvStore::open(&dir.0.join("kv.db"), &RuntimeConfig::default()).unwrap();
        (dir, kv)
    }

    /// A store whose WAL starts over past 4 MiB, so that a test gets there
    /// in a second.
    fn store_with_a_small_wal() -> (tempdir::TempDir, KvStore) {
        let dir = tempdir::TempDir::new();
        let path = dir.0.join("kv.db");
        let kv =
            KvStore::open_restarting_at(&path, &RuntimeConfig::default(), (4 << 20) / PAGE_SIZE)
                .unwrap();
        (dir, kv)
    }

    #[test]
    fn a_new_database_has_the_small_pages_and_an_old_one_keeps_its_own() {
        let page_size = |db: &Path| -> i64 {
            Connection::open(db)
                .unwrap()
                .query_row("PRAGMA page_size", [], |r| r.get(0))
                .unwrap()
        };
        let (dir, kv) = store();
        kv.set("default", "k", b"v").unwrap();
        assert_eq!(page_size(&dir.0.join("kv.db")), PAGE_SIZE);

        let old = dir.0.join("old.db");
        let c = Connection::open(&old).unwrap();
        c.execute_batch("PRAGMA page_size=4096; CREATE TABLE t(x); PRAGMA journal_mode=WAL;")
            .unwrap();
        drop(c);
        let kv = KvStore::open(&old, &RuntimeConfig::default()).unwrap();
        kv.set("default", "k", b"v").unwrap();
        assert_eq!(kv.get("default", "k").unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(page_size(&old), 4096);
    }

    #[test]
    fn the_wal_is_copied_into_the_database_beside_the_writers() {
        let (dir, kv) = store();
        let value = vec![7u8; 1024];
        for i in 0..2000 {
            kv.set("default", &format!("k{i}"), &value).unwrap();
        }
        // No commit checkpoints (`wal_autocheckpoint=0`): only the thread
        // can have moved these 2 MB out of the WAL into the database file.
        let db = dir.0.join("kv.db");
        let deadline = std::time::Instant::now() + 10 * CHECKPOINT_EVERY;
        while std::fs::metadata(&db).unwrap().len() < 2_000_000 {
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint within {:?}",
                10 * CHECKPOINT_EVERY
            );
            std::thread::sleep(CHECKPOINT_EVERY / 5);
        }
        assert_eq!(kv.get("default", "k1999").unwrap(), Some(value));
    }

    #[test]
    fn the_wal_starts_over_under_steady_writes() {
        let (dir, kv) = store_with_a_small_wal();
        let wal = dir.0.join("kv.db-wal");
        let value = vec![7u8; 2048];
        let (mut seen, mut cut_back) = (0, 0);
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            // Reads all along, as requests make them.
            s.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    kv.get("default", "k1").unwrap();
                }
            });
            // New keys (each write appends ~17 KiB of table and index pages)
            // for 15 checkpoint periods: a WAL that never started over only
            // grows (280 MB in one run); one that does is cut back each time.
            let start = std::time::Instant::now();
            let mut i = 0;
            while start.elapsed() < 15 * CHECKPOINT_EVERY {
                kv.set("default", &format!("k{i}"), &value).unwrap();
                if i % 100 == 0 {
                    let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
                    cut_back += usize::from(size < seen);
                    seen = size;
                }
                i += 1;
            }
            done.store(true, Ordering::Relaxed);
        });
        assert!(
            cut_back >= 2,
            "the WAL started over {cut_back} times under steady writes (it is {seen} bytes)"
        );
    }

    #[test]
    fn a_read_never_waits_for_a_write() {
        let (_dir, kv) = store();
        kv.set("default", "k", b"v").unwrap();
        // Through the writer's connection when it is free...
        assert_eq!(kv.get("default", "k").unwrap(), Some(b"v".to_vec()));
        // ...and through a pooled one while a write holds it.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::scope(|s| {
            let writing = kv.writer.lock().unwrap();
            s.spawn(|| tx.send(kv.get_many("default", &["k".into()])).unwrap());
            let read = rx.recv_timeout(Duration::from_secs(5));
            drop(writing);
            let read = read.expect("a read waited for the writer");
            assert_eq!(read.unwrap(), vec![Some(b"v".to_vec())]);
        });
    }

    #[test]
    fn a_long_reader_elsewhere_never_holds_the_writes_off_for_long() {
        let (dir, kv) = store_with_a_small_wal();
        let value = vec![7u8; 2048];
        let mut i = 0;
        let mut write = || {
            let t = std::time::Instant::now();
            kv.set("default", &format!("k{i}"), &value).unwrap();
            i += 1;
            t.elapsed()
        };
        // Past the restart size, with another process's read open in the WAL.
        for _ in 0..2000 {
            write();
        }
        let other = Connection::open(dir.0.join("kv.db")).unwrap();
        other.execute_batch("BEGIN").unwrap();
        let _: i64 = other
            .query_row("SELECT count(*) FROM spin_key_value", [], |r| r.get(0))
            .unwrap();
        let start = std::time::Instant::now();
        let mut slowest = Duration::ZERO;
        while start.elapsed() < 10 * CHECKPOINT_EVERY {
            slowest = slowest.max(write());
        }
        other.execute_batch("COMMIT").unwrap();
        // Each RESTART gives up after RESTART_WAIT (not the 10 s busy timeout).
        assert!(
            slowest < 10 * RESTART_WAIT,
            "a write waited {slowest:?} for a checkpoint"
        );
    }

    mod tempdir {
        pub struct TempDir(pub std::path::PathBuf);
        impl TempDir {
            pub fn new() -> TempDir {
                let p = std::env::temp_dir().join(format!(
                    "revisit-kv-test-{}-{}",
                    std::process::id(),
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_nanos()
                ));
                std::fs::create_dir_all(&p).unwrap();
                TempDir(p)
            }
        }
        impl Drop for TempDir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    /// A throwaway `redis-server` (Debian's; `./run test` installs it) on a
    /// free loopback port, killed on drop.
    struct Redis(std::process::Child, u16);

    impl Redis {
        fn start() -> Redis {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let child = std::process::Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect(
                    "redis-server is missing: install Debian's `redis-server` (./run test does)",
                );
            // Owned from here on: killed even if it never answers.
            let redis = Redis(child, port);
            let url = format!("redis://127.0.0.1:{port}");
            for _ in 0..200 {
                if redis::Client::open(url.as_str())
                    .and_then(|c| c.get_connection())
                    .is_ok()
                {
                    return redis;
                }
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
            panic!("redis-server did not start on port {port}");
        }
    }

    impl Drop for Redis {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// What every backend must do alike, through the same `KvStore` calls.
    fn behaves_like_a_spin_store(kv: &KvStore, label: &str) {
        let s = |v: &[u8]| Some(v.to_vec());
        assert_eq!(kv.get(label, "a").unwrap(), None);
        assert!(!kv.exists(label, "a").unwrap());
        kv.set(label, "a", b"\x00binary\xff").unwrap();
        assert_eq!(kv.get(label, "a").unwrap(), s(b"\x00binary\xff"));
        assert!(kv.exists(label, "a").unwrap());
        kv.set_many(
            label,
            &[("b".into(), b"2".to_vec()), ("c".into(), Vec::new())],
        )
        .unwrap();
        assert_eq!(
            kv.get_many(label, &["c".into(), "zz".into(), "b".into()])
                .unwrap(),
            vec![s(b""), None, s(b"2")]
        );
        assert_eq!(
            kv.get_many(label, &[]).unwrap(),
            Vec::<Option<Vec<u8>>>::new()
        );
        let mut keys = kv.list_keys(label).unwrap();
        keys.sort();
        assert_eq!(keys, ["a", "b", "c"]);
        kv.delete_many(label, &["b".into(), "c".into(), "never".into()])
            .unwrap();
        kv.delete(label, "a").unwrap();
        assert!(kv.list_keys(label).unwrap().is_empty());
        // Counters: absent is 0; a value that is no counter is an error.
        assert_eq!(kv.increment(label, "n", 5).unwrap(), 5);
        assert_eq!(kv.increment(label, "n", -7).unwrap(), -2);
        kv.set(label, "text", b"not a number").unwrap();
        assert!(kv.increment(label, "text", 1).is_err());
        // Compare-and-swap: against absence, against a value, and losing.
        assert!(kv.swap_if(label, "k", None, b"v1").unwrap());
        assert!(!kv.swap_if(label, "k", None, b"v2").unwrap());
        assert!(!kv.swap_if(label, "k", Some(b"other"), b"v2").unwrap());
        assert!(kv.swap_if(label, "k", Some(b"v1"), b"\x00v2").unwrap());
        assert!(kv.swap_if(label, "k", Some(b"\x00v2"), b"").unwrap());
        assert_eq!(kv.get(label, "k").unwrap(), s(b""));
        assert!(
            !kv.swap_if(label, "k", None, b"v3").unwrap(),
            "empty is not absent"
        );
    }

    #[test]
    fn sqlite_behaves_like_a_spin_store() {
        let (_d, kv) = store();
        behaves_like_a_spin_store(&kv, "default");
    }

    #[test]
    fn redis_behaves_like_a_spin_store_and_keeps_counters_as_text() {
        let redis = Redis::start();
        let url = format!("redis://127.0.0.1:{}", redis.1);
        let dir = tempdir::TempDir::new();
        let config = RuntimeConfig::parse(&format!(
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"{url}\""
        ))
        .unwrap();
        let kv = KvStore::open(&dir.0.join("kv.db"), &config).unwrap();
        behaves_like_a_spin_store(&kv, "default");
        // As Spin's Redis store keeps it (INCRBY), so both can share one Redis.
        assert_eq!(kv.get("default", "n").unwrap(), Some(b"-2".to_vec()));
        // Another label still goes to SQLite.
        kv.set("other", "n", b"sqlite").unwrap();
        assert_eq!(kv.get("default", "n").unwrap(), Some(b"-2".to_vec()));
        assert_eq!(kv.get("other", "n").unwrap(), Some(b"sqlite".to_vec()));
    }

    #[test]
    fn an_unreachable_redis_is_a_clear_start_up_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempdir::TempDir::new();
        let config = RuntimeConfig::parse(&format!(
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:{port}\""
        ))
        .unwrap();
        let err = KvStore::open(&dir.0.join("kv.db"), &config).err().unwrap();
        assert!(format!("{err:#}").contains("cannot reach Redis"), "{err:#}");
        // A password in the URL never reaches a message.
        let config = RuntimeConfig::parse(&format!(
            "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://:hunter2@127.0.0.1:{port}\""
        ))
        .unwrap();
        let err = KvStore::open(&dir.0.join("kv.db"), &config).err().unwrap();
        let message = format!("{err:#}");
        assert!(
            message.contains(&format!("127.0.0.1:{port}")) && !message.contains("hunter2"),
            "{message}"
        );
    }

    #[test]
    fn counters_are_little_endian_i64() {
        let (_d, kv) = store();
        assert_eq!(kv.increment("default", "c", 5).unwrap(), 5);
        assert_eq!(kv.increment("default", "c", -2).unwrap(), 3);
        assert_eq!(
            kv.get("default", "c").unwrap().unwrap(),
            3i64.to_le_bytes().to_vec()
        );
        kv.set("default", "s", b"text").unwrap();
        assert!(kv.increment("default", "s", 1).is_err());
    }

    #[test]
    fn swap_only_when_unchanged() {
        let (_d, kv) = store();
        assert!(kv.swap_if("default", "k", None, b"a").unwrap());
        assert!(!kv.swap_if("default", "k", None, b"b").unwrap());
        assert!(kv.swap_if("default", "k", Some(b"a"), b"c").unwrap());
        assert_eq!(kv.get("default", "k").unwrap().unwrap(), b"c");
    }

    #[test]
    fn stores_are_separate_and_batches_work() {
        let (_d, kv) = store();
        kv.set_many(
            "default",
            &[("a".into(), b"1".to_vec()), ("b".into(), b"2".to_vec())],
        )
        .unwrap();
        kv.set("other", "a", b"x").unwrap();
        let got = kv
            .get_many("default", &["a".into(), "zz".into(), "b".into()])
            .unwrap();
        assert_eq!(got, vec![Some(b"1".to_vec()), None, Some(b"2".to_vec())]);
        kv.delete_many("default", &["a".into()]).unwrap();
        assert!(!kv.exists("default", "a").unwrap());
        assert_eq!(kv.get("other", "a").unwrap().unwrap(), b"x");
        assert_eq!(kv.list_keys("default").unwrap(), vec!["b".to_string()]);
    }

    /// `add_one` run 100 times on each of 8 threads sharing one store.
    fn on_8_threads(kv: &KvStore, add_one: impl Fn(&KvStore) + Sync) {
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| (0..100).for_each(|_| add_one(kv)));
            }
        });
    }

    #[test]
    fn concurrent_increments_are_exact() {
        let (_d, kv) = store();
        on_8_threads(&kv, |kv| {
            kv.increment("default", "n", 1).unwrap();
        });
        assert_eq!(kv.increment("default", "n", 0).unwrap(), 800);
    }

    /// Read-then-swap loops from many threads lose no update: a swap lands
    /// only on the value its writer read (absent included).
    #[test]
    fn concurrent_swaps_are_exact() {
        let (_d, kv) = store();
        on_8_threads(&kv, |kv| loop {
            let current = kv.get("default", "n").unwrap();
            let n: u32 = current
                .as_deref()
                .map_or(0, |b| std::str::from_utf8(b).unwrap().parse().unwrap());
            let next = (n + 1).to_string();
            if kv
                .swap_if("default", "n", current.as_deref(), next.as_bytes())
                .unwrap()
            {
                break;
            }
        });
        assert_eq!(
            kv.get("default", "n").unwrap().as_deref(),
            Some(&b"800"[..])
        );
    }
}
