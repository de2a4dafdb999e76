//! Component specifications (cspec): generate one from a subject ELF the way
//! Solo5's `solo5-gencspec.py` does (docs/muen-abi.md §7), and read one back for
//! the packer.
//!
//! The generated XML follows the vCPU layout of the Muen toolchain
//! [`Generation`] it is made for (docs/muen.md, "Muen toolchain generations")
//! and writes numbers in Muen's `16#xxxx_xxxx#` form.

use crate::elf::Elf;
use std::fmt::Write as _;

/// Where the first network channel goes (Solo5's gencspec).
pub const CHANNEL_BASE: u64 = 0xE000_0000;
/// Default channel size (1 MiB, 691 muennet elements).
pub const DEFAULT_CHANNEL_SIZE: u64 = 0x10_0000;
/// Where `requires/memory` regions (certificates, site archive, ...) start.
pub const EXTRA_MEMORY_BASE: u64 = 0x10_0000_0000;
/// The Solo5 boot-info region (cspec_src.xml of the MirageOS policy).
pub const BOOT_INFO_VA: u64 = 0x1000;

const PAGE: u64 = 0x1000;

/// The Muen toolchain generation a component spec is written for. The two
/// generations differ, for a component like this one, only in where the vCPU
/// settings sit (muen-tools commit eb7b089b moved them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Generation {
    /// muen-tools up to ddece096 (2026-01): `<vmx>`, `<msrs>` and
    /// `<registers>` directly below `<vcpu>`.
    #[default]
    Ddece096,
    /// muen-tools eb7b089b (2026-03-12) and later: the same three elements
    /// inside `<vcpu><x86_64>`.
    Eb7b089b,
}

impl Generation {
    /// Every generation, oldest first.
    pub const ALL: [Generation; 2] = [Generation::Ddece096, Generation::Eb7b089b];

    /// The name used on the command line and in `MUEN_GENERATION`: the
    /// muen-tools commit that starts (or last has) the layout.
    pub const fn name(self) -> &'static str {
        match self {
            Generation::Ddece096 => "ddece096",
            Generation::Eb7b089b => "eb7b089b",
        }
    }

    /// The generation called `name` (see [`Generation::name`]).
    pub fn from_name(name: &str) -> Result<Self, String> {
        Generation::ALL
            .into_iter()
            .find(|g| g.name() == name)
            .ok_or_else(|| {
                format!(
                    "unknown Muen toolchain generation '{name}': expected ddece096 (vCPU settings \
                     directly in <vcpu>) or eb7b089b (inside <vcpu><x86_64>); docs/muen.md says \
                     how to tell which one you have"
                )
            })
    }
}

/// Content of a provided memory region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// `<file filename offset/>`; `offset = None` is Muen's `none`.
    File {
        filename: String,
        offset: Option<u64>,
    },
    /// `<fill pattern/>`.
    Fill(u8),
    /// No content declared (Muen: uninitialized).
    None,
}

/// A `provides/memory` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvidedMemory {
    pub logical: String,
    pub va: u64,
    pub size: u64,
    pub writable: bool,
    pub executable: bool,
    /// Muen memory type, e.g. `subject_binary`.
    pub kind: Option<String>,
    pub content: Content,
}

/// A `requires/memory/memory` element: memory the system must map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredMemory {
    pub logical: String,
    pub va: u64,
    pub size: u64,
    pub writable: bool,
    pub executable: bool,
}

/// A `requires/channels` reader or writer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub logical: String,
    pub va: u64,
    pub size: u64,
    pub writer: bool,
}

/// The parts of a component spec this project reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    pub name: String,
    /// The vCPU layout the spec is (to be) written in.
    pub generation: Generation,
    pub resettable: bool,
    pub bootparams: String,
    pub libraries: Vec<String>,
    pub rip: u64,
    pub rsp: u64,
    pub rdi: u64,
    pub memory: Vec<RequiredMemory>,
    pub channels: Vec<Channel>,
    /// `requires/events/source/event` (id, logical).
    pub events: Vec<(u8, String)>,
    pub provides: Vec<ProvidedMemory>,
}

