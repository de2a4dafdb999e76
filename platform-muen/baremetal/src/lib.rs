//! Support code every bare-metal binary of the workspace needs (the subject
//! runtime and the minimal kernel): the few C symbols the precompiled
//! `core`/`alloc`, `compiler_builtins` and ring's C code expect from libc
//! ([`shims`]), a spinlock for `lock_api` ([`RawSpin`]) and thin wrappers for
//! the CPU instructions both sides use ([`cpu`]).
//!
//! See `docs/toolchain.md` for why these are needed on the
//! `x86_64-unknown-linux-gnu` target without a libc.

#![no_std]

pub mod cpu;
pub mod shims;

use core::sync::atomic::{AtomicBool, Ordering};

/// A test-and-set spinlock for `lock_api::Mutex`. Both users are
/// single-CPU and never take a lock from an interrupt handler, so contention
/// means a re-entrant bug; [`RawSpin`] then spins with `pause`.
pub struct RawSpin(AtomicBool);

// SAFETY: `lock` only returns once it changed the flag from false to true with
// Acquire ordering, and `unlock` releases it with Release ordering, so at most
// one holder exists at a time and its writes are visible to the next holder.
unsafe impl lock_api::RawMutex for RawSpin {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = RawSpin(AtomicBool::new(false));
    type GuardMarker = lock_api::GuardSend;

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

/// A `lock_api` mutex over [`RawSpin`].
pub type Mutex<T> = lock_api::Mutex<RawSpin, T>;
