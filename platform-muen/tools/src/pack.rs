//! The packer: component specs + subject binaries + a system description →
//! a system image (crate `muen-image`) appended to the minimal kernel's ELF,
//! giving one `system.elf` that QEMU boots with `-kernel`.
//!
//! This is the tiny analogue of Muen's policy compilation: it expands each
//! component into a subject address space (adding what Muen's expander and
//! libraries add: sinfo, scheduling info, timed event, debuglog, time_info),
//! generates the sinfo page (like `mugensinfo`) and the Solo5 boot info (like
//! `mugensolo5`), and wires channels to the kernel's peers.

use crate::cspec::{self, Component, Content};
use crate::system::{SubjectDesc, SystemDesc};
use muen_abi::sinfo::{self, MemoryKind, MemoryRegion, SinfoWriter};
use muen_image::{Backing, Builder, EventSpec, MappingSpec, Peer, Settings, SubjectRegs};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// `libmudebuglog`: the writer channel `debuglog` (mirage-solo5's `logchannel_size`).
pub const DEBUGLOG_VA: u64 = 0xF_FFF0_0000;
pub const DEBUGLOG_SIZE: u64 = 0x2_0000;
/// `libmutime`: the reader page `time_info`.
pub const TIME_INFO_VA: u64 = 0xF_FFD0_0000;
pub const TIME_INFO_SIZE: u64 = 0x1000;

const PAGE: u64 = 0x1000;
/// Multiboot1 magic and the flags of our header (page-align, memory map, a.out kludge).
const MB_MAGIC: u32 = 0x1BAD_B002;
const MB_FLAGS: u32 = 0x0001_0003;

