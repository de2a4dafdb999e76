//! Scheduling info page (docs/muen-abi.md §2.4) and timed event page (§2.6).
//!
//! The record types ([`SchedulingInfo`], [`TimedEvent`]) are plain values
//! with byte encoders/decoders. The page types ([`SchedInfoPage`],
//! [`SchedInfoWriter`], [`TimedEventPage`]) are raw views of the live pages;
//! they access each u64 field as an `AtomicU64` and never form references to
//! anything else.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::bytes::{put_u8, put_u64, u8_at, u64_at};

/// Size of the scheduling info record in bytes.
pub const SCHED_INFO_SIZE: usize = 16;
/// Size of the timed event record in bytes.
pub const TIMED_EVENT_SIZE: usize = 16;
/// Mask of the 6-bit event number of a timed event.
pub const TIMED_EVENT_NUMBER_MASK: u8 = 0x3f;

/// The scheduling info record: TSC bounds of the current minor frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SchedulingInfo {
    /// Absolute TSC at which the current minor frame started.
    pub tsc_schedule_start: u64,
    /// Absolute TSC deadline of the current minor frame.
    pub tsc_schedule_end: u64,
}

impl SchedulingInfo {
    /// Decodes the first 16 bytes of `bytes`; `None` if shorter.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < SCHED_INFO_SIZE {
            return None;
        }
        Some(SchedulingInfo {
            tsc_schedule_start: u64_at(bytes, 0),
            tsc_schedule_end: u64_at(bytes, 8),
        })
    }

    /// The 16-byte encoding.
    pub fn to_bytes(&self) -> [u8; SCHED_INFO_SIZE] {
        let mut out = [0u8; SCHED_INFO_SIZE];
        put_u64(&mut out, 0, self.tsc_schedule_start);
        put_u64(&mut out, 8, self.tsc_schedule_end);
        out
    }

    /// Writes the 16-byte encoding to the start of `out`.
    ///
    /// # Panics
    ///
    /// If `out` is shorter than 16 bytes (a programming error).
    pub fn encode(&self, out: &mut [u8]) {
        out[..SCHED_INFO_SIZE].copy_from_slice(&self.to_bytes());
    }
}

/// Read-only view of the live scheduling info page (subject side).
#[derive(Debug)]
pub struct SchedInfoPage {
    ptr: *const u8,
}

impl SchedInfoPage {
    /// Creates the view over the page at `ptr` (normally
    /// [`crate::sinfo::SCHED_INFO_VA`]).
    ///
    /// # Safety
    ///
    /// `ptr` must be 8-byte aligned, and 16 bytes at `ptr` must stay mapped
    /// and readable for the lifetime of the view. The page may be written
    /// concurrently only with (atomic or plain) aligned 8-byte stores.
    pub unsafe fn new(ptr: *const u8) -> Self {
        debug_assert!(
            ptr.cast::<u64>().is_aligned(),
            "scheduling info page misaligned"
        );
        SchedInfoPage { ptr }
    }

    fn field(&self, off: usize) -> &AtomicU64 {
        // SAFETY: `new`'s contract: `ptr + off` (off ∈ {0, 8}) is 8-aligned,
        // mapped for the view's lifetime and only written with aligned 8-byte
        // stores, so an `AtomicU64` view of it is valid. Atomic loads of
        // read-only memory are plain `mov`s on x86-64.
        unsafe { AtomicU64::from_ptr(self.ptr.add(off) as *mut u64) }
    }

    /// The start of the current minor frame.
    pub fn start(&self) -> u64 {
        self.field(0).load(Ordering::Acquire)
    }

    /// The end (deadline) of the current minor frame.
    pub fn end(&self) -> u64 {
        self.field(8).load(Ordering::Acquire)
    }

    /// Reads start, then end, each with its own load (like Solo5). The kernel
    /// only changes the page between minor frames, so both belong together
    /// while the subject runs.
    pub fn read(&self) -> SchedulingInfo {
        SchedulingInfo {
            tsc_schedule_start: self.start(),
            tsc_schedule_end: self.end(),
        }
    }
}

