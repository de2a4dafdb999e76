//! The console: text goes to the `debuglog` channel (Muen's dbgserver, or the
//! minimal kernel, prints it on the serial port), split into 56-byte
//! elements exactly as Solo5 does. Before the channel is known, or when it is
//! missing or locked by the code that faulted, text goes to COM1, which the
//! subject monitor (or the minimal kernel) captures.
//!
//! The `log` crate's macros end up here; each record is one line.
//!
//! The *tap* keeps a copy of records at or above a level the application
//! chooses ([`tap_enable`]) in a fixed ring of [`TAP_SLOTS`] slots, for the
//! application to take with [`tap_drain`] (unipi forwards warnings and
//! errors to syslog that way). The logger never allocates or waits for it:
//! a record that finds the ring full or in use is dropped and counted.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use muen_abi::channel::ChannelMemory;
use muen_abi::debuglog::LogWriter;
use muen_abi::sinfo::{MemoryKind, Sinfo};
use muen_baremetal::Mutex;

use crate::clock;

struct Console {
    writer: Option<LogWriter>,
}

static CONSOLE: Mutex<Console> = Mutex::new(Console { writer: None });

impl Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        match &mut self.writer {
            Some(w) => w.write(s.as_bytes(), clock::sched_start()),
            None => muen_baremetal::cpu::com1_write(s.as_bytes()),
        }
        Ok(())
    }
}

struct Com1;

impl Write for Com1 {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        muen_baremetal::cpu::com1_write(s.as_bytes());
        Ok(())
    }
}

/// Writes to COM1 (before the console exists).
pub fn early(args: fmt::Arguments<'_>) {
    let _ = Com1.write_fmt(args);
}

/// Writes even if the console is in use by the code that failed: to the
/// debuglog if its lock is free, to COM1 otherwise.
pub fn emergency(args: fmt::Arguments<'_>) {
    match CONSOLE.try_lock() {
        Some(mut c) => {
            let _ = c.write_fmt(args);
            if let Some(w) = &mut c.writer {
                w.flush(clock::sched_start());
            }
        }
        None => early(args),
    }
}

/// Finds the `debuglog` channel in sinfo, initialises it as a writer with
/// Solo5's epoch (the current `tsc_schedule_start`) and installs the logger.
pub fn init(sinfo: &Sinfo<'_>) {
    let mut note = None;
    match sinfo.memory("debuglog") {
        Some(m) if m.kind == MemoryKind::SubjectChannel && m.writable => {
            match crate::regions::channel(&m).and_then(|mem: ChannelMemory| {
                LogWriter::new(mem, clock::sched_start().max(1)).map_err(rejected)
            }) {
                Ok(w) => CONSOLE.lock().writer = Some(w),
                Err(e) => note = Some(e),
            }
        }
        Some(_) => note = Some("'debuglog' is not a writable channel"),
        None => note = Some("no 'debuglog' channel in sinfo"),
    }
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Info);
    if let Some(n) = note {
        log::warn!("console on COM1: {n}");
    }
}

fn rejected(_: muen_abi::channel::ChannelError) -> &'static str {
    "debuglog channel rejected (size or alignment)"
}

/// Changes the log level (from the `--log-level` boot parameter).
pub fn set_level(level: log::LevelFilter) {
    log::set_max_level(level);
}

/// Records the tap keeps until they are taken.
pub const TAP_SLOTS: usize = 32;
/// Longest record text the tap keeps (bytes); longer ones are cut and end
/// in [`TAP_CUT`].
pub const TAP_TEXT: usize = 480;
/// Ends a record text the tap had to cut.
pub const TAP_CUT: &str = " [truncated]";

#[derive(Clone, Copy)]
struct TapSlot {
    /// `None` only in unused slots (all zeros: the ring lives in .bss).
    level: Option<log::Level>,
    len: usize,
    text: [u8; TAP_TEXT],
}

impl TapSlot {
    const EMPTY: TapSlot = TapSlot {
        level: None,
        len: 0,
        text: [0; TAP_TEXT],
    };
}

/// A fixed ring of record copies, oldest at `head`.
struct Tap {
    slots: [TapSlot; TAP_SLOTS],
    head: usize,
    len: usize,
    dropped: u64,
}

