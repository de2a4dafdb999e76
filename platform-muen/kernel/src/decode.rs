//! Decoder for the instructions a subject may trap on (docs/kernel.md,
//! instruction table). Handles legacy prefixes (0x66, 0x67, segment
//! overrides, LOCK/REP), REX, ModRM/SIB with disp8/disp32 and
//! RIP-relative operands. Everything it does not need to emulate decodes
//! as [`Op::Other`] with a length of 0 (unknown).

/// Segment override.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seg {
    Es,
    Cs,
    Ss,
    Ds,
    Fs,
    Gs,
}

/// A memory operand (the effective address is computed by the emulator,
/// which knows the registers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mem {
    pub base: Option<u8>,
    pub index: Option<u8>,
    pub scale: u8,
    pub disp: i64,
    pub rip_relative: bool,
    pub seg: Option<Seg>,
    /// 0x67: 32-bit address size.
    pub addr32: bool,
}

/// A ModRM r/m operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rm {
    Reg(u8),
    Mem(Mem),
}

/// Port operand of `in`/`out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    Imm(u8),
    Dx,
}

/// The decoded operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Vmcall,
    Rdtsc,
    Rdtscp,
    Rdmsr,
    Wrmsr,
    Rdpmc,
    Hlt,
    Cli,
    Sti,
    In {
        size: u8,
        port: Port,
    },
    Out {
        size: u8,
        port: Port,
    },
    StringIo,
    Lgdt(Mem),
    Lidt(Mem),
    Sgdt(Mem),
    Sidt(Mem),
    Smsw(Rm),
    Lmsw(Rm),
    Ltr(Rm),
    Str(Rm),
    Sldt(Rm),
    Lldt(Rm),
    Invlpg(Mem),
    MovSreg {
        sreg: u8,
        src: Rm,
    },
    MovFromCr {
        cr: u8,
        gpr: u8,
    },
    MovToCr {
        cr: u8,
        gpr: u8,
    },
    MovDr {
        to_dr: bool,
        gpr: u8,
    },
    Wbinvd,
    Invd,
    Clts,
    Iret,
    Lret {
        pop: u16,
    },
    FarJmp(Mem),
    FarCall(Mem),
    Int(u8),
    Int3,
    /// A privileged instruction the kernel does not emulate (xsetbv,
    /// monitor/mwait, swapgs, VMX/SVM, sysret …): the subject is stopped.
    Privileged(&'static str),
    /// Anything else (the fault is genuine and reflected).
    Other,
}

/// A decoded instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub op: Op,
    /// Length in bytes.
    pub len: u8,
    /// Operand size in bytes (2, 4 or 8) after 0x66 / REX.W.
    pub osize: u8,
}

/// Why decoding failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes ran out (instruction longer than what could be fetched).
    Truncated,
    /// More than 15 bytes.
    TooLong,
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn u8(&mut self) -> Result<u8, DecodeError> {
        if self.pos >= 15 {
            return Err(DecodeError::TooLong);
        }
        let v = *self.b.get(self.pos).ok_or(DecodeError::Truncated)?;
        self.pos += 1;
        Ok(v)
    }
    fn i8(&mut self) -> Result<i64, DecodeError> {
        Ok(self.u8()? as i8 as i64)
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(self.u8()? as u16 | (self.u8()? as u16) << 8)
    }
    fn i32(&mut self) -> Result<i64, DecodeError> {
        let mut v = 0u32;
        for i in 0..4 {
            v |= (self.u8()? as u32) << (8 * i);
        }
        Ok(v as i32 as i64)
    }
}

struct Prefixes {
    opsize: bool,
    addr32: bool,
    seg: Option<Seg>,
    rex: u8,
}

impl Prefixes {
    fn w(&self) -> bool {
        self.rex & 8 != 0
    }
    fn r(&self) -> u8 {
        (self.rex & 4) << 1
    }
    fn x(&self) -> u8 {
        (self.rex & 2) << 2
    }
    fn b(&self) -> u8 {
        (self.rex & 1) << 3
    }
    fn osize(&self) -> u8 {
        if self.w() {
            8
        } else if self.opsize {
            2
        } else {
            4
        }
    }
}