// SAFETY: the view only performs atomic loads through its raw pointer; moving
// it to another thread does not change what memory it may access.
unsafe impl Send for SchedInfoPage {}
// SAFETY: `&self` methods only perform atomic loads.
unsafe impl Sync for SchedInfoPage {}

/// Writer of the live scheduling info page (kernel side).
#[derive(Debug)]
pub struct SchedInfoWriter {
    ptr: *mut u8,
}

impl SchedInfoWriter {
    /// Creates the writer over the page at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` must be 8-byte aligned, and 16 bytes at `ptr` must stay mapped
    /// and writable for the lifetime of the writer, with no Rust references
    /// to them held anywhere.
    pub unsafe fn new(ptr: *mut u8) -> Self {
        debug_assert!(
            ptr.cast::<u64>().is_aligned(),
            "scheduling info page misaligned"
        );
        SchedInfoWriter { ptr }
    }

    fn field(&self, off: usize) -> &AtomicU64 {
        // SAFETY: `new`'s contract: `ptr + off` (off ∈ {0, 8}) is 8-aligned,
        // mapped writable for the writer's lifetime and not referenced
        // elsewhere, so an `AtomicU64` view of it is valid.
        unsafe { AtomicU64::from_ptr(self.ptr.add(off) as *mut u64) }
    }

    /// Stores start, then end (two separate stores, as Muen does).
    pub fn write(&mut self, info: SchedulingInfo) {
        self.field(0)
            .store(info.tsc_schedule_start, Ordering::Release);
        self.field(8)
            .store(info.tsc_schedule_end, Ordering::Release);
    }

    /// Reads the page back.
    pub fn read(&self) -> SchedulingInfo {
        SchedulingInfo {
            tsc_schedule_start: self.field(0).load(Ordering::Acquire),
            tsc_schedule_end: self.field(8).load(Ordering::Acquire),
        }
    }
}

// SAFETY: see `SchedInfoPage`; only atomic accesses through the raw pointer.
unsafe impl Send for SchedInfoWriter {}

/// The timed event record: when TSC passes `tsc_trigger_value`, the kernel
/// triggers event `event` of the subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TimedEvent {
    /// Absolute TSC trigger value.
    pub tsc_trigger_value: u64,
    /// Event number (6 bits, 0..63).
    pub event: u8,
}

impl TimedEvent {
    /// Decodes the first 16 bytes of `bytes` (event number masked to 6 bits);
    /// `None` if shorter.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < TIMED_EVENT_SIZE {
            return None;
        }
        Some(TimedEvent {
            tsc_trigger_value: u64_at(bytes, 0),
            event: u8_at(bytes, 8) & TIMED_EVENT_NUMBER_MASK,
        })
    }

    /// The 16-byte encoding (event number masked to 6 bits, padding zero).
    pub fn to_bytes(&self) -> [u8; TIMED_EVENT_SIZE] {
        let mut out = [0u8; TIMED_EVENT_SIZE];
        put_u64(&mut out, 0, self.tsc_trigger_value);
        put_u8(&mut out, 8, self.event & TIMED_EVENT_NUMBER_MASK);
        out
    }

    /// Writes the 16-byte encoding to the start of `out`.
    ///
    /// # Panics
    ///
    /// If `out` is shorter than 16 bytes (a programming error).
    pub fn encode(&self, out: &mut [u8]) {
        out[..TIMED_EVENT_SIZE].copy_from_slice(&self.to_bytes());
    }
}

/// Raw view of the live timed event page (writable by the subject, read by
/// the kernel). Both u64 words are accessed atomically.
#[derive(Debug)]
pub struct TimedEventPage {
    ptr: *mut u8,
}

