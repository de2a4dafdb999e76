//! Just enough ELF64 (little-endian, x86-64) to read a subject's loadable
//! segments and section names, and to append the system image to the
//! kernel's single loadable segment.

use std::fmt;

/// `PT_LOAD`.
pub const PT_LOAD: u32 = 1;
/// `PF_X`, `PF_W`, `PF_R`.
pub const PF_X: u32 = 1;
pub const PF_W: u32 = 2;

/// Errors reading an ELF file.
#[derive(Debug)]
pub struct ElfError(pub String);

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ELF: {}", self.0)
    }
}

impl std::error::Error for ElfError {}

fn err<T>(msg: impl Into<String>) -> Result<T, ElfError> {
    Err(ElfError(msg.into()))
}

/// One program header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Index in the program header table.
    pub index: usize,
    pub p_type: u32,
    pub flags: u32,
    pub offset: u64,
    pub vaddr: u64,
    pub paddr: u64,
    pub filesz: u64,
    pub memsz: u64,
    pub align: u64,
}

impl Segment {
    pub fn writable(&self) -> bool {
        self.flags & PF_W != 0
    }
    pub fn executable(&self) -> bool {
        self.flags & PF_X != 0
    }
}

/// One section header (only what naming segments needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub addr: u64,
    pub size: u64,
    /// `SHF_ALLOC`: occupies memory at run time.
    pub alloc: bool,
}

/// A parsed ELF64 file (headers only).
#[derive(Debug, Clone)]
pub struct Elf {
    pub entry: u64,
    pub phoff: u64,
    pub segments: Vec<Segment>,
    pub sections: Vec<Section>,
}

