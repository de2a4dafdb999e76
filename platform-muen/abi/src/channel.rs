//! SHMStream v2 channels (docs/muen-abi.md §4): a lossy single-writer ring in one
//! shared memory region, read by any number of readers in other domains.
//!
//! Layout: a 64-byte header of eight little-endian u64 words (transport,
//! epoch, protocol, size, elements, reserved, wsc, wc), then `elements` slots
//! of `size` bytes. The writer never waits for readers; readers detect
//! overwritten slots with the write-start counter `wsc` (a sequence lock).
//!
//! [`ChannelMemory`] is the only place that touches the shared memory: header
//! words through `AtomicU64`, element data through volatile copies, never
//! through Rust references. All counters use wrapping u64 arithmetic.
//!
//! Memory ordering (§4.4), which compiles to plain `mov`s on x86-64:
//!
//! * writer: `wsc := n` (Relaxed) → `fence(Release)` → element stores →
//!   `wc := n` (Release); init: `epoch := 0`, `fence(Release)`, header and data
//!   stores, `epoch := E` (Release) last.
//! * reader: `epoch`, `wc` (Acquire) → element loads → `fence(Acquire)` →
//!   `epoch` and `wsc` (Relaxed).
//!
//! Properties of the protocol worth knowing (shared with Solo5/Muen/Linux):
//!
//! * On overrun the reader skips to `wc` (Linux/Ada semantics), so a burst
//!   larger than the ring loses *all* unread elements, including the newest
//!   ones still intact. Rings must be sized for the largest burst between
//!   two reads (691 muennet slots per 1 MiB in the reference system).
//! * The slot of counter `c` is `c mod elements`, which is continuous across
//!   the u64 wrap only if `elements` divides 2⁶⁴. Unreachable in practice
//!   (2⁶⁴ writes); counters are nevertheless handled with wrapping arithmetic.

use core::fmt;
use core::ptr;
use core::sync::atomic::{AtomicU64, Ordering, fence};

/// The transport marker in header word 0 ("SHMStream20=").
pub const TRANSPORT: u64 = 0x4873_12b6_b79a_9b6d;
/// Size of the channel header in bytes.
pub const HEADER_SIZE: usize = 64;

/// Byte offsets of the header words.
pub mod offset {
    /// Transport marker.
    pub const TRANSPORT: usize = 0;
    /// Epoch (0 = inactive).
    pub const EPOCH: usize = 8;
    /// Payload protocol id.
    pub const PROTOCOL: usize = 16;
    /// Element size in bytes.
    pub const SIZE: usize = 24;
    /// Number of element slots.
    pub const ELEMENTS: usize = 32;
    /// Reserved (0).
    pub const RESERVED: usize = 40;
    /// Write-start counter.
    pub const WSC: usize = 48;
    /// Write counter (completed writes).
    pub const WC: usize = 56;
}

/// Number of element slots of `element_size` bytes that fit in a channel
/// region of `region_size` bytes: `floor((S − 64) / size)`, 0 if the region
/// is smaller than the header or `element_size` is 0.
pub const fn element_count(region_size: usize, element_size: usize) -> usize {
    if element_size == 0 || region_size < HEADER_SIZE {
        0
    } else {
        (region_size - HEADER_SIZE) / element_size
    }
}

/// Errors of channel construction and writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelError {
    /// The region base is not 8-byte aligned.
    Misaligned,
    /// The region is smaller than the 64-byte header.
    TooSmall,
    /// Epoch 0 was requested for an active writer.
    ZeroEpoch,
    /// Element size 0 was requested.
    ZeroElementSize,
    /// Not even one element of the requested size fits in the region.
    ElementTooLarge,
    /// The data to write does not fit in one element.
    DataTooLarge,
    /// `write_at` parts are out of order, overlap, or overflow.
    BadParts,
    /// The writer is deactivated (epoch 0).
    Inactive,
}

impl fmt::Display for ChannelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ChannelError::Misaligned => "channel memory not 8-byte aligned",
            ChannelError::TooSmall => "channel memory smaller than the header",
            ChannelError::ZeroEpoch => "epoch 0 is reserved for inactive channels",
            ChannelError::ZeroElementSize => "element size 0",
            ChannelError::ElementTooLarge => "element does not fit in the channel",
            ChannelError::DataTooLarge => "data larger than the element size",
            ChannelError::BadParts => "element parts out of order or overlapping",
            ChannelError::Inactive => "channel writer is inactive",
        };
        f.write_str(s)
    }
}

