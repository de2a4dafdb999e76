//! A `smoltcp::phy::Device` over a muennet channel pair.

use smoltcp::phy::{self, DeviceCapabilities, Medium};
use smoltcp::time::Instant;

use super::{ELEMENT_SIZE, MAX_FRAME, NetReader, NetWriter, RxResult};

/// Upper bound of non-frame results (overruns, bad lengths, epoch changes)
/// skipped by one `receive` call, so a hostile peer cannot keep it spinning.
const MAX_SKIPS: usize = 64;

/// Bytes at the start of each transmit buffer that are zeroed before
/// smoltcp builds a frame: Ethernet (14) + the largest IPv4 (60) or IPv6
/// header with extension headers + TCP (60) headers.
const HEADER_ZERO: usize = 256;

/// Counters of a [`MuennetDevice`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeviceStats {
    /// Frames handed to smoltcp.
    pub rx_frames: u64,
    /// Bytes of those frames.
    pub rx_bytes: u64,
    /// Frames written to the channel.
    pub tx_frames: u64,
    /// Bytes of those frames.
    pub tx_bytes: u64,
    /// Overruns detected on the receive channel.
    pub rx_overruns: u64,
    /// Elements lost to those overruns.
    pub rx_lost: u64,
    /// Received elements dropped for an invalid length.
    pub rx_bad: u64,
    /// Epoch changes (writer restarts, including first contact) seen on receive.
    pub rx_epoch_changes: u64,
    /// Frames smoltcp asked to send that were dropped (empty, too long,
    /// or the writer was inactive).
    pub tx_dropped: u64,
    /// Times `transmit` refused a frame because the burst limit
    /// ([`MuennetDevice::set_tx_burst`]) was reached (smoltcp keeps it).
    pub tx_deferred: u64,
}

/// A smoltcp device over a muennet reader (`N|in`) and writer (`N|out`).
///
/// Ethernet medium, `max_transmission_unit` 1514. Receiving consumes one
/// frame, skipping (and counting) overruns, bad lengths and epoch changes.
/// Transmitting lets smoltcp build the frame in a 1514-byte scratch buffer
/// inside the device and copies it into the channel slot (no heap, and no
/// Rust reference into the shared slot, which the peer may read concurrently).
#[derive(Debug)]
pub struct MuennetDevice {
    rx: NetReader,
    tx: NetWriter,
    rx_buf: [u8; ELEMENT_SIZE],
    tx_buf: [u8; MAX_FRAME],
    stats: DeviceStats,
    /// At most this many frames between two `notified` calls (0: no limit).
    tx_burst: u64,
    /// `stats.tx_frames` at the last `notified`.
    tx_mark: u64,
}

impl MuennetDevice {
    /// A device receiving from `rx` and sending to `tx`.
    pub fn new(rx: NetReader, tx: NetWriter) -> Self {
        MuennetDevice {
            rx,
            tx,
            rx_buf: [0; ELEMENT_SIZE],
            tx_buf: [0; MAX_FRAME],
            stats: DeviceStats::default(),
            tx_burst: 0,
            tx_mark: 0,
        }
    }

    /// Limits the frames written between two [`Self::notified`] calls to
    /// `frames` (0, the default: no limit). The channel holds 691 frames
    /// and its reader empties it only when it polls or is notified; a
    /// larger burst (e.g. 32 connections opening their send windows in one
    /// smoltcp poll) overruns it, and an overrun loses every unread frame.
    /// With a limit, `transmit` refuses further frames (smoltcp keeps them
    /// queued) until the platform has notified the peer — whose reader
    /// must take at least `frames` per notification.
    pub fn set_tx_burst(&mut self, frames: u64) {
        self.tx_burst = frames;
    }

    /// The peer has been notified and has read the channel: the burst limit
    /// starts over.
    pub fn notified(&mut self) {
        self.tx_mark = self.stats.tx_frames;
    }

    /// The counters.
    pub fn stats(&self) -> DeviceStats {
        DeviceStats {
            rx_lost: self.rx.lost_elements(),
            ..self.stats
        }
    }

