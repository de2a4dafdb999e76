//! Executes `hlt` with interrupts enabled-looking state: on Muen the vCPU
//! stays halted for good (HLTExiting = 0), so the kernel must stop it.
#![no_std]
#![no_main]

use core::arch::asm;

muen_subject::subject_main!(main);

fn main(_rt: &mut muen_subject::Runtime) -> i32 {
    log::info!("executing hlt");
    // SAFETY: stops the subject; nothing after this should run.
    unsafe { asm!("hlt", options(nomem, nostack)) };
    log::error!("hlt returned");
    1
}