impl core::error::Error for ChannelError {}

/// A snapshot of the eight header words (for diagnostics; the words are read
/// one by one and need not be mutually consistent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Header {
    /// Transport marker ([`TRANSPORT`] when initialised).
    pub transport: u64,
    /// Epoch (0 = inactive).
    pub epoch: u64,
    /// Protocol id.
    pub protocol: u64,
    /// Element size.
    pub size: u64,
    /// Element count.
    pub elements: u64,
    /// Reserved word.
    pub reserved: u64,
    /// Write-start counter.
    pub wsc: u64,
    /// Write counter.
    pub wc: u64,
}

/// A raw view of one channel region in shared memory.
///
/// This is the only type that accesses channel memory; it is `Copy` so that a
/// writer and diagnostics (or several readers) can share one region. All
/// accesses are bounds-checked against `len` and performed with atomics
/// (header) or volatile copies (data).
#[derive(Debug, Clone, Copy)]
pub struct ChannelMemory {
    base: *mut u8,
    len: usize,
}

// SAFETY: a `ChannelMemory` only performs atomic and volatile accesses that
// are valid from any thread under the contract of `ChannelMemory::new`; the
// protocol itself is designed for concurrent access by other CPUs.
unsafe impl Send for ChannelMemory {}
// SAFETY: the public `&self` methods only perform atomic loads; the private
// volatile writers are reached only through `&mut Writer`. (Being `Copy` and
// `Send`, every thread could hold its own copy anyway.)
unsafe impl Sync for ChannelMemory {}

impl ChannelMemory {
    /// Creates a view of the channel region `base..base + len`.
    ///
    /// Errors: `Misaligned` if `base` is not 8-byte aligned, `TooSmall` if
    /// `len < HEADER_SIZE`.
    ///
    /// # Safety
    ///
    /// `base..base+len` is mapped (readable; writable if a [`Writer`] is
    /// built on it), stays mapped for the lifetime of every Reader/Writer
    /// built on it, and is only ever accessed through this protocol (or by
    /// the peer domain). No Rust references to it may exist. Several
    /// `Writer`s on one region at the same time are not allowed.
    pub unsafe fn new(base: *mut u8, len: usize) -> Result<Self, ChannelError> {
        if !base.cast::<u64>().is_aligned() {
            return Err(ChannelError::Misaligned);
        }
        if len < HEADER_SIZE {
            return Err(ChannelError::TooSmall);
        }
        Ok(ChannelMemory { base, len })
    }

    /// Length of the region in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always `false`: a region holds at least the header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The base address of the region.
    pub fn base(&self) -> *mut u8 {
        self.base
    }

    /// Snapshot of all eight header words.
    pub fn header(&self) -> Header {
        Header {
            transport: self.load(offset::TRANSPORT, Ordering::Relaxed),
            epoch: self.load(offset::EPOCH, Ordering::Acquire),
            protocol: self.load(offset::PROTOCOL, Ordering::Relaxed),
            size: self.load(offset::SIZE, Ordering::Relaxed),
            elements: self.load(offset::ELEMENTS, Ordering::Relaxed),
            reserved: self.load(offset::RESERVED, Ordering::Relaxed),
            wsc: self.load(offset::WSC, Ordering::Relaxed),
            wc: self.load(offset::WC, Ordering::Acquire),
        }
    }

    /// The header word at byte offset `off` (a multiple of 8 below 64).
    fn word(&self, off: usize) -> &AtomicU64 {
        debug_assert!(off.is_multiple_of(8) && off < HEADER_SIZE);
        let off = off & (HEADER_SIZE - 8);
        // SAFETY: `off` is a multiple of 8 below 64 (masked above) and
        // `len >= 64`, so the word lies inside the region; `base` is 8-aligned
        // (checked in `new`), so the word is aligned for `AtomicU64`. The
        // region is mapped for our lifetime and accessed only atomically
        // (header) or by the peer with aligned 8-byte accesses (§4.4), so an
        // `AtomicU64` view is valid for as long as `&self` lives.
        unsafe { AtomicU64::from_ptr(self.base.add(off) as *mut u64) }
    }