/// Options of [`generate`].
#[derive(Debug, Clone)]
pub struct GenOptions {
    /// Component name (Muen name, ≤ 63 characters).
    pub name: String,
    /// File name the `<file>` elements refer to (the ELF's basename).
    pub elf_filename: String,
    pub ram_bytes: u64,
    pub channel_size: u64,
    /// Network devices: each becomes `N|in` (reader) and `N|out` (writer).
    pub nets: Vec<String>,
    pub bootparams: String,
    /// Extra read-only memory the subject expects: (logical, size in bytes).
    pub memory: Vec<(String, u64)>,
    /// The Muen toolchain generation the spec is for.
    pub generation: Generation,
}

fn round_up(v: u64) -> u64 {
    v.div_ceil(PAGE) * PAGE
}

fn check_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 63 {
        return Err(format!("{what} name '{name}' must be 1..63 characters"));
    }
    Ok(())
}

/// Builds the component spec for a subject ELF (docs/muen-abi.md §7.1 steps 2–7).
pub fn generate(elf: &Elf, opts: &GenOptions) -> Result<Component, String> {
    check_name("component", &opts.name)?;
    if opts.ram_bytes == 0 || !opts.ram_bytes.is_multiple_of(PAGE) {
        return Err("RAM size must be a non-zero multiple of 4 KiB".into());
    }
    if !opts.channel_size.is_multiple_of(PAGE) || opts.channel_size < 2 * PAGE {
        return Err("channel size must be a multiple of 4 KiB and at least 8 KiB".into());
    }
    let mut provides = vec![ProvidedMemory {
        logical: "boot_info".into(),
        va: BOOT_INFO_VA,
        size: PAGE,
        writable: false,
        executable: false,
        kind: Some("subject_solo5_boot_info".into()),
        content: Content::File {
            filename: format!("{}_bi", opts.name),
            offset: None,
        },
    }];
    let max_name = 63usize
        .saturating_sub(opts.name.len() + 1)
        .saturating_sub(2);
    let mut end = 0u64;
    for seg in elf.loads() {
        if seg.memsz == 0 {
            continue;
        }
        if seg.vaddr % PAGE != 0 || seg.offset % PAGE != 0 {
            return Err(format!(
                "segment {} at {:#x} (file offset {:#x}) is not page aligned; link with -z max-page-size=4096 and page-aligned segments",
                seg.index, seg.vaddr, seg.offset
            ));
        }
        if seg.vaddr < 0x2000 {
            return Err(format!(
                "segment {} at {:#x} overlaps the boot info page",
                seg.index, seg.vaddr
            ));
        }
        let names = elf.section_names(seg);
        let mut name = if names.is_empty() {
            format!("segment{}", seg.index)
        } else {
            names.join("+")
        };
        if name.contains(".text") {
            name = "text".into();
        } else if name.len() > max_name {
            name.truncate(max_name);
            name.push_str("..");
        }
        let file_size = round_up(seg.filesz);
        let mem_size = round_up(seg.memsz);
        if file_size > 0 {
            provides.push(ProvidedMemory {
                logical: name.clone(),
                va: seg.vaddr,
                size: file_size,
                writable: seg.writable(),
                executable: seg.executable(),
                kind: Some("subject_binary".into()),
                content: Content::File {
                    filename: opts.elf_filename.clone(),
                    offset: Some(seg.offset),
                },
            });
        }
        if mem_size > file_size {
            let mut fill = name.clone();
            fill.truncate(max_name.saturating_sub(5).max(1));
            provides.push(ProvidedMemory {
                logical: format!("{fill}|fill"),
                va: seg.vaddr + file_size,
                size: mem_size - file_size,
                writable: seg.writable(),
                executable: seg.executable(),
                kind: Some("subject_binary".into()),
                content: Content::Fill(0),
            });
        }
        end = end.max(seg.vaddr + mem_size);
    }
    if end == 0 {
        return Err("the ELF has no loadable segment".into());
    }
    if !elf
        .loads()
        .any(|s| s.vaddr <= elf.entry && elf.entry < s.vaddr + s.memsz && s.executable())
    {
        return Err(format!(
            "entry point {:#x} is not in an executable segment",
            elf.entry
        ));
    }
    provides.push(ProvidedMemory {
        logical: "ram".into(),
        va: end,
        size: opts.ram_bytes,
        writable: true,
        executable: false,
        kind: Some("subject".into()),
        content: Content::None,
    });
    if end + opts.ram_bytes > CHANNEL_BASE {
        return Err("binary + RAM overlap the channel area at 0xE000_0000; use less RAM".into());
    }
    let mut channels = Vec::new();
    let mut va = CHANNEL_BASE;
    for n in &opts.nets {
        if n.is_empty() || n.len() > 15 || n.contains('|') {
            return Err(format!(
                "network device name '{n}' must be 1..15 characters without '|'"
            ));
        }
        channels.push(Channel {
            logical: format!("{n}|in"),
            va,
            size: opts.channel_size,
            writer: false,
        });
        channels.push(Channel {
            logical: format!("{n}|out"),
            va: va + opts.channel_size,
            size: opts.channel_size,
            writer: true,
        });
        va += 2 * opts.channel_size;
    }
    let mut memory = Vec::new();
    let mut va = EXTRA_MEMORY_BASE;
    for (logical, size) in &opts.memory {
        check_name("memory", logical)?;
        let size = round_up((*size).max(1));
        memory.push(RequiredMemory {
            logical: logical.clone(),
            va,
            size,
            writable: false,
            executable: false,
        });
        va += size;
    }
    Ok(Component {
        name: opts.name.clone(),
        generation: opts.generation,
        resettable: false,
        bootparams: opts.bootparams.clone(),
        libraries: vec!["libmudebuglog".into(), "libmutime".into()],
        rip: elf.entry,
        rsp: end + opts.ram_bytes - 8,
        rdi: BOOT_INFO_VA,
        memory,
        channels,
        events: Vec::new(),
        provides,
    })
}

