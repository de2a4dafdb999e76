//! COM1 (16550 at 0x3F8): the kernel's only console.
//!
//! Everything the kernel prints goes through [`Console`]; [`klog!`] writes
//! one line prefixed with `kernel: `. Output is polled (the kernel runs
//! with IF = 0); with the FIFO on, the line-status register is read once
//! per 16 bytes.

use crate::cpu::{inb, outb};
use core::fmt;

const COM1: u16 = 0x3F8;

/// Initialises COM1: 115200 8N1, FIFO on, interrupts off.
pub fn init() {
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x80);
    outb(COM1, 0x01);
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03);
    outb(COM1 + 2, 0xC7);
    outb(COM1 + 4, 0x03);
}

/// Writes raw bytes to COM1.
pub fn write_bytes(bytes: &[u8]) {
    for chunk in bytes.chunks(16) {
        let mut spins = 0u32;
        // THR empty and FIFO empty (bit 5); give up waiting after a while
        // so a missing UART cannot hang the kernel.
        while inb(COM1 + 5) & 0x20 == 0 && spins < 100_000 {
            spins += 1;
            crate::cpu::pause();
        }
        for &b in chunk {
            outb(COM1, b);
        }
    }
}

/// A `fmt::Write` sink for COM1.
pub struct Console;

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        write_bytes(s.as_bytes());
        Ok(())
    }
}

/// Prints a kernel log line: `kernel: <formatted>\n`.
#[macro_export]
macro_rules! klog {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = write!($crate::serial::Console, "kernel: {}\n", format_args!($($arg)*));
    }};
}

/// Prints without the `kernel: ` prefix and without a newline.
#[macro_export]
macro_rules! kprint {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = write!($crate::serial::Console, $($arg)*);
    }};
}
