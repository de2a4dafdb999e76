//! Ending the subject, as Solo5 does on Muen (docs/muen-abi.md §3.5): log the
//! status, raise the `solo5_exit` event with `vmcall` if sinfo has one
//! (Muen then stops or resets the subject), otherwise — or if that returns —
//! `cli; hlt` forever.

use core::arch::asm;
use core::sync::atomic::{AtomicBool, Ordering};
use muen_abi::sinfo::{self, Sinfo};

static EXITING: AtomicBool = AtomicBool::new(false);

/// Raises event `number` with `vmcall` (RAX = event number). On Muen the
/// kernel performs the event's action; unknown numbers are ignored.
pub fn raise_event(number: u8) {
    // SAFETY: vmcall changes no memory visible to Rust; on Muen all
    // registers but RIP are preserved, and the minimal kernel does the same.
    unsafe { asm!("vmcall", in("rax") u64::from(number), options(nostack)) };
}

fn exit_event() -> Option<u8> {
    // SAFETY: sinfo is mapped read-only for the whole life of the subject.
    let page = unsafe { crate::regions::static_bytes(sinfo::SINFO_VA, sinfo::SINFO_SIZE) };
    Sinfo::parse(page).ok()?.event("solo5_exit")
}

/// Stops the subject for good: `cli; hlt` in a loop.
pub fn halt() -> ! {
    loop {
        // SAFETY: stopping the CPU has no memory effects.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) };
    }
}

/// Logs `exit(status)`, raises the exit event and halts.
pub fn exit(status: i32) -> ! {
    if EXITING.swap(true, Ordering::SeqCst) {
        // Failing while exiting: don't log again.
        halt();
    }
    log::info!("exit({status}) called");
    crate::console::emergency(format_args!("Halted\n"));
    if let Some(n) = exit_event() {
        raise_event(n);
    }
    halt()
}

/// Exit after an exception was reported (status 255).
pub fn exit_after_fault() -> ! {
    if EXITING.swap(true, Ordering::SeqCst) {
        halt();
    }
    if let Some(n) = exit_event() {
        raise_event(n);
    }
    halt()
}

// Host `cargo check --all-targets` builds this library in test mode, where
// std provides the panic handler.
#[cfg(not(test))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    crate::console::emergency(format_args!("unipi: PANIC: {info}\n"));
    exit_after_fault()
}