/// Muen's `word64Type`: `16#` + groups of exactly four hex digits + `#`.
pub fn hex(v: u64) -> String {
    let digits = format!("{v:x}");
    let padded = format!("{}{digits}", "0".repeat((4 - digits.len() % 4) % 4));
    let groups: Vec<&str> = padded
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!("16#{}#", groups.join("_"))
}

/// Parses Muen numbers (`16#…#` with optional `_`) and plain decimal.
pub fn parse_number(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix("16#").and_then(|r| r.strip_suffix('#')) {
        let digits: String = rest.chars().filter(|&c| c != '_').collect();
        u64::from_str_radix(&digits, 16).map_err(|_| format!("bad number '{s}'"))
    } else if let Some(h) = s.strip_prefix("0x") {
        u64::from_str_radix(&h.replace('_', ""), 16).map_err(|_| format!("bad number '{s}'"))
    } else {
        s.replace('_', "")
            .parse()
            .map_err(|_| format!("bad number '{s}'"))
    }
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c => o.push(c),
        }
    }
    o
}

const EXCEPTIONS: &[&str] = &[
    "DivideError",
    "Debug",
    "Breakpoint",
    "Overflow",
    "BOUNDRangeExceeded",
    "InvalidOpcode",
    "DeviceNotAvailable",
    "DoubleFault",
    "CoprocessorSegmentOverrun",
    "InvalidTSS",
    "SegmentNotPresent",
    "StackSegmentFault",
    "GeneralProtection",
    "PageFault",
    "x87FPUFloatingPointError",
    "AlignmentCheck",
    "SIMDFloatingPointException",
];

fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// `<vmx>`, `<msrs>` and `<registers>` of the vCPU, indented by `depth` spaces
/// (their place differs between the generations, their content does not).
fn vcpu_settings(w: &mut String, c: &Component, depth: usize) {
    let mut line = |extra: usize, text: &str| {
        let _ = writeln!(w, "{:width$}{text}", "", width = depth + extra);
    };
    line(0, "<vmx>");
    line(1, "<masks>");
    line(2, "<exception>");
    for e in EXCEPTIONS {
        line(3, &format!("<{e}>0</{e}>"));
    }
    line(2, "</exception>");
    line(1, "</masks>");
    line(0, "</vmx>");
    line(0, "<msrs>");
    line(
        1,
        "<msr start=\"16#c000_0100#\" end=\"16#c000_0100#\" mode=\"rw\"/>",
    );
    line(0, "</msrs>");
    line(0, "<registers>");
    line(1, "<gpr>");
    line(2, &format!("<rip>{}</rip>", hex(c.rip)));
    line(2, &format!("<rsp>{}</rsp>", hex(c.rsp)));
    line(2, &format!("<rdi>{}</rdi>", hex(c.rdi)));
    line(1, "</gpr>");
    line(1, "<cr4>");
    line(2, "<OSSupportSIMDExceptions>1</OSSupportSIMDExceptions>");
    line(1, "</cr4>");
    line(0, "</registers>");
}

