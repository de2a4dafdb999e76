//! A spin lock for the kernel's few globals. The kernel is single-CPU
//! and runs with IF = 0, so the lock is never contended; it exists to make
//! the globals `Sync` without `static mut`.

use core::sync::atomic::{AtomicBool, Ordering};

/// A `lock_api::RawMutex` over an `AtomicBool`.
pub struct RawSpin(AtomicBool);

// SAFETY: `lock` only returns once the flag was flipped from false to
// true by this call, and `unlock` clears it: mutual exclusion holds.
unsafe impl lock_api::RawMutex for RawSpin {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = RawSpin(AtomicBool::new(false));
    type GuardMarker = lock_api::GuardNoSend;

    fn lock(&self) {
        while !self.try_lock() {
            core::hint::spin_loop();
        }
    }

    fn try_lock(&self) -> bool {
        self.0
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    unsafe fn unlock(&self) {
        self.0.store(false, Ordering::Release);
    }
}

/// A mutex for kernel globals.
pub type Mutex<T> = lock_api::Mutex<RawSpin, T>;
