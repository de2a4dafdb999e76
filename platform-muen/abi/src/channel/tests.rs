use super::*;
use crate::test_util::Region;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};
use std::vec;
use std::vec::Vec;

const PROTO: u64 = 0x1234_5678_9abc_def0;

fn setup(len: usize, size: usize) -> (Region, Writer, Reader) {
    let r = Region::new(len);
    let w = Writer::new(r.mem(), PROTO, size, 42).unwrap();
    let rd = Reader::new(r.mem(), PROTO, size);
    (r, w, rd)
}

fn elem(size: usize, tag: u8) -> Vec<u8> {
    (0..size).map(|i| tag.wrapping_add(i as u8)).collect()
}

#[test]
fn layout_and_geometry() {
    assert_eq!(HEADER_SIZE, 64);
    assert_eq!(offset::WC + 8, HEADER_SIZE);
    assert_eq!(
        [
            offset::TRANSPORT,
            offset::EPOCH,
            offset::PROTOCOL,
            offset::SIZE,
            offset::ELEMENTS,
            offset::RESERVED,
            offset::WSC,
            offset::WC
        ],
        [0, 8, 16, 24, 32, 40, 48, 56]
    );
    assert_eq!(element_count(0x10_0000, 1516), 691);
    assert_eq!(element_count(0x2_0000, 64), 2047);
    assert_eq!(element_count(0x1000, 1516), 2);
    assert_eq!(element_count(64, 1), 0);
    assert_eq!(element_count(63, 1), 0);
    assert_eq!(element_count(65, 1), 1);
    assert_eq!(element_count(4096, 0), 0);
    assert_eq!(element_count(0, 8), 0);
    assert_eq!(
        TRANSPORT.to_le_bytes(),
        [0x6d, 0x9b, 0x9a, 0xb7, 0xb6, 0x12, 0x73, 0x48]
    );
}

#[test]
fn construction_errors() {
    let r = Region::new(4096);
    // SAFETY: in-bounds pointers into a live allocation; the constructor
    // rejects them before any access.
    unsafe {
        assert_eq!(
            ChannelMemory::new(r.ptr.add(4), 256).unwrap_err(),
            ChannelError::Misaligned
        );
        assert_eq!(
            ChannelMemory::new(r.ptr, 63).unwrap_err(),
            ChannelError::TooSmall
        );
        assert!(ChannelMemory::new(r.ptr.add(8), 64).is_ok());
    }
    let m = r.mem();
    assert_eq!(m.len(), 4096);
    assert!(!m.is_empty());
    assert_eq!(
        Writer::new(m, PROTO, 64, 0).unwrap_err(),
        ChannelError::ZeroEpoch
    );
    assert_eq!(
        Writer::new(m, PROTO, 0, 1).unwrap_err(),
        ChannelError::ZeroElementSize
    );
    assert_eq!(
        Writer::new(m, PROTO, 4033, 1).unwrap_err(),
        ChannelError::ElementTooLarge
    );
    let w = Writer::new(m, PROTO, 4032, 1).unwrap();
    assert_eq!(w.elements(), 1);
}

#[test]
fn writer_initialises_header_and_data() {
    let r = Region::new(0x10_0000);
    r.fill(0xAA);
    let w = Writer::new(r.mem(), PROTO, 1516, 0x77).unwrap();
    let h = w.header();
    assert_eq!(
        h,
        Header {
            transport: TRANSPORT,
            epoch: 0x77,
            protocol: PROTO,
            size: 1516,
            elements: 691,
            reserved: 0,
            wsc: 0,
            wc: 0
        }
    );
    assert_eq!(w.elements(), 691);
    assert_eq!(w.element_size(), 1516);
    assert_eq!(w.epoch(), 0x77);
    assert_eq!(w.protocol(), PROTO);
    for off in (64..0x10_0000).step_by(997) {
        assert_eq!(r.byte(off), 0, "offset {off}");
    }
    assert_eq!(r.byte(0x10_0000 - 1), 0);
}

