//! The runtime of a Muen native subject, in Rust: what Solo5's `muen`
//! bindings are for a MirageOS unikernel.
//!
//! Muen starts the subject at its ELF entry point in 64-bit mode with
//! `RDI` = the Solo5 boot-info page (0x1000) and `RSP` = the top of `ram`
//! − 8 (docs/muen-abi.md §3.1). From there this crate:
//!
//! 1. loads its own GDT, TSS (with IST stacks) and IDT ([`cpu`]), so every
//!    exception is reported with vector, RIP and CR2 before the subject exits;
//! 2. finds everything else through the subject info page ([`sinfo`] at
//!    0xE_0000_0000): the debuglog channel for the console ([`console`]),
//!    `ram` for the heap ([`heap`]), `time_info` and the scheduling info for
//!    the clock ([`clock`]), the `solo5_exit` event for [`exit`];
//! 3. logs a boot banner, the command line and its view of sinfo, then calls
//!    the application's `main` (see [`subject_main!`]).
//!
//! The same binary runs on Muen (CPL 0 in VMX non-root) and on the minimal
//! kernel of this project (CPL 3, privileged instructions emulated).
//!
//! `unsafe` lives in [`entry`], [`cpu`], [`heap`], [`regions`] and the raw
//! page accesses of [`clock`]/[`console`]; every block says why it is sound.

#![no_std]

extern crate alloc;

pub mod clock;
pub mod console;
pub mod cpu;
pub mod entry;
pub mod exit;
pub mod heap;
pub mod net;
pub mod regions;

use muen_abi::bootinfo::BootInfo;
use muen_abi::sinfo::Sinfo;

pub use exit::exit;

/// Version of this runtime (the package version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What the application gets from the runtime.
pub struct Runtime {
    /// The validated subject info page.
    pub sinfo: Sinfo<'static>,
    /// The Solo5 boot info (command line, end of `ram`).
    pub boot: BootInfo<'static>,
    /// Monotonic and wall clock.
    pub clock: clock::Clock,
}

/// Declares the application entry point: `fn(&mut Runtime) -> i32`; its
/// return value becomes the exit status (logged, like Solo5's `solo5_exit`).
#[macro_export]
macro_rules! subject_main {
    ($main:path) => {
        #[unsafe(no_mangle)]
        pub fn __muen_subject_main(rt: &mut $crate::Runtime) -> i32 {
            $main(rt)
        }
    };
}