struct ModRm {
    md: u8,
    reg: u8,
    rm: Rm,
}

fn modrm(c: &mut Cursor, p: &Prefixes) -> Result<ModRm, DecodeError> {
    let m = c.u8()?;
    let md = m >> 6;
    let reg = ((m >> 3) & 7) | p.r();
    let rm_low = m & 7;
    if md == 3 {
        return Ok(ModRm {
            md,
            reg,
            rm: Rm::Reg(rm_low | p.b()),
        });
    }
    let mut mem = Mem {
        base: None,
        index: None,
        scale: 1,
        disp: 0,
        rip_relative: false,
        seg: p.seg,
        addr32: p.addr32,
    };
    let mut disp32_no_base = false;
    if rm_low == 4 {
        let sib = c.u8()?;
        mem.scale = 1 << (sib >> 6);
        let idx = ((sib >> 3) & 7) | p.x();
        if idx != 4 {
            mem.index = Some(idx);
        }
        let base = sib & 7;
        if base == 5 && md == 0 {
            disp32_no_base = true;
        } else {
            mem.base = Some(base | p.b());
        }
    } else if rm_low == 5 && md == 0 {
        mem.rip_relative = true;
    } else {
        mem.base = Some(rm_low | p.b());
    }
    mem.disp = match md {
        0 if mem.rip_relative || disp32_no_base => c.i32()?,
        0 => 0,
        1 => c.i8()?,
        _ => c.i32()?,
    };
    Ok(ModRm {
        md,
        reg,
        rm: Rm::Mem(mem),
    })
}

fn mem_only(rm: Rm) -> Option<Mem> {
    match rm {
        Rm::Mem(m) => Some(m),
        Rm::Reg(_) => None,
    }
}