    fn load(&self, off: usize, order: Ordering) -> u64 {
        self.word(off).load(order)
    }

    fn store(&self, off: usize, value: u64, order: Ordering) {
        self.word(off).store(value, order)
    }

    /// Whether `off..off + n` is a valid data-area range.
    fn data_range_ok(&self, off: usize, n: usize) -> bool {
        off >= HEADER_SIZE && off.checked_add(n).is_some_and(|end| end <= self.len)
    }

    /// Volatile copy of `dst.len()` bytes at region offset `off` into `dst`.
    /// Returns `false` (copying nothing) if the range is not in the data area.
    fn copy_out(&self, off: usize, dst: &mut [u8]) -> bool {
        let n = dst.len();
        if !self.data_range_ok(off, n) {
            return false;
        }
        // SAFETY: the range `off..off+n` lies inside the mapped region
        // (checked above). Memory is read with volatile loads through raw
        // pointers only (no references); u64 loads are only issued at
        // 8-aligned addresses.
        unsafe {
            let src = self.base.add(off);
            let mut i = 0;
            while i < n && !(src as usize + i).is_multiple_of(8) {
                dst[i] = ptr::read_volatile(src.add(i));
                i += 1;
            }
            while i + 8 <= n {
                let w = ptr::read_volatile(src.add(i) as *const u64);
                dst[i..i + 8].copy_from_slice(&w.to_ne_bytes());
                i += 8;
            }
            while i < n {
                dst[i] = ptr::read_volatile(src.add(i));
                i += 1;
            }
        }
        true
    }

    /// Volatile copy of `src` to region offset `off`. Returns `false`
    /// (writing nothing) if the range is not in the data area.
    fn copy_in(&self, off: usize, src: &[u8]) -> bool {
        let n = src.len();
        if !self.data_range_ok(off, n) {
            return false;
        }
        // SAFETY: the range lies inside the mapped region (checked above),
        // which the `new` contract makes writable when a Writer uses it.
        // Volatile stores through raw pointers only; u64 stores only at
        // 8-aligned addresses.
        unsafe {
            let dst = self.base.add(off);
            let mut i = 0;
            while i < n && !(dst as usize + i).is_multiple_of(8) {
                ptr::write_volatile(dst.add(i), src[i]);
                i += 1;
            }
            while i + 8 <= n {
                let mut w = [0u8; 8];
                w.copy_from_slice(&src[i..i + 8]);
                ptr::write_volatile(dst.add(i) as *mut u64, u64::from_ne_bytes(w));
                i += 8;
            }
            while i < n {
                ptr::write_volatile(dst.add(i), src[i]);
                i += 1;
            }
        }
        true
    }

    /// Volatile zeroing of `n` bytes at region offset `off`. Returns `false`
    /// (writing nothing) if the range is not in the data area.
    fn zero(&self, off: usize, n: usize) -> bool {
        if !self.data_range_ok(off, n) {
            return false;
        }
        // SAFETY: as in `copy_in`: in-bounds, writable, raw volatile stores
        // only, u64 stores only at 8-aligned addresses.
        unsafe {
            let dst = self.base.add(off);
            let mut i = 0;
            while i < n && !(dst as usize + i).is_multiple_of(8) {
                ptr::write_volatile(dst.add(i), 0u8);
                i += 1;
            }
            while i + 8 <= n {
                ptr::write_volatile(dst.add(i) as *mut u64, 0u64);
                i += 8;
            }
            while i < n {
                ptr::write_volatile(dst.add(i), 0u8);
                i += 1;
            }
        }
        true
    }
}

/// The writing end of a channel (the region must be mapped writable).
#[derive(Debug)]
pub struct Writer {
    mem: ChannelMemory,
    protocol: u64,
    size: usize,
    elements: usize,
    epoch: u64,
}

impl Writer {
    /// Initialises the channel as Muen/Solo5 do (§4.2): epoch 0, zero header
    /// and data, header fields, epoch last. `elements = element_count(len,
    /// element_size)` exactly (Ada readers require it).
    ///
    /// Errors: `ZeroEpoch`, `ZeroElementSize`, `ElementTooLarge` (no slot fits).
    pub fn new(
        mem: ChannelMemory,
        protocol: u64,
        element_size: usize,
        epoch: u64,
    ) -> Result<Self, ChannelError> {
        if epoch == 0 {
            return Err(ChannelError::ZeroEpoch);
        }
        if element_size == 0 {
            return Err(ChannelError::ZeroElementSize);
        }
        let elements = element_count(mem.len(), element_size);
        if elements == 0 {
            return Err(ChannelError::ElementTooLarge);
        }
        let mut w = Writer {
            mem,
            protocol,
            size: element_size,
            elements,
            epoch: 0,
        };
        w.initialise(epoch);
        Ok(w)
    }