#[test]
fn inactive_then_sync_then_data() {
    let r = Region::new(4096);
    let mut rd = Reader::new(r.mem(), PROTO, 64);
    let mut out = [0u8; 64];
    assert_eq!(rd.read(&mut out), ReadResult::Inactive);
    assert!(!rd.has_pending_data());
    let mut w = Writer::new(r.mem(), PROTO, 64, 9).unwrap();
    assert!(rd.has_pending_data(), "a new epoch is pending");
    assert_eq!(rd.read(&mut out), ReadResult::EpochChanged);
    assert_eq!(rd.epoch(), 9);
    assert!(!rd.has_pending_data());
    assert_eq!(rd.read(&mut out), ReadResult::NoData);
    w.write(&[b"hello", b" ", b"world"]).unwrap();
    assert!(rd.has_pending_data());
    let mut big = [0xffu8; 100];
    assert_eq!(rd.read(&mut big), ReadResult::Success);
    assert_eq!(&big[..11], b"hello world");
    assert!(
        big[11..64].iter().all(|&b| b == 0),
        "rest of the slot is zero"
    );
    assert!(
        big[64..].iter().all(|&b| b == 0xff),
        "only element_size bytes copied"
    );
    assert_eq!(rd.read(&mut out), ReadResult::NoData);
    assert_eq!(rd.read_count(), 1);
    w.deactivate();
    assert_eq!(w.epoch(), 0);
    assert_eq!(rd.read(&mut out), ReadResult::Inactive);
    assert_eq!(rd.epoch(), 0);
    assert_eq!(w.write(&[b"x"]), Err(ChannelError::Inactive));
    assert_eq!(w.write_at(&[(0, b"x")]), Err(ChannelError::Inactive));
    w.restart(10);
    assert_eq!(rd.read(&mut out), ReadResult::EpochChanged);
    assert_eq!(rd.epoch(), 10);
    w.restart(0);
    assert_eq!(rd.read(&mut out), ReadResult::Inactive);
}

#[test]
fn short_output_buffer_is_incompatible_without_reading() {
    let (_r, mut w, mut rd) = setup(4096, 64);
    let mut out = [0u8; 64];
    assert_eq!(rd.read(&mut out), ReadResult::EpochChanged);
    w.write(&[&[1; 64]]).unwrap();
    let mut short = [0u8; 63];
    assert_eq!(rd.read(&mut short), ReadResult::IncompatibleInterface);
    assert_eq!(rd.read_count(), 0);
    assert_eq!(rd.read(&mut out), ReadResult::Success);
    assert_eq!(out, [1; 64]);
}

#[test]
fn incompatible_headers() {
    let mut out = [0u8; 256];
    // Protocol mismatch.
    let (r, _w, _) = setup(4096, 64);
    let mut rd = Reader::new(r.mem(), PROTO + 1, 64);
    assert_eq!(rd.read(&mut out), ReadResult::IncompatibleInterface);
    assert_eq!(rd.read(&mut out), ReadResult::IncompatibleInterface);
    assert!(!rd.has_pending_data());
    // Element size mismatch.
    let mut rd = Reader::new(r.mem(), PROTO, 128);
    assert_eq!(rd.read(&mut out), ReadResult::IncompatibleInterface);
    // Good reader for comparison.
    let mut rd = Reader::new(r.mem(), PROTO, 64);
    assert_eq!(rd.read(&mut out), ReadResult::EpochChanged);

    let m = r.mem();
    let poke = |off: usize, v: u64| m.store(off, v, Ordering::SeqCst);
    let bump_epoch = |e: u64| m.store(offset::EPOCH, e, Ordering::SeqCst);
    // Wrong transport marker.
    poke(offset::TRANSPORT, 0);
    bump_epoch(100);
    assert_eq!(rd.read(&mut out), ReadResult::IncompatibleInterface);
    poke(offset::TRANSPORT, TRANSPORT);
    assert_eq!(rd.read(&mut out), ReadResult::EpochChanged);
    // Elements beyond the region (63 × 64 + 64 = 4096 fits, 64 does not).
    poke(offset::ELEMENTS, 64);
    bump_epoch(101);
    assert_eq!(rd.read(&mut out), ReadResult::IncompatibleInterface);
    poke(offset::ELEMENTS, 63);
    assert_eq!(rd.read(&mut out), ReadResult::EpochChanged);
    // size × elements overflowing u64.
    poke(offset::ELEMENTS, u64::MAX / 32);
    bump_epoch(102);
    assert_eq!(rd.read(&mut out), ReadResult::IncompatibleInterface);
    poke(offset::ELEMENTS, u64::MAX);
    assert_eq!(rd.read(&mut out), ReadResult::IncompatibleInterface);
    // Zero elements.
    poke(offset::ELEMENTS, 0);
    assert_eq!(rd.read(&mut out), ReadResult::IncompatibleInterface);
    // Header size changed to something else.
    poke(offset::ELEMENTS, 63);
    poke(offset::SIZE, 32);
    assert_eq!(rd.read(&mut out), ReadResult::IncompatibleInterface);
    poke(offset::SIZE, 64);
    assert_eq!(rd.read(&mut out), ReadResult::EpochChanged);
    assert_eq!(rd.read(&mut out), ReadResult::NoData);
}

