//! Loads an empty IDT, then touches an unmapped address: the exception
//! cannot be delivered, so the kernel must stop the subject with a report.
#![no_std]
#![no_main]

use core::arch::asm;

muen_subject::subject_main!(main);

#[repr(C, packed)]
struct Idtr {
    limit: u16,
    base: u64,
}

fn main(_rt: &mut muen_subject::Runtime) -> i32 {
    log::info!("loading an empty IDT, then faulting");
    let idtr = Idtr { limit: 0, base: 0 };
    // SAFETY: deliberately breaks exception delivery for this subject; the
    // next fault ends it.
    unsafe {
        asm!("lidt [{}]", in(reg) &idtr, options(nostack));
        core::ptr::read_volatile(0x0000_4000_dead_b000 as *const u64);
    }
    log::error!("survived a fault without an IDT");
    1
}