    fn initialise(&mut self, epoch: u64) {
        let m = &self.mem;
        m.store(offset::EPOCH, 0, Ordering::Relaxed);
        fence(Ordering::Release);
        for off in [
            offset::TRANSPORT,
            offset::PROTOCOL,
            offset::SIZE,
            offset::ELEMENTS,
            offset::RESERVED,
            offset::WSC,
            offset::WC,
        ] {
            m.store(off, 0, Ordering::Relaxed);
        }
        m.zero(HEADER_SIZE, m.len() - HEADER_SIZE);
        m.store(offset::TRANSPORT, TRANSPORT, Ordering::Relaxed);
        m.store(offset::PROTOCOL, self.protocol, Ordering::Relaxed);
        m.store(offset::SIZE, self.size as u64, Ordering::Relaxed);
        m.store(offset::ELEMENTS, self.elements as u64, Ordering::Relaxed);
        m.store(offset::RESERVED, 0, Ordering::Relaxed);
        m.store(offset::WSC, 0, Ordering::Relaxed);
        m.store(offset::WC, 0, Ordering::Relaxed);
        m.store(offset::EPOCH, epoch, Ordering::Release);
        self.epoch = epoch;
    }

    /// Claims the next slot: returns its region offset and the new counter
    /// value `n`, after publishing `wsc := n`.
    fn begin(&mut self) -> (usize, u64) {
        let wc = self.mem.load(offset::WC, Ordering::Relaxed);
        let n = wc.wrapping_add(1);
        let pos = (wc % self.elements as u64) as usize;
        self.mem.store(offset::WSC, n, Ordering::Relaxed);
        fence(Ordering::Release);
        (HEADER_SIZE + pos * self.size, n)
    }

    fn commit(&mut self, n: u64) {
        self.mem.store(offset::WC, n, Ordering::Release);
    }

    /// Writes one element: `parts` are copied back to back from offset 0 of
    /// the slot and the rest of the slot is zeroed. Never blocks and never
    /// panics; `Err(DataTooLarge)` if the parts exceed the element size,
    /// `Err(Inactive)` after [`Writer::deactivate`].
    pub fn write(&mut self, parts: &[&[u8]]) -> Result<(), ChannelError> {
        if self.epoch == 0 {
            return Err(ChannelError::Inactive);
        }
        let total = parts
            .iter()
            .try_fold(0usize, |acc, p| acc.checked_add(p.len()))
            .filter(|t| *t <= self.size)
            .ok_or(ChannelError::DataTooLarge)?;
        let (slot, n) = self.begin();
        let mut at = slot;
        for p in parts {
            self.mem.copy_in(at, p);
            at += p.len();
        }
        self.mem.zero(at, self.size - total);
        self.commit(n);
        Ok(())
    }

    /// Writes one element made of `(offset, bytes)` parts at fixed offsets
    /// within the slot, zero elsewhere; e.g. muennet's
    /// `write_at(&[(0, frame), (1514, &len_le)])`. Parts must be in
    /// increasing offset order and must not overlap (`Err(BadParts)`), and
    /// must end within the element (`Err(DataTooLarge)`).
    pub fn write_at(&mut self, parts: &[(usize, &[u8])]) -> Result<(), ChannelError> {
        if self.epoch == 0 {
            return Err(ChannelError::Inactive);
        }
        let mut end = 0usize;
        for (off, bytes) in parts {
            if *off < end {
                return Err(ChannelError::BadParts);
            }
            end = off.checked_add(bytes.len()).ok_or(ChannelError::BadParts)?;
            if end > self.size {
                return Err(ChannelError::DataTooLarge);
            }
        }
        let (slot, n) = self.begin();
        let mut cursor = 0usize;
        for (off, bytes) in parts {
            self.mem.zero(slot + cursor, off - cursor);
            self.mem.copy_in(slot + off, bytes);
            cursor = off + bytes.len();
        }
        self.mem.zero(slot + cursor, self.size - cursor);
        self.commit(n);
        Ok(())
    }

