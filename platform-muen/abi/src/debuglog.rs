//! The debuglog protocol (docs/muen-abi.md §5.3): 64-byte elements of a u64
//! timestamp and 56 bytes of text, carried on an SHMStream v2 channel.
//!
//! [`LogWriter`] splits text into elements exactly like Solo5 and Ada
//! `Debuglog.Sink`; [`LogReader`] is the reader side (like Muen's dbgserver),
//! which reassembles lines from continuation elements.

use crate::bytes::{put_u64, u64_at};
use crate::channel::{ChannelError, ChannelMemory, ReadResult, Reader, Writer};

/// Protocol id of debuglog channels.
pub const PROTOCOL: u64 = 0xf007_8909_4b6f_70cf;
/// Element size in bytes.
pub const ELEMENT_SIZE: usize = 64;
/// Text bytes per element.
pub const TEXT_SIZE: usize = 56;
/// Offset of the text in an element.
pub const TEXT_OFFSET: usize = 8;
/// Longest line [`LogReader`] reassembles; longer lines come in pieces.
pub const LINE_MAX: usize = 512;

/// Line-splitting debuglog writer.
///
/// For every input byte: NUL and CR are ignored; any other byte is stored;
/// the element is flushed (with the timestamp given to `write`) after storing
/// an LF or when 56 bytes are buffered. Unused text bytes are zero.
#[derive(Debug)]
pub struct LogWriter {
    writer: Writer,
    buf: [u8; TEXT_SIZE],
    len: usize,
}

impl LogWriter {
    /// Initialises the channel as a debuglog writer with `epoch` (Solo5 uses
    /// the current `tsc_schedule_start`).
    pub fn new(mem: ChannelMemory, epoch: u64) -> Result<Self, ChannelError> {
        Ok(LogWriter {
            writer: Writer::new(mem, PROTOCOL, ELEMENT_SIZE, epoch)?,
            buf: [0; TEXT_SIZE],
            len: 0,
        })
    }

    /// Writes `bytes`; complete elements carry `timestamp`.
    pub fn write(&mut self, bytes: &[u8], timestamp: u64) {
        for &b in bytes {
            if b == 0 || b == b'\r' {
                continue;
            }
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
            }
            self.len += 1;
            if b == b'\n' || self.len >= TEXT_SIZE {
                self.emit(timestamp);
            }
        }
    }

    /// Flushes a buffered partial line (no LF added); does nothing if the
    /// buffer is empty.
    pub fn flush(&mut self, timestamp: u64) {
        if self.len > 0 {
            self.emit(timestamp);
        }
    }

    /// Number of bytes buffered (a partial line not yet written).
    pub fn buffered(&self) -> usize {
        self.len
    }

    fn emit(&mut self, timestamp: u64) {
        let mut ts = [0u8; 8];
        put_u64(&mut ts, 0, timestamp);
        // An inactive writer drops the text, as a lossy console may.
        let _ = self.writer.write(&[&ts, &self.buf]);
        self.buf = [0; TEXT_SIZE];
        self.len = 0;
    }

    /// The underlying channel writer.
    pub fn inner(&self) -> &Writer {
        &self.writer
    }

    /// The underlying channel writer, mutably (e.g. to restart it).
    pub fn inner_mut(&mut self) -> &mut Writer {
        &mut self.writer
    }
}

/// A decoded debuglog element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Element<'a> {
    /// The writer's timestamp (`tsc_schedule_start` for Solo5).
    pub timestamp: u64,
    /// Text up to the first LF or NUL, without it.
    pub text: &'a [u8],
    /// Whether the text ended with an LF (end of line).
    pub newline: bool,
}

/// Decodes one element.
pub fn decode(element: &[u8; ELEMENT_SIZE]) -> Element<'_> {
    let text = &element[TEXT_OFFSET..];
    let end = text
        .iter()
        .position(|&b| b == b'\n' || b == 0)
        .unwrap_or(text.len());
    Element {
        timestamp: u64_at(element, 0),
        text: &text[..end],
        newline: text.get(end) == Some(&b'\n'),
    }
}