#[test]
fn geometry_changed_without_epoch_change_stays_in_bounds() {
    // A hostile writer enlarges `elements` without changing the epoch: the
    // reader keeps its validated geometry, so slot offsets stay in bounds.
    let (r, mut w, mut rd) = setup(4096, 64);
    let mut out = [0u8; 64];
    assert_eq!(rd.read(&mut out), ReadResult::EpochChanged);
    r.mem().store(offset::ELEMENTS, u64::MAX, Ordering::SeqCst);
    for i in 0..200u64 {
        w.mem.store(offset::WC, i * 1_000_003, Ordering::SeqCst);
        w.mem.store(offset::WSC, i * 1_000_003, Ordering::SeqCst);
        w.write(&[&[i as u8; 64]]).unwrap();
        let _ = rd.read(&mut out);
        let _ = rd.read(&mut out);
    }
}

#[test]
fn exactly_full_ring_then_overrun_and_recovery() {
    let (_r, mut w, mut rd) = setup(64 + 8 * 16, 16);
    assert_eq!(w.elements(), 8);
    let mut out = [0u8; 16];
    assert_eq!(rd.read(&mut out), ReadResult::EpochChanged);
    // Exactly full: all 8 readable in order.
    for i in 0..8u8 {
        w.write(&[&elem(16, i)]).unwrap();
    }
    for i in 0..8u8 {
        assert_eq!(rd.read(&mut out), ReadResult::Success);
        assert_eq!(out.to_vec(), elem(16, i));
    }
    assert_eq!(rd.read(&mut out), ReadResult::NoData);
    // One more than the ring holds: overrun, skip to the newest position.
    for i in 0..9u8 {
        w.write(&[&elem(16, 100 + i)]).unwrap();
    }
    assert!(rd.has_pending_data());
    assert_eq!(rd.read(&mut out), ReadResult::OverrunDetected);
    assert_eq!(rd.overruns(), 1);
    assert_eq!(rd.lost_elements(), 9);
    // No livelock: nothing pending until the writer writes again.
    assert!(!rd.has_pending_data());
    assert_eq!(rd.read(&mut out), ReadResult::NoData);
    w.write(&[&elem(16, 200)]).unwrap();
    assert_eq!(rd.read(&mut out), ReadResult::Success);
    assert_eq!(out.to_vec(), elem(16, 200));
    assert_eq!(rd.read(&mut out), ReadResult::NoData);
    assert_eq!(rd.overruns(), 1);
}

#[test]
fn overwrite_during_copy_is_detected() {
    // wsc ahead of rc by more than `elements` (the writer started to
    // overwrite the slot being copied) while wc still looks fine.
    let (r, mut w, mut rd) = setup(64 + 4 * 8, 8);
    let mut out = [0u8; 8];
    assert_eq!(rd.read(&mut out), ReadResult::EpochChanged);
    w.write(&[&[1; 8]]).unwrap();
    w.write(&[&[2; 8]]).unwrap();
    let m = r.mem();
    m.store(offset::WSC, 5, Ordering::SeqCst); // rc = 0, elements = 4
    assert_eq!(rd.read(&mut out), ReadResult::OverrunDetected);
    assert_eq!(rd.read_count(), 2, "rc := wc");
    assert_eq!(rd.lost_elements(), 2);
    m.store(offset::WSC, 2, Ordering::SeqCst);
    assert_eq!(rd.read(&mut out), ReadResult::NoData);
    w.write(&[&[3; 8]]).unwrap();
    assert_eq!(rd.read(&mut out), ReadResult::Success);
    assert_eq!(out, [3; 8]);
}