    /// Deactivates the channel (epoch := 0). Readers report `Inactive`.
    pub fn deactivate(&mut self) {
        self.mem.store(offset::EPOCH, 0, Ordering::Release);
        self.epoch = 0;
    }

    /// Re-activates with a new epoch (a "restart": readers resynchronise and
    /// report `EpochChanged`). Re-initialises header and data as
    /// [`Writer::new`] does. The epoch should differ from the previous one;
    /// `restart(0)` is the same as [`Writer::deactivate`].
    pub fn restart(&mut self, epoch: u64) {
        if epoch == 0 {
            self.deactivate();
        } else {
            self.initialise(epoch);
        }
    }

    /// The current epoch (0 when deactivated).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Number of element slots.
    pub fn elements(&self) -> usize {
        self.elements
    }

    /// Element size in bytes.
    pub fn element_size(&self) -> usize {
        self.size
    }

    /// The protocol id written to the header.
    pub fn protocol(&self) -> u64 {
        self.protocol
    }

    /// Number of elements written since the last (re)initialisation (the
    /// header's `wc`).
    pub fn write_count(&self) -> u64 {
        self.mem.load(offset::WC, Ordering::Relaxed)
    }

    /// The underlying memory.
    pub fn memory(&self) -> ChannelMemory {
        self.mem
    }

    /// Snapshot of the header.
    pub fn header(&self) -> Header {
        self.mem.header()
    }
}

/// Result of [`Reader::read`]; the discriminants are the Solo5/Linux codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ReadResult {
    /// The channel's epoch is 0 (no active writer).
    Inactive = 0,
    /// The header does not match (transport, protocol, element size, or
    /// geometry beyond the region), or the output buffer is too small.
    IncompatibleInterface = 1,
    /// The reader (re)synchronised to a new epoch, or the epoch changed
    /// during the read (the copied element was discarded). Call again.
    EpochChanged = 2,
    /// No new element.
    NoData = 3,
    /// The writer overwrote unread elements; the reader skipped to the
    /// newest position (`rc := wc`) and continues from there.
    OverrunDetected = 4,
    /// One element was copied to the output buffer.
    Success = 5,
}

/// A reading end of a channel (read-only access suffices).
#[derive(Debug)]
pub struct Reader {
    mem: ChannelMemory,
    protocol: u64,
    size: usize,
    epoch: u64,
    elements: u64,
    rc: u64,
    overruns: u64,
    lost: u64,
}

impl Reader {
    /// A reader for `protocol` and `element_size`; not synchronised yet (the
    /// first `read` on an active channel returns `EpochChanged`).
    pub fn new(mem: ChannelMemory, protocol: u64, element_size: usize) -> Self {
        Reader {
            mem,
            protocol,
            size: element_size,
            epoch: 0,
            elements: 0,
            rc: 0,
            overruns: 0,
            lost: 0,
        }
    }

    /// Whether the header describes a channel this reader can read: marker,
    /// protocol, exact element size, and `size × elements + 64 ≤ len`.
    /// Returns the element count if so.
    fn compatible(&self) -> Option<u64> {
        let m = &self.mem;
        if m.load(offset::TRANSPORT, Ordering::Relaxed) != TRANSPORT
            || m.load(offset::PROTOCOL, Ordering::Relaxed) != self.protocol
            || m.load(offset::SIZE, Ordering::Relaxed) != self.size as u64
            || self.size == 0
        {
            return None;
        }
        let elements = m.load(offset::ELEMENTS, Ordering::Relaxed);
        let bytes = elements.checked_mul(self.size as u64)?;
        let fits = bytes
            .checked_add(HEADER_SIZE as u64)
            .is_some_and(|total| total <= m.len() as u64);
        (elements > 0 && fits).then_some(elements)
    }

    /// Counts an overrun and skips to `wc` (`rc := wc`).
    fn skip_to(&mut self, wc: u64) {
        let skipped = wc.wrapping_sub(self.rc);
        // A writer counter behind ours (hostile or mid-reinit) skips nothing.
        if skipped <= u64::MAX / 2 {
            self.lost = self.lost.wrapping_add(skipped);
        }
        self.overruns = self.overruns.wrapping_add(1);
        self.rc = wc;
    }

