//! Reads `rdtsc` twice within one minor frame: on Muen RDTSC exits to the
//! subject monitor, which returns the end of the current minor frame, so
//! both values must equal `tsc_schedule_end`.
#![no_std]
#![no_main]

use core::arch::asm;
use muen_abi::sched::SchedInfoPage;
use muen_abi::sinfo::SCHED_INFO_VA;

muen_subject::subject_main!(main);

fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: rdtsc only writes EDX:EAX.
    unsafe { asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack)) };
    (u64::from(hi) << 32) | u64::from(lo)
}

fn main(_rt: &mut muen_subject::Runtime) -> i32 {
    // SAFETY: the scheduling info page is mapped read-only at this address.
    let page = unsafe { SchedInfoPage::new(SCHED_INFO_VA as *const u8) };
    for attempt in 0..10 {
        let before = page.read();
        let a = rdtsc();
        let b = rdtsc();
        let after = page.read();
        if before != after {
            continue; // a frame boundary passed; try again
        }
        let ok = a == b && a == before.tsc_schedule_end;
        log::info!(
            "rdtsc: {a:#x} {b:#x}, frame {:#x}..{:#x} (attempt {attempt})",
            before.tsc_schedule_start,
            before.tsc_schedule_end
        );
        muen_testsubjects::result(ok, format_args!("rdtsc returns the minor frame end"));
        return if ok { 0 } else { 1 };
    }
    muen_testsubjects::result(false, format_args!("no stable minor frame in 10 attempts"));
    1
}
