//! A key-value store on Redis, kept the way Spin's `type = "redis"` store keeps
//! it, so the same Redis can be shared with `spin up` or with other hosts:
//! keys as given (one Redis database per store label), values as raw bytes,
//! `increment` as `INCRBY` (the counter is then the number in decimal text).
//!
//! Compare-and-swap is one Lua script that compares and writes atomically on
//! the server: no `WATCH` state is left on a connection between the guest's
//! read and its swap, and a lost race is always reported as one.

use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result};
use redis::{Commands, Connection};

use crate::kv::KvResult;

pub struct RedisKv {
    client: redis::Client,
    /// Idle connections (each request borrows one per operation).
    pool: Mutex<Vec<Connection>>,
    swap_if: redis::Script,
}

/// KEYS[1]: the key. ARGV[1]: "1" if it must hold ARGV[2], "0" if it must be
/// absent. ARGV[3]: the new value. Returns 1 if written.
const SWAP_IF: &str = r#"
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
elseif current then
  return 0
end
redis.call('SET', KEYS[1], ARGV[3])
return 1
"#;

const IDLE_CONNECTIONS: usize = 32;
/// A Redis that does not answer makes requests fail (503) rather than hang.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a Redis URL points, for messages: host and port only, as the URL may
/// carry a password.
pub fn redacted(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .map(|u| {
            format!(
                "{}:{}",
                u.host_str().unwrap_or("?"),
                u.port().unwrap_or(6379)
            )
        })
        .unwrap_or_else(|| "(an unparsable URL)".into())
}

/// A connection with the timeouts above.
fn connect(client: &redis::Client) -> redis::RedisResult<Connection> {
    let conn = client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
    conn.set_read_timeout(Some(OPERATION_TIMEOUT))?;
    conn.set_write_timeout(Some(OPERATION_TIMEOUT))?;
    Ok(conn)
}

impl RedisKv {
    /// Connect (once, to fail at start-up with a clear message rather than on
    /// the first request).
    pub fn open(label: &str, url: &str) -> Result<RedisKv> {
        let at = redacted(url);
        let client = redis::Client::open(url)
            .with_context(|| format!("key-value store `{label}`: bad Redis URL (for {at})"))?;
        let mut conn = connect(&client).with_context(|| {
            format!("key-value store `{label}`: cannot reach Redis at {at} (is it running?)")
        })?;
        redis::cmd("PING")
            .query::<String>(&mut conn)
            .with_context(|| {
                format!("key-value store `{label}`: Redis at {at} does not answer PING")
            })?;
        Ok(RedisKv {
            client,
            pool: Mutex::new(vec![conn]),
            swap_if: redis::Script::new(SWAP_IF),
        })
    }

    fn with<R>(&self, f: impl FnOnce(&mut Connection) -> redis::RedisResult<R>) -> KvResult<R> {
        let pooled = self.pool.lock().unwrap().pop();
        let mut conn = match pooled {
            Some(c) => c,
            None => connect(&self.client)
                .map_err(|e| format!("key-value store error: cannot reach Redis: {e}"))?,
        };
        let result = f(&mut conn);
        match &result {
            Ok(_) => {
                let mut pool = self.pool.lock().unwrap();
                if pool.len() < IDLE_CONNECTIONS {
                    pool.push(conn);
                }
            }
            // Redis went away (restart, network): the idle connections are as
            // dead as this one. Drop them all, so once it is back the next
            // request connects afresh instead of failing on each stale one.
            Err(e) if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() => {
                self.pool.lock().unwrap().clear();
            }
            Err(_) => {}
        }
        result.map_err(|e| format!("key-value store error (Redis): {e}"))
    }

    pub fn get(&self, key: &str) -> KvResult<Option<Vec<u8>>> {
        self.with(|c| c.get(key))
    }

    pub fn set(&self, key: &str, value: &[u8]) -> KvResult<()> {
        self.with(|c| c.set(key, value))
    }

    pub fn delete(&self, key: &str) -> KvResult<()> {
        self.with(|c| c.del(key))
    }

    pub fn exists(&self, key: &str) -> KvResult<bool> {
        self.with(|c| c.exists(key))
    }

    /// Every key (SCAN, not KEYS: the server is not blocked while it lists).
    pub fn list_keys(&self) -> KvResult<Vec<String>> {
        self.with(|c| c.scan::<String>()?.collect())
    }

    pub fn get_many(&self, keys: &[String]) -> KvResult<Vec<Option<Vec<u8>>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.with(|c| redis::cmd("MGET").arg(keys).query(c))
    }

    pub fn set_many(&self, pairs: &[(String, Vec<u8>)]) -> KvResult<()> {
        if pairs.is_empty() {
            return Ok(());
        }
        self.with(|c| c.mset(pairs))
    }

    pub fn delete_many(&self, keys: &[String]) -> KvResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        self.with(|c| c.del(keys))
    }

    pub fn increment(&self, key: &str, delta: i64) -> KvResult<i64> {
        self.with(|c| c.incr(key, delta))
    }

    pub fn swap_if(&self, key: &str, expected: Option<&[u8]>, value: &[u8]) -> KvResult<bool> {
        self.with(|c| {
            let mut call = self.swap_if.key(key);
            match expected {
                Some(v) => call.arg("1").arg(v),
                None => call.arg("0").arg(""),
            };
            call.arg(value).invoke::<i64>(c).map(|n| n == 1)
        })
    }
}