fn u16_at(b: &[u8], off: usize) -> Result<u16, ElfError> {
    b.get(off..off + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or_else(|| ElfError(format!("truncated at {off:#x}")))
}
fn u32_at(b: &[u8], off: usize) -> Result<u32, ElfError> {
    b.get(off..off + 4)
        .map(|s| u32::from_le_bytes(s.try_into().unwrap()))
        .ok_or_else(|| ElfError(format!("truncated at {off:#x}")))
}
fn u64_at(b: &[u8], off: usize) -> Result<u64, ElfError> {
    b.get(off..off + 8)
        .map(|s| u64::from_le_bytes(s.try_into().unwrap()))
        .ok_or_else(|| ElfError(format!("truncated at {off:#x}")))
}

impl Elf {
    /// Parses an x86-64 ELF64 executable.
    pub fn parse(bytes: &[u8]) -> Result<Self, ElfError> {
        if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" {
            return err("not an ELF file");
        }
        if bytes[4] != 2 || bytes[5] != 1 {
            return err("not a little-endian ELF64 file");
        }
        if u16_at(bytes, 16)? != 2 {
            return err("not an executable (ET_EXEC)");
        }
        if u16_at(bytes, 18)? != 62 {
            return err("not an x86-64 file");
        }
        let entry = u64_at(bytes, 24)?;
        let phoff = u64_at(bytes, 32)?;
        let shoff = u64_at(bytes, 40)?;
        let phentsize = u16_at(bytes, 54)?;
        let phnum = u16_at(bytes, 56)? as usize;
        let shentsize = u16_at(bytes, 58)? as usize;
        let shnum = u16_at(bytes, 60)? as usize;
        let shstrndx = u16_at(bytes, 62)? as usize;
        if phentsize != 56 {
            return err("unexpected program header size");
        }
        let mut segments = Vec::with_capacity(phnum);
        for i in 0..phnum {
            let o = phoff as usize + i * 56;
            let s = Segment {
                index: i,
                p_type: u32_at(bytes, o)?,
                flags: u32_at(bytes, o + 4)?,
                offset: u64_at(bytes, o + 8)?,
                vaddr: u64_at(bytes, o + 16)?,
                paddr: u64_at(bytes, o + 24)?,
                filesz: u64_at(bytes, o + 32)?,
                memsz: u64_at(bytes, o + 40)?,
                align: u64_at(bytes, o + 48)?,
            };
            if s.p_type == PT_LOAD
                && (s
                    .offset
                    .checked_add(s.filesz)
                    .is_none_or(|e| e > bytes.len() as u64)
                    || s.filesz > s.memsz)
            {
                return err(format!("segment {i} lies outside the file"));
            }
            segments.push(s);
        }
        let mut sections = Vec::new();
        if shoff != 0 && shnum != 0 {
            if shentsize != 64 {
                return err("unexpected section header size");
            }
            let sh = |i: usize| shoff as usize + i * 64;
            let strtab_off = u64_at(bytes, sh(shstrndx) + 24)? as usize;
            let strtab_size = u64_at(bytes, sh(shstrndx) + 32)? as usize;
            let strtab = bytes
                .get(strtab_off..strtab_off + strtab_size)
                .ok_or_else(|| ElfError("section name table outside the file".into()))?;
            for i in 1..shnum {
                let o = sh(i);
                let name_off = u32_at(bytes, o)? as usize;
                let flags = u64_at(bytes, o + 8)?;
                let name = strtab
                    .get(name_off..)
                    .and_then(|s| s.split(|&c| c == 0).next())
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .unwrap_or_default();
                sections.push(Section {
                    name,
                    addr: u64_at(bytes, o + 16)?,
                    size: u64_at(bytes, o + 32)?,
                    alloc: flags & 2 != 0,
                });
            }
        }
        Ok(Elf {
            entry,
            phoff,
            segments,
            sections,
        })
    }

    /// The `PT_LOAD` segments in file order.
    pub fn loads(&self) -> impl Iterator<Item = &Segment> {
        self.segments.iter().filter(|s| s.p_type == PT_LOAD)
    }

    /// Names of the allocated sections that lie inside `seg` (by address).
    pub fn section_names(&self, seg: &Segment) -> Vec<&str> {
        self.sections
            .iter()
            .filter(|s| {
                s.alloc && s.size > 0 && s.addr >= seg.vaddr && s.addr < seg.vaddr + seg.memsz
            })
            .map(|s| s.name.as_str())
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// A minimal hand-made ELF with two loadable segments.
    pub(crate) fn tiny_elf() -> Vec<u8> {
        let mut f = vec![0u8; 0x3000];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2;
        f[5] = 1;
        f[6] = 1;
        f[16..18].copy_from_slice(&2u16.to_le_bytes());
        f[18..20].copy_from_slice(&62u16.to_le_bytes());
        f[24..32].copy_from_slice(&0x200000u64.to_le_bytes());
        f[32..40].copy_from_slice(&64u64.to_le_bytes());
        f[54..56].copy_from_slice(&56u16.to_le_bytes());
        f[56..58].copy_from_slice(&2u16.to_le_bytes());
        let ph =
            |f: &mut Vec<u8>, i: usize, flags: u32, off: u64, va: u64, filesz: u64, memsz: u64| {
                let o = 64 + i * 56;
                f[o..o + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
                f[o + 4..o + 8].copy_from_slice(&flags.to_le_bytes());
                f[o + 8..o + 16].copy_from_slice(&off.to_le_bytes());
                f[o + 16..o + 24].copy_from_slice(&va.to_le_bytes());
                f[o + 24..o + 32].copy_from_slice(&va.to_le_bytes());
                f[o + 32..o + 40].copy_from_slice(&filesz.to_le_bytes());
                f[o + 40..o + 48].copy_from_slice(&memsz.to_le_bytes());
                f[o + 48..o + 56].copy_from_slice(&0x1000u64.to_le_bytes());
            };
        ph(&mut f, 0, 5, 0x1000, 0x200000, 0x10, 0x10);
        ph(&mut f, 1, 6, 0x2000, 0x201000, 0x20, 0x3000);
        f[0x1000] = 0xf4;
        f
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::tiny_elf;
    use super::*;

    #[test]
    fn parses_segments() {
        let f = tiny_elf();
        let e = Elf::parse(&f).unwrap();
        assert_eq!(e.entry, 0x200000);
        let loads: Vec<_> = e.loads().collect();
        assert_eq!(loads.len(), 2);
        assert!(loads[0].executable() && !loads[0].writable());
        assert!(loads[1].writable());
        assert_eq!(f[loads[0].offset as usize], 0xf4);
    }

    #[test]
    fn rejects_garbage() {
        assert!(Elf::parse(b"hello").is_err());
        let mut f = tiny_elf();
        f[64 + 32] = 0xff; // filesz beyond the file
        f[64 + 33] = 0xff;
        assert!(Elf::parse(&f).is_err());
    }
}
