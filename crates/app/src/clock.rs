//! The clock: the one place Candor reads the time, so tests can move it.

use std::sync::atomic::{AtomicI64, Ordering};

use candor_domain::Micros;

pub trait Clock: Send + Sync {
    fn now(&self) -> Micros;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Micros {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as Micros)
            .unwrap_or(0)
    }
}

/// A clock tests set by hand.
#[derive(Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(at: Micros) -> Self {
        ManualClock(AtomicI64::new(at))
    }
    pub fn set(&self, at: Micros) {
        self.0.store(at, Ordering::SeqCst);
    }
    pub fn advance(&self, by: Micros) {
        self.0.fetch_add(by, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Micros {
        self.0.load(Ordering::SeqCst)
    }
}