#[test]
fn epoch_change_mid_stream() {
    let (_r, mut w, mut rd) = setup(4096, 32);
    let mut out = [0u8; 32];
    assert_eq!(rd.read(&mut out), ReadResult::EpochChanged);
    for i in 0..3u8 {
        w.write(&[&[i; 32]]).unwrap();
    }
    assert_eq!(rd.read(&mut out), ReadResult::Success);
    assert_eq!(out, [0; 32]);
    w.restart(43);
    // Old elements are gone; the reader resynchronises to the new epoch.
    assert!(rd.has_pending_data());
    assert_eq!(rd.read(&mut out), ReadResult::EpochChanged);
    assert_eq!(rd.epoch(), 43);
    assert_eq!(rd.read_count(), 0);
    assert_eq!(rd.read(&mut out), ReadResult::NoData);
    w.write(&[&[9; 32]]).unwrap();
    assert_eq!(rd.read(&mut out), ReadResult::Success);
    assert_eq!(out, [9; 32]);
    // Restart with writes already done before the reader looks again.
    w.restart(44);
    w.write(&[&[10; 32]]).unwrap();
    assert_eq!(rd.read(&mut out), ReadResult::EpochChanged);
    assert_eq!(rd.read(&mut out), ReadResult::Success);
    assert_eq!(out, [10; 32]);
}

#[test]
fn counters_wrap_around_u64() {
    let (r, mut w, mut rd) = setup(64 + 5 * 24, 24);
    assert_eq!(w.elements(), 5);
    let mut out = [0u8; 24];
    assert_eq!(rd.read(&mut out), ReadResult::EpochChanged);
    // Put the writer just below the wrap point.
    let start = u64::MAX - 2;
    let m = r.mem();
    m.store(offset::WC, start, Ordering::SeqCst);
    m.store(offset::WSC, start, Ordering::SeqCst);
    // The reader (rc = 0) is "behind" by an absurd amount: overrun, resync.
    assert_eq!(rd.read(&mut out), ReadResult::OverrunDetected);
    assert_eq!(rd.read_count(), start);
    assert_eq!(rd.read(&mut out), ReadResult::NoData);
    for i in 0..7u8 {
        w.write(&[&[i; 24]]).unwrap();
        assert_eq!(rd.read(&mut out), ReadResult::Success, "element {i}");
        assert_eq!(out, [i; 24]);
    }
    assert_eq!(w.write_count(), start.wrapping_add(7));
    assert_eq!(rd.read_count(), 4);
}

#[test]
fn full_ring_across_u64_wrap() {
    // Slot = counter mod elements, which is continuous across 2^64 only when
    // `elements` divides 2^64 (a property of SHMStream itself, shared with
    // Solo5/Muen/Linux and unreachable in practice). Use 8 elements here.
    let (r, mut w, mut rd) = setup(64 + 8 * 24, 24);
    assert_eq!(w.elements(), 8);
    let mut out = [0u8; 24];
    assert_eq!(rd.read(&mut out), ReadResult::EpochChanged);
    let m = r.mem();
    m.store(offset::WC, u64::MAX - 3, Ordering::SeqCst);
    m.store(offset::WSC, u64::MAX - 3, Ordering::SeqCst);
    rd.drain();
    assert_eq!(rd.read_count(), u64::MAX - 3);
    for i in 0..8u8 {
        w.write(&[&[50 + i; 24]]).unwrap();
    }
    assert_eq!(w.write_count(), 4);
    for i in 0..8u8 {
        assert_eq!(rd.read(&mut out), ReadResult::Success);
        assert_eq!(out, [50 + i; 24]);
    }
    assert_eq!(rd.read(&mut out), ReadResult::NoData);
    // One more than fits, across the wrap: detected as an overrun.
    m.store(offset::WC, u64::MAX - 3, Ordering::SeqCst);
    m.store(offset::WSC, u64::MAX - 3, Ordering::SeqCst);
    rd.drain();
    for i in 0..9u8 {
        w.write(&[&[i; 24]]).unwrap();
    }
    assert_eq!(rd.read(&mut out), ReadResult::OverrunDetected);
    assert_eq!(rd.read_count(), 5);
    assert_eq!(rd.read(&mut out), ReadResult::NoData);
}