/// Serialises a component as cspec XML (element order per Muen's schema, vCPU
/// layout per `c.generation`).
pub fn to_xml(c: &Component) -> String {
    let mut x = String::new();
    let w = &mut x;
    let _ = writeln!(w, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    let _ = writeln!(
        w,
        "<!-- Generated by muen-tools cspec; see docs/muen.md. -->"
    );
    let _ = writeln!(
        w,
        "<component name=\"{}\" profile=\"native\">",
        esc(&c.name)
    );
    let _ = writeln!(w, " <config>");
    let _ = writeln!(
        w,
        "  <boolean name=\"resettable\" value=\"{}\"/>",
        bool_str(c.resettable)
    );
    let _ = writeln!(
        w,
        "  <string name=\"bootparams\" value=\"{}\"/>",
        esc(&c.bootparams)
    );
    let _ = writeln!(w, " </config>");
    if !c.libraries.is_empty() {
        let _ = writeln!(w, " <depends>");
        for l in &c.libraries {
            let _ = writeln!(w, "  <library ref=\"{}\"/>", esc(l));
        }
        let _ = writeln!(w, " </depends>");
    }
    let _ = writeln!(w, " <requires>");
    let _ = writeln!(w, "  <vcpu>");
    match c.generation {
        Generation::Ddece096 => vcpu_settings(w, c, 3),
        Generation::Eb7b089b => {
            let _ = writeln!(w, "   <x86_64>");
            vcpu_settings(w, c, 4);
            let _ = writeln!(w, "   </x86_64>");
        }
    }
    let _ = writeln!(w, "  </vcpu>");
    if !c.memory.is_empty() {
        let _ = writeln!(w, "  <memory>");
        for m in &c.memory {
            let _ = writeln!(
                w,
                "   <memory logical=\"{}\" virtualAddress=\"{}\" size=\"{}\" executable=\"{}\" writable=\"{}\"/>",
                esc(&m.logical),
                hex(m.va),
                hex(m.size),
                bool_str(m.executable),
                bool_str(m.writable)
            );
        }
        let _ = writeln!(w, "  </memory>");
    }
    if !c.channels.is_empty() {
        let _ = writeln!(w, "  <channels>");
        for ch in &c.channels {
            let _ = writeln!(
                w,
                "   <{} logical=\"{}\" virtualAddress=\"{}\" size=\"{}\"/>",
                if ch.writer { "writer" } else { "reader" },
                esc(&ch.logical),
                hex(ch.va),
                hex(ch.size)
            );
        }
        let _ = writeln!(w, "  </channels>");
    }
    if !c.events.is_empty() {
        let _ = writeln!(w, "  <events>");
        let _ = writeln!(w, "   <source>");
        for (id, logical) in &c.events {
            let _ = writeln!(w, "    <event id=\"{id}\" logical=\"{}\"/>", esc(logical));
        }
        let _ = writeln!(w, "   </source>");
        let _ = writeln!(w, "  </events>");
    }
    let _ = writeln!(w, " </requires>");
    let _ = writeln!(w, " <provides>");
    for p in &c.provides {
        let kind = p
            .kind
            .as_ref()
            .map(|k| format!(" type=\"{}\"", esc(k)))
            .unwrap_or_default();
        let head = format!(
            "  <memory logical=\"{}\" virtualAddress=\"{}\" size=\"{}\" executable=\"{}\" writable=\"{}\"{kind}",
            esc(&p.logical),
            hex(p.va),
            hex(p.size),
            bool_str(p.executable),
            bool_str(p.writable)
        );
        match &p.content {
            Content::None => {
                let _ = writeln!(w, "{head}/>");
            }
            Content::File { filename, offset } => {
                let off = offset.map(hex).unwrap_or_else(|| "none".into());
                let _ = writeln!(w, "{head}>");
                let _ = writeln!(
                    w,
                    "   <file filename=\"{}\" offset=\"{off}\"/>",
                    esc(filename)
                );
                let _ = writeln!(w, "  </memory>");
            }
            Content::Fill(p) => {
                let _ = writeln!(w, "{head}>");
                let _ = writeln!(w, "   <fill pattern=\"16#{p:02x}#\"/>");
                let _ = writeln!(w, "  </memory>");
            }
        }
    }
    let _ = writeln!(w, " </provides>");
    let _ = writeln!(w, "</component>");
    x
}

fn attr<'a>(n: roxmltree::Node<'a, '_>, name: &str) -> Result<&'a str, String> {
    n.attribute(name)
        .ok_or_else(|| format!("<{}> without attribute '{name}'", n.tag_name().name()))
}

fn attr_bool(n: roxmltree::Node<'_, '_>, name: &str) -> Result<bool, String> {
    match attr(n, name)? {
        "true" => Ok(true),
        "false" => Ok(false),
        v => Err(format!("attribute {name}='{v}' is not a boolean")),
    }
}

fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
}

fn elements<'a, 'i>(n: roxmltree::Node<'a, 'i>) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> {
    n.children().filter(|c| c.is_element())
}

