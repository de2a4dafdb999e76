//! The muennet network protocol (docs/muen-abi.md §5.2) in `eth_dev` mode: each
//! 1516-byte element holds one Ethernet II frame (no FCS) at offset 0 and
//! its length as a u16 LE in the last two bytes (1514..1516); the rest is zero.
//!
//! A unikernel's device `N` uses `N|out` (a [`NetWriter`]) and `N|in` (a
//! [`NetReader`]). With the `smoltcp` feature, `MuennetDevice` combines
//! both into a `smoltcp::phy::Device`.

use core::fmt;

use crate::channel::{ChannelError, ChannelMemory, ReadResult, Reader, Writer};

/// Protocol id of muennet channels (both directions).
pub const PROTOCOL: u64 = 0x7ade_5c54_9b08_e814;
/// Element size in bytes (MTU 1500 + Ethernet header 14 + length 2).
pub const ELEMENT_SIZE: usize = 1516;
/// Largest frame (Ethernet header + 1500 bytes payload, no FCS).
pub const MAX_FRAME: usize = 1514;
/// IP MTU reported to applications.
pub const MTU: usize = 1500;
/// Offset of the u16 LE length trailer in an element.
pub const LENGTH_OFFSET: usize = MAX_FRAME;

/// Why a frame cannot be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// A frame must hold at least one byte.
    Empty,
    /// The frame is longer than [`MAX_FRAME`] bytes (the length is given).
    TooLong(usize),
    /// The channel refused the write (e.g. the writer is deactivated).
    Channel(ChannelError),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Empty => f.write_str("empty frame"),
            FrameError::TooLong(n) => write!(f, "frame of {n} bytes exceeds {MAX_FRAME}"),
            FrameError::Channel(e) => write!(f, "channel: {e}"),
        }
    }
}

impl core::error::Error for FrameError {}

/// The sending end of a muennet channel (`N|out`).
#[derive(Debug)]
pub struct NetWriter(Writer);

impl NetWriter {
    /// Initialises the channel as a muennet writer (1516-byte elements, 691
    /// slots in 1 MiB) with the non-zero `epoch`.
    pub fn new(mem: ChannelMemory, epoch: u64) -> Result<Self, ChannelError> {
        Writer::new(mem, PROTOCOL, ELEMENT_SIZE, epoch).map(NetWriter)
    }

    /// Sends one frame of 1..=1514 bytes.
    pub fn send(&mut self, frame: &[u8]) -> Result<(), FrameError> {
        if frame.is_empty() {
            return Err(FrameError::Empty);
        }
        if frame.len() > MAX_FRAME {
            return Err(FrameError::TooLong(frame.len()));
        }
        // Fits in u16: 1 ≤ len ≤ 1514.
        let len = (frame.len() as u16).to_le_bytes();
        self.0
            .write_at(&[(0, frame), (LENGTH_OFFSET, &len)])
            .map_err(FrameError::Channel)
    }

    /// Re-initialises the channel with a new epoch (see [`Writer::restart`]).
    pub fn restart(&mut self, epoch: u64) {
        self.0.restart(epoch)
    }

    /// Deactivates the channel (epoch 0).
    pub fn deactivate(&mut self) {
        self.0.deactivate()
    }

    /// The underlying channel writer.
    pub fn inner(&self) -> &Writer {
        &self.0
    }
}

/// Result of [`NetReader::receive`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxResult {
    /// A frame of this many bytes is in `buf[..n]` (1 ≤ n ≤ 1514).
    Frame(usize),
    /// No new element.
    NoData,
    /// The channel is inactive (epoch 0).
    Inactive,
    /// The reader (re)synchronised to a new writer epoch; call again.
    EpochChanged,
    /// Elements were lost; the reader skipped to the newest data.
    Overrun,
    /// The channel is not a usable muennet channel.
    Incompatible,
    /// An element carried an invalid length (0 or > 1514); it was dropped.
    BadLength(u16),
}

/// The receiving end of a muennet channel (`N|in`).
#[derive(Debug)]
pub struct NetReader {
    reader: Reader,
    bad_frames: u64,
}

impl NetReader {
    /// A reader over a muennet channel (not synchronised yet).
    pub fn new(mem: ChannelMemory) -> Self {
        NetReader {
            reader: Reader::new(mem, PROTOCOL, ELEMENT_SIZE),
            bad_frames: 0,
        }
    }

    /// Reads the next element into `buf` and validates its length trailer.
    pub fn receive(&mut self, buf: &mut [u8; ELEMENT_SIZE]) -> RxResult {
        match self.reader.read(buf) {
            ReadResult::Inactive => RxResult::Inactive,
            ReadResult::IncompatibleInterface => RxResult::Incompatible,
            ReadResult::EpochChanged => RxResult::EpochChanged,
            ReadResult::NoData => RxResult::NoData,
            ReadResult::OverrunDetected => RxResult::Overrun,
            ReadResult::Success => {
                let len = u16::from_le_bytes([buf[LENGTH_OFFSET], buf[LENGTH_OFFSET + 1]]);
                if len == 0 || usize::from(len) > MAX_FRAME {
                    self.bad_frames = self.bad_frames.wrapping_add(1);
                    RxResult::BadLength(len)
                } else {
                    RxResult::Frame(usize::from(len))
                }
            }
        }
    }

    /// Whether a `receive` would do something useful now (see
    /// [`Reader::has_pending_data`]).
    pub fn has_pending(&mut self) -> bool {
        self.reader.has_pending_data()
    }

    /// Elements written but not read yet in the current epoch, and the
    /// channel's element count (from a header snapshot); `(0, 0)` before
    /// the reader has synchronised to the writer's epoch.
    pub fn backlog(&self) -> (u64, u64) {
        let epoch = self.reader.epoch();
        if epoch == 0 {
            return (0, 0);
        }
        let h = self.reader.header();
        if h.epoch != epoch {
            return (0, h.elements);
        }
        (
            h.wc.wrapping_sub(self.reader.read_count()).min(h.elements),
            h.elements,
        )
    }

    /// Discards all pending elements.
    pub fn drain(&mut self) {
        self.reader.drain()
    }

    /// Number of overruns detected.
    pub fn overruns(&self) -> u64 {
        self.reader.overruns()
    }

    /// Number of elements lost to overruns.
    pub fn lost_elements(&self) -> u64 {
        self.reader.lost_elements()
    }

    /// Number of elements dropped for an invalid length.
    pub fn bad_frames(&self) -> u64 {
        self.bad_frames
    }

    /// The writer epoch the reader is synchronised to (0 = none).
    pub fn epoch(&self) -> u64 {
        self.reader.epoch()
    }

    /// The underlying channel reader.
    pub fn inner(&self) -> &Reader {
        &self.reader
    }
}

#[cfg(feature = "smoltcp")]
mod device;
#[cfg(feature = "smoltcp")]
pub use device::{DeviceStats, MuennetDevice, MuennetRxToken, MuennetTxToken};

#[cfg(test)]
mod tests;