#[test]
fn writer_counter_behind_reader_resyncs() {
    let (r, mut w, mut rd) = setup(4096, 64);
    let mut out = [0u8; 64];
    assert_eq!(rd.read(&mut out), ReadResult::EpochChanged);
    for _ in 0..10 {
        w.write(&[&[7; 64]]).unwrap();
        assert_eq!(rd.read(&mut out), ReadResult::Success);
    }
    let m = r.mem();
    m.store(offset::WC, 3, Ordering::SeqCst);
    m.store(offset::WSC, 3, Ordering::SeqCst);
    assert!(rd.has_pending_data());
    assert_eq!(rd.read(&mut out), ReadResult::OverrunDetected);
    assert_eq!(
        rd.lost_elements(),
        0,
        "a counter going backwards loses nothing"
    );
    assert_eq!(rd.read(&mut out), ReadResult::NoData);
    w.write(&[&[8; 64]]).unwrap();
    assert_eq!(rd.read(&mut out), ReadResult::Success);
    assert_eq!(out, [8; 64]);
}

#[test]
fn drain_and_pending() {
    let (_r, mut w, mut rd) = setup(4096, 64);
    let mut out = [0u8; 64];
    rd.drain(); // not synchronised: no effect
    assert_eq!(rd.read(&mut out), ReadResult::EpochChanged);
    for _ in 0..3 {
        w.write(&[]).unwrap();
    }
    assert!(rd.has_pending_data());
    rd.drain();
    assert!(!rd.has_pending_data());
    assert_eq!(rd.read(&mut out), ReadResult::NoData);
    assert_eq!(rd.read_count(), 3);
}

#[test]
fn write_parts_and_write_at() {
    let (_r, mut w, mut rd) = setup(4096, 20);
    let mut out = [0u8; 20];
    assert_eq!(rd.read(&mut out), ReadResult::EpochChanged);
    assert_eq!(
        w.write(&[&[1; 15], &[2; 6]]),
        Err(ChannelError::DataTooLarge)
    );
    w.write(&[&[1; 14], &[2; 6]]).unwrap();
    assert_eq!(rd.read(&mut out), ReadResult::Success);
    assert_eq!(&out[..14], &[1; 14]);
    assert_eq!(&out[14..], &[2; 6]);
    // Leftover bytes from the previous use of a slot are zeroed.
    w.write_at(&[(3, &[5, 6]), (18, &[7, 8])]).unwrap();
    assert_eq!(rd.read(&mut out), ReadResult::Success);
    assert_eq!(
        out,
        [0, 0, 0, 5, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, 8]
    );
    w.write_at(&[]).unwrap();
    assert_eq!(rd.read(&mut out), ReadResult::Success);
    assert_eq!(out, [0; 20]);
    assert_eq!(
        w.write_at(&[(19, &[1, 2])]),
        Err(ChannelError::DataTooLarge)
    );
    assert_eq!(
        w.write_at(&[(4, &[1, 2]), (5, &[3])]),
        Err(ChannelError::BadParts)
    );
    assert_eq!(
        w.write_at(&[(8, &[1]), (2, &[3])]),
        Err(ChannelError::BadParts)
    );
    assert_eq!(
        w.write_at(&[(usize::MAX, &[1])]),
        Err(ChannelError::BadParts)
    );
    assert_eq!(
        rd.read(&mut out),
        ReadResult::NoData,
        "failed writes write nothing"
    );
}

#[test]
fn two_readers_one_writer() {
    let (r, mut w, mut a) = setup(4096, 64);
    let mut b = Reader::new(r.mem(), PROTO, 64);
    let mut out = [0u8; 64];
    assert_eq!(a.read(&mut out), ReadResult::EpochChanged);
    assert_eq!(b.read(&mut out), ReadResult::EpochChanged);
    w.write(&[&[4; 64]]).unwrap();
    assert_eq!(a.read(&mut out), ReadResult::Success);
    assert_eq!(b.read(&mut out), ReadResult::Success);
    assert_eq!(out, [4; 64]);
}

// Element format of the stress test: seq u64 | epoch u64 | payload | checksum u32.
const STRESS_SIZE: usize = 100; // not a multiple of 8: exercises unaligned head/tail copies

fn stress_element(seq: u64, epoch: u64) -> [u8; STRESS_SIZE] {
    let mut e = [0u8; STRESS_SIZE];
    e[..8].copy_from_slice(&seq.to_le_bytes());
    e[8..16].copy_from_slice(&epoch.to_le_bytes());
    for (i, b) in e[16..STRESS_SIZE - 4].iter_mut().enumerate() {
        *b = (seq.wrapping_mul(31).wrapping_add(i as u64 * 7) >> 3) as u8;
    }
    let sum = checksum(&e[..STRESS_SIZE - 4]);
    e[STRESS_SIZE - 4..].copy_from_slice(&sum.to_le_bytes());
    e
}