/// Reads a component spec (the subset this project generates, which is also
/// what Solo5's gencspec produces for a unikernel).
pub fn from_xml(text: &str) -> Result<Component, String> {
    let doc = roxmltree::Document::parse(text).map_err(|e| format!("cspec XML: {e}"))?;
    let root = doc.root_element();
    if root.tag_name().name() != "component" {
        return Err("cspec: root element is not <component>".into());
    }
    let mut c = Component {
        name: attr(root, "name")?.to_string(),
        generation: Generation::default(),
        resettable: false,
        bootparams: String::new(),
        libraries: Vec::new(),
        rip: 0,
        rsp: 0,
        rdi: 0,
        memory: Vec::new(),
        channels: Vec::new(),
        events: Vec::new(),
        provides: Vec::new(),
    };
    if let Some(cfg) = child(root, "config") {
        for e in elements(cfg) {
            match (e.tag_name().name(), attr(e, "name")?) {
                ("boolean", "resettable") => c.resettable = attr_bool(e, "value")?,
                ("string", "bootparams") => c.bootparams = attr(e, "value")?.to_string(),
                _ => {}
            }
        }
    }
    if let Some(dep) = child(root, "depends") {
        for l in elements(dep) {
            c.libraries.push(attr(l, "ref")?.to_string());
        }
    }
    if let Some(req) = child(root, "requires") {
        // Both generations: the vCPU settings directly in <vcpu> or in <x86_64>.
        let settings = child(req, "vcpu").map(|v| match child(v, "x86_64") {
            Some(x) => (Generation::Eb7b089b, x),
            None => (Generation::Ddece096, v),
        });
        if let Some((generation, _)) = settings {
            c.generation = generation;
        }
        if let Some(gpr) = settings
            .and_then(|(_, s)| child(s, "registers"))
            .and_then(|r| child(r, "gpr"))
        {
            for r in elements(gpr) {
                let v = parse_number(r.text().unwrap_or(""))?;
                match r.tag_name().name() {
                    "rip" => c.rip = v,
                    "rsp" => c.rsp = v,
                    "rdi" => c.rdi = v,
                    _ => {}
                }
            }
        }
        if let Some(mem) = child(req, "memory") {
            for m in elements(mem) {
                if m.tag_name().name() != "memory" {
                    return Err(format!(
                        "cspec: <{}> in requires/memory is not supported",
                        m.tag_name().name()
                    ));
                }
                c.memory.push(RequiredMemory {
                    logical: attr(m, "logical")?.to_string(),
                    va: parse_number(attr(m, "virtualAddress")?)?,
                    size: parse_number(attr(m, "size")?)?,
                    writable: attr_bool(m, "writable")?,
                    executable: attr_bool(m, "executable")?,
                });
            }
        }
        if let Some(chs) = child(req, "channels") {
            for ch in elements(chs) {
                let writer = match ch.tag_name().name() {
                    "reader" => false,
                    "writer" => true,
                    other => {
                        return Err(format!(
                            "cspec: <{other}> in requires/channels is not supported"
                        ));
                    }
                };
                c.channels.push(Channel {
                    logical: attr(ch, "logical")?.to_string(),
                    va: parse_number(attr(ch, "virtualAddress")?)?,
                    size: parse_number(attr(ch, "size")?)?,
                    writer,
                });
            }
        }
        if let Some(src) = child(req, "events").and_then(|e| child(e, "source")) {
            for ev in elements(src) {
                let id = parse_number(attr(ev, "id")?)?;
                let id = u8::try_from(id)
                    .ok()
                    .filter(|&i| i < 64)
                    .ok_or("event id must be 0..63")?;
                c.events.push((id, attr(ev, "logical")?.to_string()));
            }
        }
    }
    if let Some(prov) = child(root, "provides") {
        for m in elements(prov) {
            let content = if let Some(f) = child(m, "file") {
                let off = attr(f, "offset")?;
                Content::File {
                    filename: attr(f, "filename")?.to_string(),
                    offset: if off == "none" {
                        None
                    } else {
                        Some(parse_number(off)?)
                    },
                }
            } else if let Some(f) = child(m, "fill") {
                let p = parse_number(attr(f, "pattern")?)?;
                Content::Fill(u8::try_from(p).map_err(|_| "fill pattern must be a byte")?)
            } else {
                Content::None
            };
            c.provides.push(ProvidedMemory {
                logical: attr(m, "logical")?.to_string(),
                va: parse_number(attr(m, "virtualAddress")?)?,
                size: parse_number(attr(m, "size")?)?,
                writable: attr_bool(m, "writable")?,
                executable: attr_bool(m, "executable")?,
                kind: m.attribute("type").map(str::to_string),
                content,
            });
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_groups() {
        assert_eq!(hex(0), "16#0000#");
        assert_eq!(hex(0x1000), "16#1000#");
        assert_eq!(hex(0x200000), "16#0020_0000#");
        assert_eq!(hex(0xe_0000_0000), "16#000e_0000_0000#");
        assert_eq!(hex(u64::MAX), "16#ffff_ffff_ffff_ffff#");
        assert_eq!(parse_number("16#0020_0000#").unwrap(), 0x200000);
        assert_eq!(parse_number("4096").unwrap(), 4096);
        assert!(parse_number("16#zz#").is_err());
    }

    #[test]
    fn generate_and_read_back() {
        let f = crate::elf::tests_support::tiny_elf();
        let elf = Elf::parse(&f).unwrap();
        let opts = GenOptions {
            name: "unipi".into(),
            elf_filename: "unipi.muen".into(),
            ram_bytes: 0x100_0000,
            channel_size: DEFAULT_CHANNEL_SIZE,
            nets: vec!["net0".into()],
            bootparams: "--ipv4=192.168.254.10/24 --x=\"&<>\"".into(),
            memory: vec![("tls_cert".into(), 1000)],
            generation: Generation::Ddece096,
        };
        let c = generate(&elf, &opts).unwrap();
        // text, data, data|fill, boot_info, ram
        assert_eq!(c.provides.len(), 5);
        let ram = c.provides.iter().find(|p| p.logical == "ram").unwrap();
        assert_eq!(ram.va, 0x204000);
        assert_eq!(c.rsp, 0x204000 + 0x100_0000 - 8);
        assert_eq!(c.channels[0].logical, "net0|in");
        assert_eq!(c.channels[1].va, CHANNEL_BASE + DEFAULT_CHANNEL_SIZE);
        assert_eq!(c.memory[0].size, 0x1000);
        let xml = to_xml(&c);
        let back = from_xml(&xml).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn vcpu_layout_follows_the_generation() {
        let f = crate::elf::tests_support::tiny_elf();
        let elf = Elf::parse(&f).unwrap();
        let mut opts = GenOptions {
            name: "unipi".into(),
            elf_filename: "unipi.muen".into(),
            ram_bytes: 0x10_0000,
            channel_size: DEFAULT_CHANNEL_SIZE,
            nets: vec![],
            bootparams: String::new(),
            memory: vec![],
            generation: Generation::Ddece096,
        };
        let old = to_xml(&generate(&elf, &opts).unwrap());
        opts.generation = Generation::Eb7b089b;
        let new_c = generate(&elf, &opts).unwrap();
        let new = to_xml(&new_c);
        let doc = roxmltree::Document::parse(&old).unwrap();
        let vcpu = doc.descendants().find(|n| n.has_tag_name("vcpu")).unwrap();
        let names: Vec<_> = elements(vcpu).map(|n| n.tag_name().name()).collect();
        assert_eq!(names, ["vmx", "msrs", "registers"]);
        let doc = roxmltree::Document::parse(&new).unwrap();
        let vcpu = doc.descendants().find(|n| n.has_tag_name("vcpu")).unwrap();
        let names: Vec<_> = elements(vcpu).map(|n| n.tag_name().name()).collect();
        assert_eq!(names, ["x86_64"]);
        let x = child(vcpu, "x86_64").unwrap();
        let names: Vec<_> = elements(x).map(|n| n.tag_name().name()).collect();
        assert_eq!(names, ["vmx", "msrs", "registers"]);
        // Apart from the wrapper (and its indentation) the two are the same.
        let strip = |s: &str| -> Vec<String> {
            s.lines()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.contains("x86_64"))
                .collect()
        };
        assert_eq!(strip(&old), strip(&new));
        // Reading either back gives the generation and the registers.
        let back = from_xml(&new).unwrap();
        assert_eq!(back, new_c);
        assert_eq!(from_xml(&old).unwrap().generation, Generation::Ddece096);
    }

    #[test]
    fn generation_names() {
        for g in Generation::ALL {
            assert_eq!(Generation::from_name(g.name()), Ok(g));
        }
        let e = Generation::from_name("b7d6da0e").unwrap_err();
        assert!(e.contains("ddece096") && e.contains("eb7b089b"), "{e}");
    }
}
