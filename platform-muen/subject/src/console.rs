//! The console: text goes to the `debuglog` channel (Muen's dbgserver, or the
//! minimal kernel, prints it on the serial port), split into 56-byte
//! elements exactly as Solo5 does. Before the channel is known, or when it is
//! missing or locked by the code that faulted, text goes to COM1, which the
//! subject monitor (or the minimal kernel) captures.
//!
//! The `log` crate's macros end up here; each record is one line.

use core::fmt::{self, Write};
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
        let mut c = CONSOLE.lock();
        let _ = writeln!(c, "{prefix}{}", r.args());
    }

    fn flush(&self) {
        let mut c = CONSOLE.lock();
        if let Some(w) = &mut c.writer {
            w.flush(clock::sched_start());
        }
    }
}