/// An event reported by [`LogReader::poll`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogEvent<'a> {
    /// A complete line (without the LF). A line longer than [`LINE_MAX`]
    /// comes as one or more `Partial` pieces followed by a `Line` with the rest.
    Line(&'a [u8]),
    /// A piece of a line: either the first [`LINE_MAX`] bytes of an over-long
    /// line, or an unterminated line cut off by an epoch change or overrun
    /// (then the `EpochChanged`/`Overrun` event follows).
    Partial(&'a [u8]),
    /// The writer (re)started with a new epoch (also reported on first contact).
    EpochChanged,
    /// Elements were lost to an overrun.
    Overrun,
    /// The channel is inactive (epoch 0).
    Inactive,
    /// The channel header is not a debuglog channel of a usable geometry.
    Incompatible,
    /// Nothing new.
    Empty,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    EpochChanged,
    Overrun,
}

/// Reader side of a debuglog channel, reassembling lines.
///
/// Each [`LogReader::poll`] returns at most one event and reads at most
/// `LINE_MAX / TEXT_SIZE + 1` elements, so polling is bounded even against a
/// writer that never stops.
#[derive(Debug)]
pub struct LogReader {
    reader: Reader,
    element: [u8; ELEMENT_SIZE],
    line: [u8; LINE_MAX],
    len: usize,
    clear_on_next: bool,
    carry: [u8; TEXT_SIZE],
    carry_len: usize,
    carry_newline: bool,
    pending: Option<Pending>,
    timestamp: u64,
}

impl LogReader {
    /// A reader over a debuglog channel.
    pub fn new(mem: ChannelMemory) -> Self {
        LogReader {
            reader: Reader::new(mem, PROTOCOL, ELEMENT_SIZE),
            element: [0; ELEMENT_SIZE],
            line: [0; LINE_MAX],
            len: 0,
            clear_on_next: false,
            carry: [0; TEXT_SIZE],
            carry_len: 0,
            carry_newline: false,
            pending: None,
            timestamp: 0,
        }
    }

    /// Appends as much of `text` as fits; returns the number of bytes taken.
    fn append(&mut self, text: &[u8]) -> usize {
        let room = LINE_MAX - self.len;
        let n = text.len().min(room);
        self.line[self.len..self.len + n].copy_from_slice(&text[..n]);
        self.len += n;
        n
    }

    /// Returns the buffered text as `Partial` and arranges for `pending`
    /// to be reported next; or reports `pending` directly if nothing is buffered.
    fn cut(&mut self, pending: Pending) -> LogEvent<'_> {
        if self.len > 0 {
            self.pending = Some(pending);
            self.clear_on_next = true;
            LogEvent::Partial(&self.line[..self.len])
        } else {
            Self::pending_event(pending)
        }
    }

    fn pending_event(p: Pending) -> LogEvent<'static> {
        match p {
            Pending::EpochChanged => LogEvent::EpochChanged,
            Pending::Overrun => LogEvent::Overrun,
        }
    }

    /// Reads elements until one event can be reported.
    pub fn poll(&mut self) -> LogEvent<'_> {
        if self.clear_on_next {
            self.len = 0;
            self.clear_on_next = false;
        }
        if self.carry_len > 0 {
            let carry = self.carry;
            let n = self.carry_len;
            self.carry_len = 0;
            self.append(&carry[..n]);
            if self.carry_newline {
                self.clear_on_next = true;
                return LogEvent::Line(&self.line[..self.len]);
            }
        }
        if let Some(p) = self.pending.take() {
            return Self::pending_event(p);
        }
        for _ in 0..=LINE_MAX / TEXT_SIZE {
            match self.reader.read(&mut self.element) {
                ReadResult::Inactive => return LogEvent::Inactive,
                ReadResult::IncompatibleInterface => return LogEvent::Incompatible,
                ReadResult::NoData => return LogEvent::Empty,
                ReadResult::EpochChanged => return self.cut(Pending::EpochChanged),
                ReadResult::OverrunDetected => return self.cut(Pending::Overrun),
                ReadResult::Success => {
                    let el = decode(&self.element);
                    let (ts, text, newline) = (el.timestamp, el.text, el.newline);
                    let mut tmp = [0u8; TEXT_SIZE];
                    tmp[..text.len()].copy_from_slice(text);
                    let text_len = text.len();
                    self.timestamp = ts;
                    let taken = self.append(&tmp[..text_len]);
                    if taken < text_len {
                        let rest = text_len - taken;
                        self.carry[..rest].copy_from_slice(&tmp[taken..text_len]);
                        self.carry_len = rest;
                        self.carry_newline = newline;
                        self.clear_on_next = true;
                        return LogEvent::Partial(&self.line[..self.len]);
                    }
                    if newline {
                        self.clear_on_next = true;
                        return LogEvent::Line(&self.line[..self.len]);
                    }
                    if self.len == LINE_MAX {
                        self.clear_on_next = true;
                        return LogEvent::Partial(&self.line[..self.len]);
                    }
                }
            }
        }
        LogEvent::Empty
    }

    /// Takes the buffered unterminated line, if any (e.g. to print it when
    /// the writing subject has stopped).
    pub fn take_partial(&mut self) -> Option<&[u8]> {
        if self.clear_on_next {
            self.len = 0;
            self.clear_on_next = false;
        }
        if self.carry_len > 0 {
            let carry = self.carry;
            let n = self.carry_len;
            self.carry_len = 0;
            self.append(&carry[..n]);
        }
        if self.len == 0 {
            return None;
        }
        self.clear_on_next = true;
        Some(&self.line[..self.len])
    }

    /// Timestamp of the last element read.
    pub fn last_timestamp(&self) -> u64 {
        self.timestamp
    }

    /// The underlying channel reader (counters, epoch).
    pub fn inner(&self) -> &Reader {
        &self.reader
    }
}

#[cfg(test)]
mod tests;