    /// Whether the receive channel has something to process (for a
    /// `solo5_yield`-style wait loop).
    pub fn has_pending(&mut self) -> bool {
        self.rx.has_pending()
    }

    /// The receiving end.
    pub fn reader(&self) -> &NetReader {
        &self.rx
    }

    /// The sending end.
    pub fn writer(&self) -> &NetWriter {
        &self.tx
    }

    /// The sending end, mutably (e.g. to restart it).
    pub fn writer_mut(&mut self) -> &mut NetWriter {
        &mut self.tx
    }

    /// Splits the device into its reader and writer.
    pub fn into_parts(self) -> (NetReader, NetWriter) {
        (self.rx, self.tx)
    }

    /// Receives the next valid frame into `rx_buf`; returns its length.
    fn next_frame(&mut self) -> Option<usize> {
        for _ in 0..MAX_SKIPS {
            match self.rx.receive(&mut self.rx_buf) {
                RxResult::Frame(n) => {
                    self.stats.rx_frames += 1;
                    self.stats.rx_bytes += n as u64;
                    return Some(n);
                }
                RxResult::NoData | RxResult::Inactive | RxResult::Incompatible => return None,
                RxResult::EpochChanged => self.stats.rx_epoch_changes += 1,
                RxResult::Overrun => self.stats.rx_overruns += 1,
                RxResult::BadLength(_) => self.stats.rx_bad += 1,
            }
        }
        None
    }
}

/// Receive token of a [`MuennetDevice`]: one frame already copied out of the channel.
#[derive(Debug)]
pub struct MuennetRxToken<'a> {
    frame: &'a [u8],
}

impl phy::RxToken for MuennetRxToken<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(self.frame)
    }
}

/// Transmit token of a [`MuennetDevice`].
#[derive(Debug)]
pub struct MuennetTxToken<'a> {
    tx: &'a mut NetWriter,
    buf: &'a mut [u8; MAX_FRAME],
    stats: &'a mut DeviceStats,
}

impl phy::TxToken for MuennetTxToken<'_> {
    /// Lets `f` build a frame of `len` bytes and sends it. smoltcp never asks
    /// for more than the MTU (1514); a larger `len` gets a 1514-byte buffer
    /// and the frame is dropped (counted in `tx_dropped`).
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let n = len.min(MAX_FRAME);
        // smoltcp writes every byte of the frame it asks for (headers,
        // option padding, payload). Zeroing the header area stays as a
        // cheap guard against stale bytes from the previous frame; zeroing
        // the whole 1514 bytes per frame cost a pass over every payload.
        self.buf[..n.min(HEADER_ZERO)].fill(0);
        let r = f(&mut self.buf[..n]);
        if len > MAX_FRAME {
            self.stats.tx_dropped += 1;
            return r;
        }
        match self.tx.send(&self.buf[..n]) {
            Ok(()) => {
                self.stats.tx_frames += 1;
                self.stats.tx_bytes += n as u64;
            }
            Err(_) => self.stats.tx_dropped += 1,
        }
        r
    }
}

impl phy::Device for MuennetDevice {
    type RxToken<'a>
        = MuennetRxToken<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = MuennetTxToken<'a>
    where
        Self: 'a;

    fn receive(&mut self, _timestamp: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let n = self.next_frame()?;
        Some((
            MuennetRxToken {
                frame: &self.rx_buf[..n],
            },
            MuennetTxToken {
                tx: &mut self.tx,
                buf: &mut self.tx_buf,
                stats: &mut self.stats,
            },
        ))
    }

    fn transmit(&mut self, _timestamp: Instant) -> Option<Self::TxToken<'_>> {
        if self.tx.inner().epoch() == 0 {
            return None;
        }
        if self.tx_burst != 0 && self.stats.tx_frames.wrapping_sub(self.tx_mark) >= self.tx_burst {
            self.stats.tx_deferred += 1;
            return None;
        }
        Some(MuennetTxToken {
            tx: &mut self.tx,
            buf: &mut self.tx_buf,
            stats: &mut self.stats,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = MAX_FRAME;
        caps
    }
}
