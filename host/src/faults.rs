//! Injected key-value failures, for tests of how components behave when the
//! store fails (test mode only): the next N store operations return an error.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Clone, Default)]
pub struct Faults {
    fail_next: Arc<AtomicU64>,
}

impl Faults {
    pub fn fail_next(&self, n: u64) {
        self.fail_next.store(n, Ordering::SeqCst);
    }

    /// `Err` while injected failures remain (each call uses one up).
    pub fn check(&self) -> Result<(), String> {
        let taken = self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        match taken {
            Ok(_) => Err("injected key-value failure (test mode)".to_string()),
            Err(_) => Ok(()),
        }
    }
}
