use super::*;
use std::vec;
use std::vec::Vec;

fn region(kind: MemoryKind, address: u64, size: u64, w: bool, x: bool) -> MemoryRegion {
    MemoryRegion {
        kind,
        content: Content::Uninitialized,
        writable: w,
        executable: x,
        pattern: None,
        address,
        size,
        hash: None,
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn layout_constants() {
    assert_eq!(SINFO_SIZE, 0x7FD0);
    assert_eq!(RESOURCES_OFFSET + MAX_RESOURCES * RESOURCE_SIZE, SINFO_SIZE);
    assert_eq!(NAME_OFFSET + NAME_RECORD_SIZE, 77);
    assert_eq!(record::NAME + NAME_RECORD_SIZE + 3, record::DATA);
    assert_eq!(record::DATA + RESOURCE_DATA_SIZE, RESOURCE_SIZE);
    assert_eq!(MEMREGION_SIZE, 56);
    assert_eq!(NAME_RECORD_SIZE, 1 + NAME_MAX + 1);
    assert_eq!(SCHED_INFO_VA, SINFO_VA + SINFO_REGION_SIZE as u64);
    assert_eq!(
        &MAGIC_V04.to_le_bytes(),
        &[0x6d, 0x75, 0x69, 0x6e, 0x66, 0x6f, 0x00, 0x04]
    );
    assert_eq!(&MAGIC_V04.to_le_bytes()[..7], b"muinfo\0");
    assert_eq!(MAGIC_V03.to_le_bytes()[7], 3);
    assert_eq!(MAGIC_V05.to_le_bytes()[7], 5);
    assert_eq!(Version::V04.resource_count_offset(), 77);
    assert_eq!(Version::V03.resource_count_offset(), 77);
    assert_eq!(Version::V05.resource_count_offset(), 78);
    assert_eq!(TSC_KHZ_OFFSET, 8);
}

#[test]
fn memory_kind_numbering() {
    use MemoryKind::*;
    for v in [Version::V03, Version::V04, Version::V05] {
        assert_eq!(Subject.to_raw(v), Some(0));
        assert_eq!(SubjectBinary.to_raw(v), Some(2));
        assert_eq!(SubjectChannel.to_raw(v), Some(5));
        assert_eq!(SubjectSchedulingInfo.to_raw(v), Some(9));
        assert_eq!(SubjectSolo5BootInfo.to_raw(v), Some(16));
        assert_eq!(SubjectCrashAudit.to_raw(v), Some(17));
        for raw in 0..=255u8 {
            if let Some(k) = MemoryKind::from_raw(raw, v) {
                assert_eq!(k.to_raw(v), Some(raw));
            }
        }
    }
    assert_eq!(KernelInterface.to_raw(Version::V03), Some(18));
    assert_eq!(KernelInterface.to_raw(Version::V04), Some(19));
    assert_eq!(SubjectDeviceTree.to_raw(Version::V03), None);
    assert_eq!(SubjectDeviceTree.to_raw(Version::V04), Some(18));
    assert_eq!(
        MemoryKind::from_raw(18, Version::V03),
        Some(KernelInterface)
    );
    assert_eq!(MemoryKind::from_raw(19, Version::V03), None);
    assert_eq!(
        MemoryKind::from_raw(18, Version::V05),
        Some(SubjectDeviceTree)
    );
    assert_eq!(MemoryKind::from_raw(20, Version::V04), None);
}

/// A byte vector laid out by hand like the start of the v04 test vector
/// `T:mugensinfo/data/lnx_sinfo` described in §2.2.
fn hand_built_v04() -> Vec<u8> {
    let mut b = vec![0u8; SINFO_SIZE];
    b[0..8].copy_from_slice(&[0x6d, 0x75, 0x69, 0x6e, 0x66, 0x6f, 0x00, 0x04]);
    b[8..12].copy_from_slice(&2_111_994u32.to_le_bytes());
    b[12] = 3;
    b[13..16].copy_from_slice(b"lnx");
    b[77] = 0x0d;
    b[78] = 0x00;
    // Record 0 at 0x50: MEMORY "text".
    let r = 0x50;
    b[r..r + 4].copy_from_slice(&1u32.to_le_bytes());
    b[r + 4] = 4;
    b[r + 5..r + 9].copy_from_slice(b"text");
    let d = r + 72;
    b[d] = 2; // SUBJ_BIN
    b[d + 1] = 0; // UNINITIALIZED
    b[d + 2] = 2; // EXECUTABLE
    b[d + 3..d + 5].copy_from_slice(&[0x00, 0x01]); // pattern 0x0100
    b[d + 8..d + 16].copy_from_slice(&0x3000u64.to_le_bytes());
    b[d + 16..d + 24].copy_from_slice(&0xd000u64.to_le_bytes());
    // Records 1..13: events "ev1".."ev12", each number = index.
    for i in 1..13usize {
        let r = 0x50 + i * RESOURCE_SIZE;
        b[r..r + 4].copy_from_slice(&2u32.to_le_bytes());
        let name = std::format!("ev{i}");
        b[r + 4] = name.len() as u8;
        b[r + 5..r + 5 + name.len()].copy_from_slice(name.as_bytes());
        b[r + 72] = i as u8;
    }
    b
}

#[test]
fn hand_built_test_vector() {
    let b = hand_built_v04();
    let s = Sinfo::parse(&b).unwrap();
    assert_eq!(s.version(), Version::V04);
    assert_eq!(s.tsc_khz(), 2_111_994);
    assert_eq!(s.name(), "lnx");
    assert_eq!(s.resource_count(), 13);
    let first = s.resources().next().unwrap().unwrap();
    assert_eq!(first.name, "text");
    let text = MemoryRegion {
        kind: MemoryKind::SubjectBinary,
        content: Content::Uninitialized,
        writable: false,
        executable: true,
        pattern: None,
        address: 0x3000,
        size: 0xd000,
        hash: None,
    };
    assert_eq!(first.data, ResourceData::Memory(text));
    assert_eq!(s.memory("text"), Some(text));
    assert_eq!(s.memory("tex"), None);
    assert_eq!(s.memory("text2"), None);
    assert_eq!(s.event("ev7"), Some(7));
    assert_eq!(s.event("text"), None);
    assert_eq!(s.vector("ev7"), None);
    assert_eq!(s.resources().count(), 13);

    // The writer produces exactly the same bytes.
    let mut out = vec![0xffu8; SINFO_SIZE + 100];
    let mut w = SinfoWriter::new(&mut out, Version::V04, "lnx", 2_111_994).unwrap();
    w.memory("text", &text).unwrap();
    for i in 1..13u8 {
        w.event(&std::format!("ev{i}"), i).unwrap();
    }
    assert_eq!(w.finish(), SINFO_SIZE);
    assert_eq!(&out[..SINFO_SIZE], &b[..]);
    assert!(out[SINFO_SIZE..].iter().all(|&x| x == 0xff));
}

fn build_full(version: Version) -> Vec<u8> {
    let mut buf = vec![0u8; SINFO_REGION_SIZE];
    let mut w = SinfoWriter::new(&mut buf, version, "unikernel", 3_000_000).unwrap();
    w.memory(
        "boot_info",
        &region(
            MemoryKind::SubjectSolo5BootInfo,
            0x1000,
            0x1000,
            false,
            false,
        ),
    )
    .unwrap();
    w.memory(
        "text",
        &region(MemoryKind::SubjectBinary, 0x20_0000, 0x5000, false, true),
    )
    .unwrap();
    let mut fill = region(MemoryKind::SubjectBinary, 0x20_d000, 0x5000, true, false);
    fill.content = Content::Fill;
    fill.pattern = Some(0);
    fill.hash = Some([0xab; 32]);
    w.memory("data|fill", &fill).unwrap();
    w.memory(
        "ram",
        &region(MemoryKind::Subject, 0x21_2000, 0x2000_0000, true, false),
    )
    .unwrap();
    let mut chan = region(
        MemoryKind::SubjectChannel,
        0xE000_0000,
        0x10_0000,
        false,
        false,
    );
    chan.content = Content::Fill;
    chan.pattern = Some(0);
    w.memory("net0|in", &chan).unwrap();
    chan.address = 0xE010_0000;
    chan.writable = true;
    w.memory("net0|out", &chan).unwrap();
    w.memory(
        "debuglog",
        &region(
            MemoryKind::SubjectChannel,
            0xF_FFF0_0000,
            0x2_0000,
            true,
            false,
        ),
    )
    .unwrap();
    w.event("solo5_exit", 0).unwrap();
    w.vector("irq", 48).unwrap();
    w.device(
        "nic",
        &Device {
            sid: 0x18,
            irte_start: 3,
            irq_start: 4,
            ir_count: 2,
            flags: 1,
            pci_ids: Some(PciIds {
                vendor_id: 0x8086,
                device_id: 0x100e,
                class_code: 0x0200,
                reset_method: 1,
            }),
        },
    )
    .unwrap();
    w.dev_mem(
        "nic_mmio",
        &DevMem {
            flags: 1,
            address: 0xF000_0000,
            size: 0x2_0000,
            bar: Some(DevMemBar {
                sid: 0x18,
                io_mem_flags: 2,
                bar_idx: 0,
                bar_address: 0xFEB0_0000,
            }),
        },
    )
    .unwrap();
    if version == Version::V05 {
        w.dev_port(
            "nic_io",
            &DevPort {
                sid: 0x18,
                bar_idx: 1,
                address: 0xc000,
                size: 0x40,
            },
        )
        .unwrap();
    } else {
        assert_eq!(
            w.dev_port("nic_io", &DevPort::default()),
            Err(SinfoError::KindNotInVersion)
        );
    }
    assert_eq!(w.finish(), SINFO_SIZE);
    buf
}

#[test]
fn writer_reader_roundtrip_v04_v05_v03() {
    for version in [Version::V03, Version::V04, Version::V05] {
        let buf = build_full(version);
        let s = Sinfo::parse(&buf).unwrap();
        assert_eq!(s.version(), version);
        assert_eq!(s.tsc_khz(), 3_000_000);
        assert_eq!(s.name(), "unikernel");
        let n = if version == Version::V05 { 12 } else { 11 };
        assert_eq!(s.resource_count(), n);
        let count_off = version.resource_count_offset();
        assert_eq!(u16_at(&buf, count_off), n as u16);
        assert_eq!(buf[if count_off == 77 { 79 } else { 77 }], 0);
        assert!(s.resources().all(|r| r.is_ok()));

        let ram = s.memory("ram").unwrap();
        assert_eq!(ram.address, 0x21_2000);
        assert!(ram.writable && !ram.executable);
        let out = s.memory("net0|out").unwrap();
        assert_eq!(out.kind, MemoryKind::SubjectChannel);
        assert_eq!(out.content, Content::Fill);
        assert_eq!(out.pattern, Some(0));
        assert!(out.writable);
        assert!(!s.memory("net0|in").unwrap().writable);
        let fill = s.memory("data|fill").unwrap();
        assert_eq!(fill.hash, Some([0xab; 32]));
        assert_eq!(s.event("solo5_exit"), Some(0));
        assert_eq!(s.vector("irq"), Some(48));
        assert_eq!(s.event("irq"), None);
        assert_eq!(s.memory("solo5_exit"), None);

        let dev = match s.find("nic").unwrap().data {
            ResourceData::Device(d) => d,
            other => panic!("{other:?}"),
        };
        assert_eq!(dev.sid, 0x18);
        assert_eq!(dev.irte_start, 3);
        assert_eq!(dev.irq_start, 4);
        assert_eq!(dev.ir_count, 2);
        assert!(dev.msi_capable());
        let mem = match s.find("nic_mmio").unwrap().data {
            ResourceData::DevMem(d) => d,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            (mem.flags, mem.address, mem.size),
            (1, 0xF000_0000, 0x2_0000)
        );
        if version == Version::V05 {
            assert_eq!(dev.pci_ids.unwrap().device_id, 0x100e);
            assert_eq!(mem.bar.unwrap().bar_address, 0xFEB0_0000);
            let port = match s.find("nic_io").unwrap().data {
                ResourceData::DevPort(p) => p,
                other => panic!("{other:?}"),
            };
            assert_eq!((port.address, port.size, port.bar_idx), (0xc000, 0x40, 1));
        } else {
            assert_eq!(dev.pci_ids, None);
            assert_eq!(mem.bar, None);
        }

        // Re-encoding every resource reproduces the page.
        let mut again = vec![0u8; SINFO_SIZE];
        let mut w = SinfoWriter::new(&mut again, version, s.name(), s.tsc_khz()).unwrap();
        for r in s.resources() {
            w.resource(&r.unwrap()).unwrap();
        }
        w.finish();
        assert_eq!(&again[..], &buf[..SINFO_SIZE]);
    }
}

#[test]
fn v04_and_v05_differ_only_where_specified() {
    let mut a = vec![0u8; SINFO_SIZE];
    let mut b = vec![0u8; SINFO_SIZE];
    for (buf, v) in [(&mut a, Version::V04), (&mut b, Version::V05)] {
        let mut w = SinfoWriter::new(buf, v, "x", 1).unwrap();
        w.event("e", 5).unwrap();
    }
    assert_eq!(a[77..80], [1, 0, 0]);
    assert_eq!(b[77..80], [0, 1, 0]);
    assert_eq!(a[7], 4);
    assert_eq!(b[7], 5);
    assert_eq!(a[8..77], b[8..77]);
    assert_eq!(a[80..], b[80..]);
    // The count is taken from the offset selected by the magic: a v04 page
    // relabelled as v05 reads its count from 78..80 (here 0).
    let mut c = a.clone();
    c[7] = 5;
    assert_eq!(Sinfo::parse(&c).unwrap().resource_count(), 0);
    let mut d = a.clone();
    d[78] = 1; // v05 would read 0x0001 at 78; v04 reads 0x0101 at 77
    assert_eq!(
        Sinfo::parse(&d).unwrap_err(),
        SinfoError::BadResourceCount(0x0101)
    );
}

#[test]
fn iteration_stops_at_count_and_at_kind_none() {
    let mut buf = vec![0u8; SINFO_SIZE];
    let mut w = SinfoWriter::new(&mut buf, Version::V04, "s", 1).unwrap();
    for i in 0..5u8 {
        w.event(&std::format!("e{i}"), i).unwrap();
    }
    w.finish();
    // Count says 3: only three are visible.
    buf[77] = 3;
    let s = Sinfo::parse(&buf).unwrap();
    assert_eq!(s.resources().count(), 3);
    assert_eq!(s.event("e3"), None);
    // Count says 5 but record 1 is NONE: iteration stops after record 0.
    buf[77] = 5;
    let r1 = RESOURCES_OFFSET + RESOURCE_SIZE;
    buf[r1..r1 + 4].copy_from_slice(&0u32.to_le_bytes());
    let s = Sinfo::parse(&buf).unwrap();
    assert_eq!(s.resources().count(), 1);
    assert_eq!(s.event("e0"), Some(0));
    assert_eq!(s.event("e2"), None);
}

#[test]
fn bad_records_are_errors_not_panics() {
    let mut buf = vec![0u8; SINFO_SIZE];
    let mut w = SinfoWriter::new(&mut buf, Version::V04, "s", 1).unwrap();
    w.memory("a", &region(MemoryKind::Subject, 0, 0x1000, true, false))
        .unwrap();
    w.memory("b", &region(MemoryKind::Subject, 0, 0x1000, true, false))
        .unwrap();
    w.memory("c", &region(MemoryKind::Subject, 0, 0x1000, true, false))
        .unwrap();
    w.event("d", 1).unwrap();
    w.resource(&Resource {
        name: "u",
        data: ResourceData::Unknown(77, &[1, 2, 3]),
    })
    .unwrap();
    w.finish();
    let rec = |i: usize| RESOURCES_OFFSET + i * RESOURCE_SIZE;
    buf[rec(0) + record::DATA] = 99; // bad memory kind
    buf[rec(1) + record::DATA + 1] = 7; // bad content
    buf[rec(2) + record::DATA + 3..rec(2) + record::DATA + 5]
        .copy_from_slice(&300u16.to_le_bytes());
    buf[rec(3) + record::NAME] = 64; // name too long
    let s = Sinfo::parse(&buf).unwrap();
    let all: Vec<_> = s.resources().collect();
    assert_eq!(all.len(), 5);
    assert_eq!(all[0], Err(SinfoError::BadMemoryKind(99)));
    assert_eq!(all[1], Err(SinfoError::BadContent(7)));
    assert_eq!(all[2], Err(SinfoError::BadPattern(300)));
    assert_eq!(all[3], Err(SinfoError::BadName));
    match all[4] {
        Ok(Resource {
            name: "u",
            data: ResourceData::Unknown(77, d),
        }) => {
            assert_eq!(d.len(), RESOURCE_DATA_SIZE);
            assert_eq!(&d[..4], &[1, 2, 3, 0]);
        }
        ref other => panic!("{other:?}"),
    }
    assert_eq!(s.memory("a"), None);
    assert_eq!(s.memory("b"), None);
    assert_eq!(s.memory("c"), None);
    assert_eq!(s.event("d"), None);
    // Non-UTF-8 name.
    buf[rec(3) + record::NAME] = 1;
    buf[rec(3) + record::NAME + 1] = 0xff;
    let s = Sinfo::parse(&buf).unwrap();
    assert_eq!(s.resources().nth(3), Some(Err(SinfoError::BadName)));
}

#[test]
fn header_validation() {
    let good = build_full(Version::V04);
    assert!(Sinfo::parse(&good[..SINFO_SIZE]).is_ok());
    assert_eq!(
        Sinfo::parse(&good[..SINFO_SIZE - 1]).unwrap_err(),
        SinfoError::Truncated {
            len: SINFO_SIZE - 1
        }
    );
    assert_eq!(
        Sinfo::parse(&[]).unwrap_err(),
        SinfoError::Truncated { len: 0 }
    );
    let mut bad = good.clone();
    bad[7] = 6;
    assert!(matches!(Sinfo::parse(&bad), Err(SinfoError::BadMagic(_))));
    let mut bad = good.clone();
    bad[77..79].copy_from_slice(&256u16.to_le_bytes());
    assert_eq!(
        Sinfo::parse(&bad).unwrap_err(),
        SinfoError::BadResourceCount(256)
    );
    let mut ok = good.clone();
    ok[77..79].copy_from_slice(&255u16.to_le_bytes());
    let s = Sinfo::parse(&ok).unwrap();
    assert_eq!(s.resources().count(), 11); // stops at the first NONE record
    let mut bad = good.clone();
    bad[NAME_OFFSET] = 64;
    assert_eq!(Sinfo::parse(&bad).unwrap_err(), SinfoError::BadName);
    let mut bad = good.clone();
    bad[NAME_OFFSET + 1] = 0xc3; // truncated UTF-8 sequence
    bad[NAME_OFFSET] = 1;
    assert_eq!(Sinfo::parse(&bad).unwrap_err(), SinfoError::BadName);
}

#[test]
fn writer_limits() {
    let mut small = vec![0u8; SINFO_SIZE - 1];
    assert_eq!(
        SinfoWriter::new(&mut small, Version::V04, "x", 1).unwrap_err(),
        SinfoError::BufferTooSmall {
            len: SINFO_SIZE - 1
        }
    );
    let mut buf = vec![0u8; SINFO_SIZE];
    let long = "n".repeat(64);
    assert_eq!(
        SinfoWriter::new(&mut buf, Version::V04, &long, 1).unwrap_err(),
        SinfoError::NameTooLong { len: 64 }
    );
    let mut w = SinfoWriter::new(&mut buf, Version::V04, &long[..63], 1).unwrap();
    assert_eq!(w.event(&long, 1), Err(SinfoError::NameTooLong { len: 64 }));
    assert_eq!(w.event("a\0b", 1), Err(SinfoError::NameContainsNul));
    w.event(&long[..63], 1).unwrap();
    for i in 1..MAX_RESOURCES {
        w.vector(&std::format!("v{i}"), i as u8).unwrap();
    }
    assert_eq!(w.count(), MAX_RESOURCES);
    assert_eq!(w.event("one_more", 1), Err(SinfoError::TooManyResources));
    w.finish();
    let s = Sinfo::parse(&buf).unwrap();
    assert_eq!(s.name().len(), 63);
    assert_eq!(s.resources().count(), MAX_RESOURCES);
    assert_eq!(s.event(&long[..63]), Some(1));
    assert_eq!(s.vector("v254"), Some(254));
    assert_eq!(buf[NAME_OFFSET + 64], 0, "name record NUL terminator");

    let mut buf = vec![0u8; SINFO_SIZE];
    let mut w = SinfoWriter::new(&mut buf, Version::V03, "x", 1).unwrap();
    let dt = region(MemoryKind::SubjectDeviceTree, 0, 0x1000, false, false);
    assert_eq!(w.memory("dt", &dt), Err(SinfoError::KindNotInVersion));
    assert_eq!(
        w.resource(&Resource {
            name: "z",
            data: ResourceData::Unknown(0, &[])
        }),
        Err(SinfoError::BadResourceData)
    );
    assert_eq!(
        w.resource(&Resource {
            name: "z",
            data: ResourceData::Unknown(9, &[0; 57])
        }),
        Err(SinfoError::BadResourceData)
    );
}

#[test]
fn patch_tsc() {
    let mut buf = build_full(Version::V04);
    patch_tsc_khz(&mut buf, 2_500_000).unwrap();
    assert_eq!(Sinfo::parse(&buf).unwrap().tsc_khz(), 2_500_000);
    assert_eq!(&buf[8..12], &2_500_000u32.to_le_bytes());
    let mut junk = vec![0u8; SINFO_SIZE];
    assert!(matches!(
        patch_tsc_khz(&mut junk, 1),
        Err(SinfoError::BadMagic(0))
    ));
    assert_eq!(
        patch_tsc_khz(&mut junk[..10], 1),
        Err(SinfoError::Truncated { len: 10 })
    );
}

#[test]
fn from_ptr_reads_page() {
    let buf = build_full(Version::V04);
    // SAFETY: `buf` holds SINFO_REGION_SIZE ≥ SINFO_SIZE bytes and is not
    // modified while `s` is used.
    let s = unsafe { Sinfo::from_ptr(buf.as_ptr()) }.unwrap();
    assert_eq!(s.name(), "unikernel");
}

#[test]
fn hostile_random_pages_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let base = build_full(Version::V04);
    for round in 0..400 {
        let mut page = base.clone();
        match round % 4 {
            // Fully random content with a valid magic.
            0 => {
                for b in page.iter_mut() {
                    *b = rng.next() as u8;
                }
                let v = [MAGIC_V03, MAGIC_V04, MAGIC_V05][(rng.next() % 3) as usize];
                page[..8].copy_from_slice(&v.to_le_bytes());
            }
            // Random byte flips in a valid page.
            1 => {
                for _ in 0..64 {
                    let i = (rng.next() as usize) % SINFO_SIZE;
                    page[i] = rng.next() as u8;
                }
            }
            // Oversized / random counts and name lengths.
            2 => {
                let c = rng.next() as u16;
                page[77..79].copy_from_slice(&c.to_le_bytes());
                page[NAME_OFFSET] = rng.next() as u8;
                for i in 0..MAX_RESOURCES {
                    if rng.next().is_multiple_of(4) {
                        page[RESOURCES_OFFSET + i * RESOURCE_SIZE + record::NAME] =
                            rng.next() as u8;
                    }
                }
            }
            // Truncation at a random length.
            _ => {
                let len = (rng.next() as usize) % (SINFO_SIZE + 1);
                page.truncate(len);
            }
        }
        if let Ok(s) = Sinfo::parse(&page) {
            assert!(s.resource_count() <= MAX_RESOURCES);
            let mut n = 0;
            for r in s.resources() {
                n += 1;
                if let Ok(r) = r {
                    assert!(r.name.len() <= NAME_MAX);
                    let _ = s.find(r.name);
                    let _ = s.memory(r.name);
                    let _ = s.event(r.name);
                    let _ = s.vector(r.name);
                }
            }
            assert!(n <= MAX_RESOURCES);
            let _ = (
                s.name(),
                s.tsc_khz(),
                s.memory("ram"),
                s.event("solo5_exit"),
            );
        }
    }
}

/// Fuzzing regression (`muen_sinfo`): a name whose length covers NUL padding parsed, but the
/// page could not be written back (`SinfoWriter` refuses NUL). Such names are now `BadName`.
#[test]
fn fuzz_regression_name_with_nul() {
    let mut page = vec![0u8; SINFO_SIZE];
    page[..13].copy_from_slice(b"muinfo\x00\x04\x00\x00\x00\x00\x18");
    assert_eq!(Sinfo::parse(&page).unwrap_err(), SinfoError::BadName);
    // The same for a resource record: reported, and iteration goes on.
    let mut buf = vec![0u8; SINFO_SIZE];
    let mut w = SinfoWriter::new(&mut buf, Version::V04, "unipi", 1000).unwrap();
    w.event("a", 1).unwrap();
    w.event("b", 2).unwrap();
    w.finish();
    let rec = RESOURCES_OFFSET + record::NAME;
    buf[rec] = 3; // "a\0\0"
    let s = Sinfo::parse(&buf).unwrap();
    let all: Vec<_> = s.resources().collect();
    assert_eq!(all[0], Err(SinfoError::BadName));
    assert!(matches!(all[1], Ok(Resource { name: "b", .. })));
}
