//! Touches an unmapped address. The kernel delivers the #PF to this
//! subject's IDT (as Muen does), whose handler reports vector, RIP and CR2
//! and exits through the exit event.
#![no_std]
#![no_main]

muen_subject::subject_main!(main);

const UNMAPPED: u64 = 0x0000_4000_dead_b000;

fn main(_rt: &mut muen_subject::Runtime) -> i32 {
    log::info!("reading unmapped address {UNMAPPED:#x}");
    // SAFETY: deliberately faults; the exception handler never returns here.
    let v = unsafe { core::ptr::read_volatile(UNMAPPED as *const u64) };
    log::error!("read {v:#x} from an unmapped address: isolation broken");
    1
}