fn checksum(b: &[u8]) -> u32 {
    b.iter().fold(0x811c_9dc5u32, |h, &x| {
        (h ^ u32::from(x)).wrapping_mul(0x0100_0193)
    })
}

#[test]
fn two_thread_stress() {
    const WRITES: u64 = 3_000_000;
    const RESTART_EVERY: u64 = 400_000;
    let region = Arc::new(Region::new(4096));
    let done = Arc::new(AtomicBool::new(false));
    // Successful reads so far: on a loaded machine the reader thread may get
    // no CPU until the writer is done, so the writer keeps going (within the
    // deadline) until the reader has seen data while it runs.
    let reads = Arc::new(core::sync::atomic::AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(3);

    let mut writer = Writer::new(region.mem(), PROTO, STRESS_SIZE, 1).unwrap();
    let elements = writer.elements() as u64;
    assert_eq!(elements, 40);
    let wdone = done.clone();
    let wregion = region.clone();
    let wreads = reads.clone();
    let wt = std::thread::spawn(move || {
        let _keep = wregion;
        let mut seq = 0u64;
        let mut epoch = 1u64;
        while (seq < WRITES || wreads.load(Ordering::Relaxed) == 0) && Instant::now() < deadline {
            seq += 1;
            if seq.is_multiple_of(RESTART_EVERY) {
                epoch += 1;
                writer.restart(epoch);
            }
            writer.write(&[&stress_element(seq, epoch)]).unwrap();
            if seq.is_multiple_of(64) {
                std::thread::yield_now();
            }
        }
        wdone.store(true, Ordering::SeqCst);
        seq
    });

    let mut rd = Reader::new(region.mem(), PROTO, STRESS_SIZE);
    let mut out = [0u8; STRESS_SIZE];
    let (mut ok, mut overruns, mut epochs, mut incompatible) = (0u64, 0u64, 0u64, 0u64);
    let mut last_seq = 0u64;
    loop {
        let finished = done.load(Ordering::SeqCst);
        match rd.read(&mut out) {
            ReadResult::Success => {
                let seq = u64::from_le_bytes(out[..8].try_into().unwrap());
                let epoch = u64::from_le_bytes(out[8..16].try_into().unwrap());
                assert_eq!(out, stress_element(seq, epoch), "torn element seq {seq}");
                assert_eq!(epoch, rd.epoch(), "element from another epoch");
                assert!(seq > last_seq, "seq {seq} after {last_seq}");
                last_seq = seq;
                ok += 1;
                reads.store(ok, Ordering::Relaxed);
            }
            ReadResult::OverrunDetected => overruns += 1,
            ReadResult::EpochChanged => epochs += 1,
            ReadResult::NoData => {
                if finished {
                    break;
                }
            }
            ReadResult::Inactive => {
                if finished {
                    break;
                }
            }
            // Possible only if the writer restarts again while the reader
            // synchronises; the next read resynchronises.
            ReadResult::IncompatibleInterface => incompatible += 1,
        }
        assert!(
            Instant::now() < deadline + Duration::from_secs(2),
            "reader stuck"
        );
    }
    let written = wt.join().unwrap();
    assert!(written > 0);
    assert!(ok > 0, "no element read");
    assert!(epochs >= 1);
    assert_eq!(overruns, rd.overruns());
    std::eprintln!(
        "stress: written {written}, read {ok}, overruns {overruns} (lost {}), epochs {epochs}, \
         incompatible {incompatible}",
        rd.lost_elements()
    );
    // After the writer stopped, the reader has caught up and sees the last element.
    assert_eq!(rd.read(&mut out), ReadResult::NoData);
}

#[test]
fn many_sizes_roundtrip() {
    // Exercise aligned/unaligned copy paths for many element sizes.
    for size in 1..=70usize {
        let (_r, mut w, mut rd) = setup(64 + 3 * size + 5, size);
        let mut out = vec![0u8; size + 3];
        assert_eq!(rd.read(&mut out), ReadResult::EpochChanged);
        for round in 0..7u8 {
            let e = elem(size, round.wrapping_mul(17));
            w.write(&[&e]).unwrap();
            assert_eq!(rd.read(&mut out), ReadResult::Success);
            assert_eq!(&out[..size], &e[..]);
        }
    }
}
