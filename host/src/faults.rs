//! Injected key-value failures, for tests of how components behave when the
//! store fails (test mode only): the next N store operations return an error.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Clone, Default)]
pub struct Faults {
    skip: Arc<AtomicU64>,
    fail_next: Arc<AtomicU64>,
}

impl Faults {
    /// Let `skip` operations through, then fail the `n` after them.
    pub fn fail(&self, skip: u64, n: u64) {
        self.fail_next.store(n, Ordering::SeqCst);
        self.skip.store(skip, Ordering::SeqCst);
    }

    /// `Err` while injected failures remain (each call uses one up).
    pub fn check(&self) -> Result<(), String> {
        if self
            .skip
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Ok(());
        }
        let taken = self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        match taken {
            Ok(_) => Err("injected key-value failure (test mode)".to_string()),
            Err(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_then_fails_then_recovers() {
        let f = Faults::default();
        f.fail(2, 1);
        assert!(f.check().is_ok() && f.check().is_ok());
        assert!(f.check().is_err());
        assert!(f.check().is_ok());
    }
}