/// One region of a subject before it becomes an image mapping and a sinfo record.
struct Region {
    name: String,
    va: u64,
    size: u64,
    writable: bool,
    executable: bool,
    kind: MemoryKind,
    content: sinfo::Content,
    pattern: Option<u8>,
    backing: Backing,
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn kind_of(s: Option<&str>) -> Result<MemoryKind, String> {
    Ok(match s.unwrap_or("subject") {
        "subject" => MemoryKind::Subject,
        "subject_binary" => MemoryKind::SubjectBinary,
        "subject_solo5_boot_info" => MemoryKind::SubjectSolo5BootInfo,
        "subject_channel" => MemoryKind::SubjectChannel,
        "subject_initrd" => MemoryKind::SubjectInitrd,
        other => {
            return Err(format!(
                "memory type '{other}' is not supported by the minimal kernel"
            ));
        }
    })
}

/// Builds the image for `sys`; `base` resolves the files named in cspecs.
pub fn build_image(sys: &SystemDesc) -> Result<Vec<u8>, String> {
    let mut flags = 0;
    if sys.debug_exit {
        flags |= muen_image::FLAG_DEBUG_EXIT;
    }
    flags |= u32::from(sys.net_restart_ms) << muen_image::FLAG_NET_RESTART_SHIFT;
    let mut b = Builder::new(Settings {
        minor_frame_us: sys.minor_frame_us,
        flags,
    });
    let time_info = b
        .physical("time_info", TIME_INFO_SIZE, Peer::TimeInfo)
        .map_err(|e| e.to_string())?;
    let mut port = 0u32;
    for (idx, desc) in sys.subjects.iter().enumerate() {
        let text = fs::read_to_string(&desc.cspec)
            .map_err(|e| format!("{}: {e}", desc.cspec.display()))?;
        let comp = cspec::from_xml(&text).map_err(|e| format!("{}: {e}", desc.cspec.display()))?;
        let dir = desc.cspec.parent().unwrap_or(Path::new("."));
        subject(
            &mut b, sys, idx as u32, desc, &comp, dir, time_info, &mut port,
        )
        .map_err(|e| format!("subject {}: {e}", desc.name))?;
    }
    b.finish().map_err(|e| format!("image: {e}"))
}

#[allow(clippy::too_many_arguments)]
fn subject(
    b: &mut Builder,
    sys: &SystemDesc,
    idx: u32,
    desc: &SubjectDesc,
    comp: &Component,
    dir: &Path,
    time_info: u32,
    port: &mut u32,
) -> Result<(), String> {
    let bootparams = [comp.bootparams.trim(), desc.bootparams.trim()]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    let mut regions: Vec<Region> = Vec::new();
    let mut boot_info_at: Option<usize> = None;

    for p in &comp.provides {
        let kind = kind_of(p.kind.as_deref())?;
        let (content, pattern, backing) = match &p.content {
            Content::File { .. } if kind == MemoryKind::SubjectSolo5BootInfo => {
                boot_info_at = Some(regions.len());
                (sinfo::Content::File, None, Backing::Uninitialized) // filled in below
            }
            Content::File { filename, offset } => {
                let data = read(&dir.join(filename))?;
                let off = offset.unwrap_or(0) as usize;
                let bytes = data
                    .get(off..)
                    .ok_or_else(|| format!("{filename}: offset {off:#x} beyond the file"))?;
                let len = bytes.len().min(p.size as usize);
                (sinfo::Content::File, None, b.blob(&bytes[..len]))
            }
            Content::Fill(v) => (sinfo::Content::Fill, Some(*v), Backing::Fill(*v)),
            Content::None => (sinfo::Content::Uninitialized, None, Backing::Uninitialized),
        };
        regions.push(Region {
            name: p.logical.clone(),
            va: p.va,
            size: p.size,
            writable: p.writable,
            executable: p.executable,
            kind,
            content,
            pattern,
            backing,
        });
    }

    let files: BTreeMap<&str, &Path> = desc
        .memory
        .iter()
        .map(|(l, f)| (l.as_str(), f.as_path()))
        .collect();
    for (logical, _) in &desc.memory {
        if !comp.memory.iter().any(|m| &m.logical == logical) {
            return Err(format!(
                "system maps memory '{logical}' that the component does not require"
            ));
        }
    }
    for m in &comp.memory {
        let file = files.get(m.logical.as_str()).ok_or_else(|| {
            format!(
                "the component requires memory '{}' but the system provides no file for it",
                m.logical
            )
        })?;
        let data = read(file)?;
        if data.len() as u64 > m.size {
            return Err(format!(
                "{} ({} bytes) does not fit the {} region ({} bytes); regenerate the cspec",
                file.display(),
                data.len(),
                m.logical,
                m.size
            ));
        }
        regions.push(Region {
            name: m.logical.clone(),
            va: m.va,
            size: m.size,
            writable: m.writable,
            executable: m.executable,
            kind: MemoryKind::Subject,
            content: sinfo::Content::File,
            pattern: None,
            backing: b.blob(&data),
        });
    }

    for ch in &comp.channels {
        let peer = if let Some(n) = ch.logical.strip_suffix("|in").filter(|_| !ch.writer) {
            net_port(comp, n, port).map(|p| Peer::NetToSubject { port: p })
        } else if let Some(n) = ch.logical.strip_suffix("|out").filter(|_| ch.writer) {
            net_port(comp, n, port).map(|p| Peer::NetFromSubject { port: p })
        } else {
            None
        };
        let phys_name = format!("{}_{}", desc.name, ch.logical.replace('|', "_"));
        let phys = b
            .physical(&phys_name, ch.size, peer.unwrap_or(Peer::None))
            .map_err(|e| e.to_string())?;
        regions.push(Region {
            name: ch.logical.clone(),
            va: ch.va,
            size: ch.size,
            writable: ch.writer,
            executable: false,
            kind: MemoryKind::SubjectChannel,
            content: sinfo::Content::Fill,
            pattern: Some(0),
            backing: Backing::Physical(phys),
        });
    }
    // Each net device used one port number for its in/out pair.
    if comp
        .channels
        .iter()
        .any(|c| c.logical.ends_with("|in") && !c.writer)
    {
        *port = port_count(comp, *port);
    }

    for lib in &comp.libraries {
        match lib.as_str() {
            "libmudebuglog" => {
                let phys = b
                    .physical(
                        &format!("{}_debuglog", desc.name),
                        DEBUGLOG_SIZE,
                        Peer::DebugLog { subject: idx },
                    )
                    .map_err(|e| e.to_string())?;
                regions.push(Region {
                    name: "debuglog".into(),
                    va: DEBUGLOG_VA,
                    size: DEBUGLOG_SIZE,
                    writable: true,
                    executable: false,
                    kind: MemoryKind::SubjectChannel,
                    content: sinfo::Content::Fill,
                    pattern: Some(0),
                    backing: Backing::Physical(phys),
                });
            }
            "libmutime" => regions.push(Region {
                name: "time_info".into(),
                va: TIME_INFO_VA,
                size: TIME_INFO_SIZE,
                writable: false,
                executable: false,
                kind: MemoryKind::SubjectChannel,
                content: sinfo::Content::Uninitialized,
                pattern: None,
                backing: Backing::Physical(time_info),
            }),
            other => return Err(format!("library '{other}' is not known to the packer")),
        }
    }

    // What Muen's expander adds to every subject.
    let sinfo_idx = regions.len();
    regions.push(Region {
        name: "sinfo".into(),
        va: sinfo::SINFO_VA,
        size: sinfo::SINFO_REGION_SIZE as u64,
        writable: false,
        executable: false,
        kind: MemoryKind::SubjectInfo,
        content: sinfo::Content::File,
        pattern: None,
        backing: Backing::Uninitialized, // filled in below
    });
    regions.push(Region {
        name: "scheduling_info".into(),
        va: sinfo::SCHED_INFO_VA,
        size: PAGE,
        writable: false,
        executable: false,
        kind: MemoryKind::SubjectSchedulingInfo,
        content: sinfo::Content::Uninitialized,
        pattern: None,
        backing: Backing::SchedulingInfo,
    });
    regions.push(Region {
        name: "timed_event".into(),
        va: sinfo::TIMED_EVENT_VA,
        size: PAGE,
        writable: true,
        executable: false,
        kind: MemoryKind::SubjectTimedEvent,
        content: sinfo::Content::Uninitialized,
        pattern: None,
        backing: Backing::TimedEvent,
    });

    // Boot info (mugensolo5): mem_size = end of `ram`, kernel_end = last byte of the binary.
    if let Some(i) = boot_info_at {
        let ram = regions
            .iter()
            .find(|r| r.name == "ram")
            .ok_or("component provides no 'ram' region")?;
        let mem_size = ram.va + ram.size;
        let kernel_end = regions
            .iter()
            .filter(|r| r.kind == MemoryKind::SubjectBinary)
            .map(|r| r.va + r.size - 1)
            .max()
            .unwrap_or(0);
        let mut page = [0u8; muen_abi::bootinfo::BOOT_INFO_SIZE];
        muen_abi::bootinfo::build(mem_size, kernel_end, &bootparams, &mut page)
            .map_err(|e| format!("boot info: {e:?} (command line {} bytes)", bootparams.len()))?;
        regions[i].backing = b.blob(&page);
    }

    // sinfo (mugensinfo): every mapping in order, then the vmcall events.
    let version = sys.sinfo;
    let mut page = vec![0u8; sinfo::SINFO_REGION_SIZE];
    // tsc_khz is patched by the kernel with the rate it measured at boot.
    let mut w =
        SinfoWriter::new(&mut page, version, &desc.name, 0).map_err(|e| format!("sinfo: {e:?}"))?;
    for r in &regions {
        let rec = MemoryRegion {
            kind: r.kind,
            content: r.content,
            writable: r.writable,
            executable: r.executable,
            pattern: r.pattern,
            address: r.va,
            size: r.size,
            hash: None,
        };
        w.memory(&r.name, &rec)
            .map_err(|e| format!("sinfo record {}: {e:?}", r.name))?;
    }
    for (id, logical, _) in &desc.events {
        w.event(logical, *id)
            .map_err(|e| format!("sinfo event {logical}: {e:?}"))?;
    }
    w.finish();
    regions[sinfo_idx].backing = b.blob(&page);

    let mappings = regions
        .into_iter()
        .map(|r| MappingSpec {
            name: r.name,
            va: r.va,
            size: r.size,
            writable: r.writable,
            executable: r.executable,
            backing: r.backing,
        })
        .collect();
    let events = desc
        .events
        .iter()
        .map(|(id, logical, action)| EventSpec {
            name: logical.clone(),
            number: *id,
            action: *action,
        })
        .collect();
    let regs = SubjectRegs {
        rip: comp.rip,
        rsp: comp.rsp,
        rdi: comp.rdi,
        tsc_khz: 0,
    };
    b.subject(&desc.name, regs, mappings, events)
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// The bridge port of net device `n` of this component: ports are numbered
/// in the order the devices' `|in` channels appear, starting at `first`.
fn net_port(comp: &Component, n: &str, first: &u32) -> Option<u32> {
    let has_pair = comp
        .channels
        .iter()
        .any(|c| c.logical == format!("{n}|in") && !c.writer)
        && comp
            .channels
            .iter()
            .any(|c| c.logical == format!("{n}|out") && c.writer);
    if !has_pair {
        return None;
    }
    let pos = comp
        .channels
        .iter()
        .filter(|c| c.logical.ends_with("|in") && !c.writer)
        .position(|c| c.logical == format!("{n}|in"))?;
    Some(*first + pos as u32)
}

fn port_count(comp: &Component, first: u32) -> u32 {
    first
        + comp
            .channels
            .iter()
            .filter(|c| c.logical.ends_with("|in") && !c.writer)
            .count() as u32
}

/// Appends `image` to the kernel ELF per docs/kernel.md ("Inputs"): at the
/// first page boundary after the single `PT_LOAD` segment's memory image,
/// extending the segment (and the multiboot header) to cover it. With
/// `multiboot`, the header's checksum is armed so GRUB boots it via
/// multiboot; otherwise QEMU's `-kernel` uses the PVH entry.
pub fn append_to_kernel(kernel: &[u8], image: &[u8], multiboot: bool) -> Result<Vec<u8>, String> {
    let elf = crate::elf::Elf::parse(kernel).map_err(|e| format!("kernel: {e}"))?;
    let loads: Vec<_> = elf.loads().copied().collect();
    let [seg] = loads.as_slice() else {
        return Err(format!(
            "kernel ELF must have exactly one PT_LOAD segment, it has {}",
            loads.len()
        ));
    };
    let image_pa = (seg.paddr + seg.memsz).div_ceil(PAGE) * PAGE;
    let image_off = seg.offset + (image_pa - seg.paddr);
    let mut out = kernel[..(seg.offset + seg.filesz) as usize].to_vec();
    out.resize(image_off as usize, 0);
    out.extend_from_slice(image);
    let new_size = image_off - seg.offset + image.len() as u64;
    // Program header: p_filesz (+32) and p_memsz (+40).
    let ph = elf.phoff as usize + seg.index * 56;
    out[ph + 32..ph + 40].copy_from_slice(&new_size.to_le_bytes());
    out[ph + 40..ph + 48].copy_from_slice(&new_size.to_le_bytes());
    // No section headers: the result is a loadable image, not a link input.
    out[40..48].fill(0); // e_shoff
    out[58..64].fill(0); // e_shentsize, e_shnum, e_shstrndx
    // Multiboot1 header with the a.out kludge, within the first 8 KiB: the
    // kernel ships it with checksum 0 (disarmed), because QEMU's -kernel
    // prefers a valid multiboot header over PVH. Load and bss end always
    // cover the image; the checksum is set only for multiboot loaders (GRUB).
    let end = (seg.paddr + new_size) as u32;
    let scan = out.len().min(8192);
    let header = (0..scan.saturating_sub(32)).step_by(4).find(|&off| {
        u32::from_le_bytes(out[off..off + 4].try_into().unwrap()) == MB_MAGIC
            && u32::from_le_bytes(out[off + 4..off + 8].try_into().unwrap()) == MB_FLAGS
    });
    match header {
        Some(off) => {
            out[off + 20..off + 24].copy_from_slice(&end.to_le_bytes()); // load_end_addr
            out[off + 24..off + 28].copy_from_slice(&end.to_le_bytes()); // bss_end_addr
            let sum = if multiboot {
                0u32.wrapping_sub(MB_MAGIC.wrapping_add(MB_FLAGS))
            } else {
                0
            };
            out[off + 8..off + 12].copy_from_slice(&sum.to_le_bytes());
        }
        None if multiboot => {
            return Err("kernel has no multiboot header (magic + a.out kludge flags)".into());
        }
        None => {}
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cspec::{GenOptions, Generation};
    use muen_abi::sinfo::{Sinfo, Version};

    /// A one-subject system in a fresh directory: the test ELF, its cspec
    /// (of generation `generation`) and the system description.
    fn system(dir: &Path, sinfo: &str, generation: Generation) -> SystemDesc {
        let elf_bytes = crate::elf::tests_support::tiny_elf();
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join("s.elf"), &elf_bytes).unwrap();
        let elf = crate::elf::Elf::parse(&elf_bytes).unwrap();
        let opts = GenOptions {
            name: "s".into(),
            elf_filename: "s.elf".into(),
            ram_bytes: 0x10_0000,
            channel_size: cspec::DEFAULT_CHANNEL_SIZE,
            nets: vec!["net0".into()],
            bootparams: "--x".into(),
            memory: vec![],
            generation,
        };
        let comp = cspec::generate(&elf, &opts).unwrap();
        fs::write(dir.join("s.cspec.xml"), cspec::to_xml(&comp)).unwrap();
        let text =
            format!(r#"<system sinfo="{sinfo}"><subject name="s" cspec="s.cspec.xml"/></system>"#);
        SystemDesc::parse(&text, dir).unwrap()
    }

    #[test]
    fn sinfo_page_has_the_version_the_system_asks_for() {
        let base = std::env::temp_dir().join(format!("muen-tools-pack-{}", std::process::id()));
        for (attr, version) in [("v04", Version::V04), ("v05", Version::V05)] {
            for generation in Generation::ALL {
                let dir = base.join(format!("{attr}-{}", generation.name()));
                let image = build_image(&system(&dir, attr, generation)).unwrap();
                let image = muen_image::Image::parse(&image).unwrap();
                let subject = image.subjects().next().unwrap();
                let m = image
                    .mappings(&subject)
                    .find(|m| m.name == "sinfo")
                    .unwrap();
                let Backing::File { offset, len } = m.backing else {
                    panic!("sinfo is not file-backed: {:?}", m.backing);
                };
                let sinfo = Sinfo::parse(image.file(offset, len)).unwrap();
                assert_eq!(sinfo.version(), version);
                assert_eq!(sinfo.name(), "s");
                // Every mapping is in it, and the default exit event.
                for m in image.mappings(&subject) {
                    assert!(
                        sinfo.memory(m.name).is_some(),
                        "{} missing in {attr}",
                        m.name
                    );
                }
                assert_eq!(sinfo.event("solo5_exit"), Some(0));
            }
        }
        fs::remove_dir_all(&base).unwrap();
    }
}
