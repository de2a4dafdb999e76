//! Helpers shared by the test subjects (small Muen subjects that exercise
//! the minimal kernel's behaviour; built by `make test-subjects`).

#![no_std]

/// A marker line the end-to-end tests look for in the serial log.
pub fn result(ok: bool, what: core::fmt::Arguments<'_>) {
    if ok {
        log::info!("TEST PASS: {what}");
    } else {
        log::error!("TEST FAIL: {what}");
    }
}
