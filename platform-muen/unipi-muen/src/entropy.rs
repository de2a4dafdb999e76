//! Entropy for the SSH client. sunset asks getrandom 0.4 for random bytes;
//! on this freestanding target there is no operating system to ask, so the
//! build selects getrandom's `custom` backend (`--cfg
//! getrandom_backend="custom"`, see `baremetal_rustflags` in the Makefile)
//! and this function is that backend: RDRAND, as for ring's getrandom 0.2
//! (muen-baremetal's `syscall` shim).

/// getrandom's custom-backend hook. Fails only when RDRAND gives no
/// entropy (sunset then ends the session with an error instead of going on
/// without randomness).
///
/// # Safety
///
/// getrandom calls it with `dest` pointing to `len` writable bytes that it
/// does not use otherwise during the call.
#[unsafe(no_mangle)]
unsafe extern "Rust" fn __getrandom_v03_custom(
    dest: *mut u8,
    len: usize,
) -> Result<(), getrandom04::Error> {
    if len == 0 {
        return Ok(());
    }
    // SAFETY: by this function's contract (getrandom's custom backend
    // interface), `dest` is valid for writes of `len` bytes and not aliased
    // during the call.
    let buf = unsafe { core::slice::from_raw_parts_mut(dest, len) };
    if muen_baremetal::cpu::fill_random(buf) {
        Ok(())
    } else {
        Err(getrandom04::Error::UNSUPPORTED)
    }
}
