//! The wall clock components see. In test mode it can be moved (forward or back)
//! at run time, so that tests let days pass without sleeping; components read it
//! through the ordinary `wasi:clocks/wall-clock` and are not changed for it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wasmtime_wasi::HostWallClock;

/// Offset (in nanoseconds) added to the real clock; shared by all requests.
#[derive(Clone, Default)]
pub struct ShiftableClock {
    offset_nanos: Arc<AtomicI64>,
}

impl ShiftableClock {
    fn real_nanos() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as i64
    }

    pub fn now_nanos(&self) -> i64 {
        Self::real_nanos() + self.offset_nanos.load(Ordering::SeqCst)
    }

    /// Make "now" be `unix_nanos`; the clock keeps running from there.
    pub fn set_now(&self, unix_nanos: i64) {
        self.offset_nanos
            .store(unix_nanos - Self::real_nanos(), Ordering::SeqCst);
    }
}

impl HostWallClock for ShiftableClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }

    fn now(&self) -> Duration {
        Duration::from_nanos(self.now_nanos().max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts_and_keeps_running() {
        let c = ShiftableClock::default();
        let target = 1_900_000_000_000_000_000i64;
        c.set_now(target);
        let now = c.now_nanos();
        assert!(now >= target && now - target < 1_000_000_000);
        assert!(HostWallClock::now(&c).as_secs() >= 1_900_000_000);
    }
}