    /// Reads the next element into `out[..element_size]` (§4.3 with the
    /// Linux/Ada overrun semantics: on overrun `rc := wc`, so the reader
    /// resumes with data written afterwards and never livelocks).
    ///
    /// `out.len()` must be ≥ the element size, else `IncompatibleInterface`
    /// is returned without reading. A header whose size differs from the
    /// reader's or whose geometry exceeds the region is `IncompatibleInterface`.
    /// An element whose copy raced with an epoch change is discarded
    /// (`EpochChanged`), one whose slot was overwritten during the copy is
    /// discarded (`OverrunDetected`). Bytes of `out` are unspecified unless
    /// the result is `Success`.
    pub fn read(&mut self, out: &mut [u8]) -> ReadResult {
        let Some(out) = out.get_mut(..self.size) else {
            return ReadResult::IncompatibleInterface;
        };
        let m = self.mem;
        let epoch = m.load(offset::EPOCH, Ordering::Acquire);
        if epoch == 0 {
            self.epoch = 0;
            return ReadResult::Inactive;
        }
        if self.epoch != epoch {
            return match self.compatible() {
                Some(elements) => {
                    self.epoch = epoch;
                    self.elements = elements;
                    self.rc = 0;
                    ReadResult::EpochChanged
                }
                None => {
                    self.epoch = 0;
                    ReadResult::IncompatibleInterface
                }
            };
        }
        let wc = m.load(offset::WC, Ordering::Acquire);
        let pending = wc.wrapping_sub(self.rc);
        if pending == 0 {
            return ReadResult::NoData;
        }
        if pending > self.elements {
            self.skip_to(wc);
            return ReadResult::OverrunDetected;
        }
        let pos = self.rc % self.elements;
        // In bounds: pos < elements and elements × size + 64 ≤ len (checked
        // at synchronisation), so this cannot overflow.
        let slot = HEADER_SIZE + pos as usize * self.size;
        m.copy_out(slot, out);
        fence(Ordering::Acquire);
        if m.load(offset::EPOCH, Ordering::Relaxed) != self.epoch {
            self.epoch = 0;
            return ReadResult::EpochChanged;
        }
        let wsc = m.load(offset::WSC, Ordering::Relaxed);
        if wsc.wrapping_sub(self.rc) > self.elements {
            let wc = m.load(offset::WC, Ordering::Acquire);
            self.skip_to(wc);
            return ReadResult::OverrunDetected;
        }
        self.rc = self.rc.wrapping_add(1);
        ReadResult::Success
    }

    /// Whether a `read` would do something useful now: the channel is active
    /// and either a new compatible epoch awaits synchronisation or
    /// `wc ≠ rc` in the current epoch. Does not change the read position.
    pub fn has_pending_data(&mut self) -> bool {
        let epoch = self.mem.load(offset::EPOCH, Ordering::Acquire);
        if epoch == 0 {
            return false;
        }
        if epoch != self.epoch {
            return self.compatible().is_some();
        }
        self.mem.load(offset::WC, Ordering::Acquire) != self.rc
    }

    /// Discards all pending elements (`rc := wc`) if synchronised to the
    /// current epoch; otherwise does nothing.
    pub fn drain(&mut self) {
        let epoch = self.mem.load(offset::EPOCH, Ordering::Acquire);
        if epoch != 0 && epoch == self.epoch {
            self.rc = self.mem.load(offset::WC, Ordering::Acquire);
        }
    }

    /// The epoch the reader is synchronised to (0 = not synchronised).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The read counter (elements consumed in the current epoch, wrapping).
    pub fn read_count(&self) -> u64 {
        self.rc
    }

    /// Number of `OverrunDetected` results so far.
    pub fn overruns(&self) -> u64 {
        self.overruns
    }

    /// Number of elements skipped by overruns so far (including the element
    /// that was being copied when an overrun was detected).
    pub fn lost_elements(&self) -> u64 {
        self.lost
    }

    /// Element size this reader expects.
    pub fn element_size(&self) -> usize {
        self.size
    }

    /// The underlying memory.
    pub fn memory(&self) -> ChannelMemory {
        self.mem
    }

    /// Snapshot of the header.
    pub fn header(&self) -> Header {
        self.mem.header()
    }
}

#[cfg(test)]
mod tests;