/// Decodes one instruction from `bytes` (fetched at RIP).
pub fn decode(bytes: &[u8]) -> Result<Insn, DecodeError> {
    let mut c = Cursor { b: bytes, pos: 0 };
    let mut p = Prefixes {
        opsize: false,
        addr32: false,
        seg: None,
        rex: 0,
    };
    let mut op = loop {
        let b = c.u8()?;
        match b {
            0x66 => p.opsize = true,
            0x67 => p.addr32 = true,
            0x26 => p.seg = Some(Seg::Es),
            0x2E => p.seg = Some(Seg::Cs),
            0x36 => p.seg = Some(Seg::Ss),
            0x3E => p.seg = Some(Seg::Ds),
            0x64 => p.seg = Some(Seg::Fs),
            0x65 => p.seg = Some(Seg::Gs),
            0xF0 | 0xF2 | 0xF3 => {}
            0x40..=0x4F => {
                // REX must be last; a legacy prefix after it cancels it.
                p.rex = b;
                let next = c.u8()?;
                if (0x40..=0x4F).contains(&next) {
                    c.pos -= 1;
                    continue;
                }
                if matches!(
                    next,
                    0x66 | 0x67 | 0x26 | 0x2E | 0x36 | 0x3E | 0x64 | 0x65 | 0xF0 | 0xF2 | 0xF3
                ) {
                    p.rex = 0;
                    c.pos -= 1;
                    continue;
                }
                break next;
            }
            _ => break b,
        }
    };
    let osize = p.osize();
    let io_size = |byte_form: bool| {
        if byte_form {
            1
        } else if p.opsize {
            2
        } else {
            4
        }
    };
    let decoded = match op {
        0x0F => {
            op = c.u8()?;
            match op {
                0x00 => {
                    let m = modrm(&mut c, &p)?;
                    match m.reg & 7 {
                        0 => Op::Sldt(m.rm),
                        1 => Op::Str(m.rm),
                        2 => Op::Lldt(m.rm),
                        3 => Op::Ltr(m.rm),
                        _ => Op::Other,
                    }
                }
                0x01 => {
                    let m = modrm(&mut c, &p)?;
                    let reg = m.reg & 7;
                    if m.md == 3 {
                        let rm = match m.rm {
                            Rm::Reg(r) => r & 7,
                            Rm::Mem(_) => 0,
                        };
                        match (reg, rm) {
                            (0, 1) => Op::Vmcall,
                            (0, 2) => Op::Privileged("vmlaunch"),
                            (0, 3) => Op::Privileged("vmresume"),
                            (0, 4) => Op::Privileged("vmxoff"),
                            (1, 0) => Op::Privileged("monitor"),
                            (1, 1) => Op::Privileged("mwait"),
                            (1, 2) => Op::Privileged("clac"),
                            (1, 3) => Op::Privileged("stac"),
                            (2, 0) => Op::Other, // xgetbv: #UD without OSXSAVE, reflected
                            (2, 1) => Op::Privileged("xsetbv"),
                            (3, _) => Op::Privileged("svm instruction"),
                            (4, _) => Op::Smsw(m.rm),
                            (6, _) => Op::Lmsw(m.rm),
                            (7, 0) => Op::Privileged("swapgs"),
                            (7, 1) => Op::Rdtscp,
                            _ => Op::Other,
                        }
                    } else {
                        let mem = mem_only(m.rm).ok_or(DecodeError::Truncated)?;
                        match reg {
                            0 => Op::Sgdt(mem),
                            1 => Op::Sidt(mem),
                            2 => Op::Lgdt(mem),
                            3 => Op::Lidt(mem),
                            4 => Op::Smsw(m.rm),
                            6 => Op::Lmsw(m.rm),
                            7 => Op::Invlpg(mem),
                            _ => Op::Other,
                        }
                    }
                }
                0x06 => Op::Clts,
                0x07 => Op::Privileged("sysret"),
                0x08 => Op::Invd,
                0x09 => Op::Wbinvd,
                0x20..=0x23 => {
                    let m = c.u8()?;
                    let cr = ((m >> 3) & 7) | p.r();
                    let gpr = (m & 7) | p.b();
                    match op {
                        0x20 => Op::MovFromCr { cr, gpr },
                        0x22 => Op::MovToCr { cr, gpr },
                        0x21 => Op::MovDr { to_dr: false, gpr },
                        _ => Op::MovDr { to_dr: true, gpr },
                    }
                }
                0x30 => Op::Wrmsr,
                0x31 => Op::Rdtsc,
                0x32 => Op::Rdmsr,
                0x33 => Op::Rdpmc,
                0x34 => Op::Privileged("sysenter"),
                0x35 => Op::Privileged("sysexit"),
                0x78 | 0x79 => Op::Privileged("vmread/vmwrite"),
                _ => Op::Other,
            }
        }
        0x6C..=0x6F => Op::StringIo,
        0x8E => {
            let m = modrm(&mut c, &p)?;
            Op::MovSreg {
                sreg: m.reg & 7,
                src: m.rm,
            }
        }
        0xCA => Op::Lret { pop: c.u16()? },
        0xCB => Op::Lret { pop: 0 },
        0xCC => Op::Int3,
        0xCD => Op::Int(c.u8()?),
        0xCF => Op::Iret,
        0xE4 | 0xE5 => Op::In {
            size: io_size(op == 0xE4),
            port: Port::Imm(c.u8()?),
        },
        0xE6 | 0xE7 => Op::Out {
            size: io_size(op == 0xE6),
            port: Port::Imm(c.u8()?),
        },
        0xEC | 0xED => Op::In {
            size: io_size(op == 0xEC),
            port: Port::Dx,
        },
        0xEE | 0xEF => Op::Out {
            size: io_size(op == 0xEE),
            port: Port::Dx,
        },
        0xF4 => Op::Hlt,
        0xFA => Op::Cli,
        0xFB => Op::Sti,
        0xFF => {
            let m = modrm(&mut c, &p)?;
            match (m.reg & 7, m.rm) {
                (3, Rm::Mem(mem)) => Op::FarCall(mem),
                (5, Rm::Mem(mem)) => Op::FarJmp(mem),
                _ => Op::Other,
            }
        }
        _ => Op::Other,
    };
    let len = if decoded == Op::Other { 0 } else { c.pos as u8 };
    Ok(Insn {
        op: decoded,
        len,
        osize,
    })
}