static TAP: Mutex<Tap> = Mutex::new(Tap {
    slots: [TapSlot::EMPTY; TAP_SLOTS],
    head: 0,
    len: 0,
    dropped: 0,
});
/// The tap's level as `log::LevelFilter as usize` (0: off).
static TAP_LEVEL: AtomicUsize = AtomicUsize::new(0);
/// Records dropped because the ring was in use (a record logged while
/// [`tap_drain`] held it).
static TAP_BUSY: AtomicU64 = AtomicU64::new(0);

/// Writes a record's text into a slot, cutting at a character when full.
struct SlotWriter<'a> {
    slot: &'a mut TapSlot,
    cut: bool,
}

impl Write for SlotWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = TAP_TEXT - TAP_CUT.len();
        for c in s.chars() {
            let n = c.len_utf8();
            if self.cut || self.slot.len + n > room {
                self.cut = true;
                return Ok(());
            }
            c.encode_utf8(&mut self.slot.text[self.slot.len..self.slot.len + n]);
            self.slot.len += n;
        }
        Ok(())
    }
}

impl Tap {
    fn push(&mut self, level: log::Level, args: &fmt::Arguments<'_>) {
        if self.len == TAP_SLOTS {
            self.dropped += 1;
            return;
        }
        let i = (self.head + self.len) % TAP_SLOTS;
        let slot = &mut self.slots[i];
        slot.level = Some(level);
        slot.len = 0;
        let mut w = SlotWriter { slot, cut: false };
        let _ = w.write_fmt(*args);
        if w.cut {
            let l = w.slot.len;
            w.slot.text[l..l + TAP_CUT.len()].copy_from_slice(TAP_CUT.as_bytes());
            w.slot.len += TAP_CUT.len();
        }
        self.len += 1;
    }

    fn pop(&mut self) -> Option<TapSlot> {
        if self.len == 0 {
            return None;
        }
        let slot = self.slots[self.head];
        self.head = (self.head + 1) % TAP_SLOTS;
        self.len -= 1;
        Some(slot)
    }
}

/// Keeps copies of records at `level` or more severe for [`tap_drain`]
/// (`LevelFilter::Off`: none, the default).
pub fn tap_enable(level: log::LevelFilter) {
    TAP_LEVEL.store(level as usize, Ordering::Relaxed);
}

/// Hands the kept records to `sink`, oldest first (level and text, without
/// the console's level prefix); returns how many were dropped since the
/// last call because the ring was full or in use.
pub fn tap_drain(sink: &mut dyn FnMut(log::Level, &str)) -> u64 {
    // What `sink` logs itself waits for the next call: a sink that warns
    // about every record must not keep this loop going.
    let kept = TAP.lock().len;
    for _ in 0..kept {
        // The lock is not held while `sink` runs: it may log.
        let Some(slot) = TAP.lock().pop() else { break };
        let text = core::str::from_utf8(&slot.text[..slot.len]).unwrap_or("?");
        sink(slot.level.unwrap_or(log::Level::Error), text);
    }
    let dropped = core::mem::take(&mut TAP.lock().dropped);
    dropped + TAP_BUSY.swap(0, Ordering::Relaxed)
}

fn tap(r: &log::Record<'_>) {
    if (r.level() as usize) > TAP_LEVEL.load(Ordering::Relaxed) {
        return;
    }
    match TAP.try_lock() {
        Some(mut t) => t.push(r.level(), r.args()),
        None => {
            TAP_BUSY.fetch_add(1, Ordering::Relaxed);
        }
    }
}

struct Logger;
static LOGGER: Logger = Logger;

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &log::Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let prefix = match r.level() {
            log::Level::Error => "error: ",
            log::Level::Warn => "warning: ",
            log::Level::Info => "",
            log::Level::Debug => "debug: ",
            log::Level::Trace => "trace: ",
        };
        {
            let mut c = CONSOLE.lock();
            let _ = writeln!(c, "{prefix}{}", r.args());
        }
        tap(r);
    }

    fn flush(&self) {
        let mut c = CONSOLE.lock();
        if let Some(w) = &mut c.writer {
            w.flush(clock::sched_start());
        }
    }
}