impl TimedEventPage {
    /// Creates the view over the page at `ptr` (normally
    /// [`crate::sinfo::TIMED_EVENT_VA`]).
    ///
    /// # Safety
    ///
    /// `ptr` must be 8-byte aligned, and 16 bytes at `ptr` must stay mapped
    /// for the lifetime of the view (writable if [`TimedEventPage::write`] is
    /// used), with no Rust references to them held anywhere.
    pub unsafe fn new(ptr: *mut u8) -> Self {
        debug_assert!(
            ptr.cast::<u64>().is_aligned(),
            "timed event page misaligned"
        );
        TimedEventPage { ptr }
    }

    fn field(&self, off: usize) -> &AtomicU64 {
        // SAFETY: `new`'s contract: `ptr + off` (off ∈ {0, 8}) is 8-aligned,
        // mapped for the view's lifetime and not referenced elsewhere.
        unsafe { AtomicU64::from_ptr(self.ptr.add(off) as *mut u64) }
    }

    /// Reads the record (trigger first, then the event word).
    pub fn read(&self) -> TimedEvent {
        let trigger = self.field(0).load(Ordering::Acquire);
        let word = self.field(8).load(Ordering::Acquire);
        TimedEvent {
            tsc_trigger_value: trigger,
            event: (word as u8) & TIMED_EVENT_NUMBER_MASK,
        }
    }

    /// Writes the record: the event word first, then the trigger value.
    pub fn write(&mut self, ev: TimedEvent) {
        self.field(8).store(
            u64::from(ev.event & TIMED_EVENT_NUMBER_MASK),
            Ordering::Release,
        );
        self.field(0).store(ev.tsc_trigger_value, Ordering::Release);
    }
}

// SAFETY: see `SchedInfoPage`; only atomic accesses through the raw pointer.
unsafe impl Send for TimedEventPage {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::boxed::Box;

    #[repr(align(4096))]
    struct Page([u8; 4096]);

    #[test]
    fn sched_info_roundtrip() {
        let info = SchedulingInfo {
            tsc_schedule_start: 0x1122_3344_5566_7788,
            tsc_schedule_end: 0x99,
        };
        let b = info.to_bytes();
        assert_eq!(&b[..8], &0x1122_3344_5566_7788u64.to_le_bytes());
        assert_eq!(b[8], 0x99);
        assert_eq!(SchedulingInfo::decode(&b), Some(info));
        assert_eq!(SchedulingInfo::decode(&b[..15]), None);
        let mut out = [0u8; 20];
        info.encode(&mut out);
        assert_eq!(&out[..16], &b);
    }

    #[test]
    fn timed_event_roundtrip_and_mask() {
        let ev = TimedEvent {
            tsc_trigger_value: 1234,
            event: 0xff,
        };
        let b = ev.to_bytes();
        assert_eq!(b[8], 0x3f);
        assert_eq!(
            TimedEvent::decode(&b),
            Some(TimedEvent {
                tsc_trigger_value: 1234,
                event: 63
            })
        );
        assert_eq!(TimedEvent::decode(&[0; 8]), None);
    }

    #[test]
    fn live_pages() {
        let mut page = Box::new(Page([0; 4096]));
        let p = page.0.as_mut_ptr();
        // SAFETY: `page` is a page-aligned heap allocation that outlives both
        // views and is only accessed through them in this test.
        let (mut w, r) = unsafe { (SchedInfoWriter::new(p), SchedInfoPage::new(p)) };
        let info = SchedulingInfo {
            tsc_schedule_start: 5,
            tsc_schedule_end: 10,
        };
        w.write(info);
        assert_eq!(r.read(), info);
        assert_eq!(w.read(), info);
        assert_eq!(r.start(), 5);
        assert_eq!(r.end(), 10);

        // SAFETY: as above; the sched views are not used any more.
        let mut te = unsafe { TimedEventPage::new(p) };
        let ev = TimedEvent {
            tsc_trigger_value: 77,
            event: 3,
        };
        te.write(ev);
        assert_eq!(te.read(), ev);
        drop(page);
    }
}
