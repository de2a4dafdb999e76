//! The channel reader over arbitrary header contents: a page-aligned SHMStream v2 region
//! whose header and data come from the input, read by `channel::Reader`,
//! `debuglog::LogReader` or `muennet::NetReader`, with the "writer" rewriting header words
//! and data between reads as the input says.
//!
//! Input: `reader (1) | header (64) | data length (2) | data | ops`, where each op is
//! `0..=0x7f`: read (op % 8 + 1) times; `0x80 | w` (w < 8): set header word w to the next
//! 8 bytes; `0x90..`: write the next 8 bytes at data offset (next 2 bytes).
#![no_main]

use std::alloc::{Layout, alloc_zeroed, dealloc};

use libfuzzer_sys::fuzz_target;
use muen_abi::channel::{ChannelMemory, HEADER_SIZE, ReadResult, Reader};
use muen_abi::debuglog::{LINE_MAX, LogEvent, LogReader};
use muen_abi::muennet::{self, NetReader, RxResult};

const REGION: usize = 4 * 4096;

/// A zeroed, page-aligned region, freed on drop.
struct Region(*mut u8);

impl Region {
    fn new() -> Self {
        // SAFETY: the layout has a non-zero size.
        let p = unsafe { alloc_zeroed(Layout::from_size_align(REGION, 4096).unwrap()) };
        assert!(!p.is_null());
        Region(p)
    }
    /// Writes `bytes` at `off` (clipped to the region) through a raw pointer: no reference
    /// to the region exists while a reader uses it.
    fn write(&self, off: usize, bytes: &[u8]) {
        let n = bytes.len().min(REGION.saturating_sub(off));
        // SAFETY: `off + n <= REGION`; single-threaded, nothing borrows the region.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.0.add(off), n) };
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { dealloc(self.0, Layout::from_size_align(REGION, 4096).unwrap()) };
    }
}

enum Any {
    Raw(Reader, usize),
    Log(LogReader),
    Net(NetReader),
}

impl Any {
    fn read(&mut self) {
        match self {
            Any::Raw(r, size) => {
                let mut out = vec![0u8; *size];
                let res = r.read(&mut out);
                if res == ReadResult::Success {
                    assert!(r.epoch() != 0);
                }
                let _ = (r.has_pending_data(), r.read_count(), r.lost_elements());
            }
            Any::Log(l) => match l.poll() {
                LogEvent::Line(b) | LogEvent::Partial(b) => assert!(b.len() <= LINE_MAX),
                _ => {
                    let _ = l.take_partial();
                }
            },
            Any::Net(n) => {
                let mut buf = [0u8; muennet::ELEMENT_SIZE];
                if let RxResult::Frame(len) = n.receive(&mut buf) {
                    assert!((1..=muennet::MAX_FRAME).contains(&len));
                }
                let _ = n.has_pending();
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 1 + HEADER_SIZE + 2 {
        return;
    }
    let sel = data[0];
    let region = Region::new();
    region.write(0, &data[1..1 + HEADER_SIZE]);
    let mut rest = &data[1 + HEADER_SIZE..];
    let dlen = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
    region.write(HEADER_SIZE, &rest[2..2 + dlen]);
    rest = &rest[2 + dlen..];
    // The region length seen by the reader varies too (geometry checks).
    let len = match sel >> 4 {
        0 => REGION,
        1 => HEADER_SIZE,
        2 => 4096,
        n => HEADER_SIZE + usize::from(n) * 1000,
    };
    // SAFETY: `region` is mapped and 4096-aligned, outlives the reader (dropped at the end of
    // this closure after it), and is only written through raw pointers.
    let mem = unsafe { ChannelMemory::new(region.0, len) }.expect("aligned, large enough");
    let mut reader = match sel % 4 {
        0 => Any::Log(LogReader::new(mem)),
        1 => Any::Net(NetReader::new(mem)),
        2 => {
            let size = usize::from(sel >> 2 & 3) * 24 + 1;
            Any::Raw(Reader::new(mem, 0x1234_5678_9abc_def0, size), size)
        }
        _ => {
            // The protocol and element size the header announces.
            let h = mem.header();
            let size = (h.size as usize).min(REGION);
            Any::Raw(Reader::new(mem, h.protocol, size), size)
        }
    };
    reader.read();
    let mut ops = rest;
    let mut reads = 0;
    while let Some((&op, tail)) = ops.split_first() {
        ops = tail;
        match op {
            0..=0x7f => {
                for _ in 0..=op % 8 {
                    reader.read();
                    reads += 1;
                }
            }
            0x80..=0x87 => {
                let Some(v) = ops.get(..8) else { break };
                region.write(usize::from(op - 0x80) * 8, v);
                ops = &ops[8..];
            }
            _ => {
                let Some(v) = ops.get(..10) else { break };
                let off = usize::from(u16::from_le_bytes([v[0], v[1]]));
                region.write(HEADER_SIZE + off, &v[2..]);
                ops = &ops[10..];
            }
        }
        if reads > 10_000 {
            break;
        }
    }
    for _ in 0..4 {
        reader.read();
    }
    drop(reader);
    drop(region);
});
