//! The subject's virtual CPU: what Muen's native profile and its subject
//! monitor make a subject observe (docs/kernel.md "What the kernel does
//! with each instruction" and "Exceptions"). Pure logic over a
//! [`TrapFrame`], the virtual state and the subject's address space: no
//! `unsafe`, and nothing here panics on subject-controlled data.

use crate::decode::{Insn, Mem, Op, Port, Rm, Seg};
use crate::paging::{AddressSpace, MemFault, USER_TOP};
use crate::trap::TrapFrame;
use core::fmt;

/// CR0 as the subject reads it (Muen read shadow).
pub const CR0_SHADOW: u64 = 0x8001_0033;
/// CR4 as the subject reads it (Muen read shadow).
pub const CR4_SHADOW: u64 = 0x2260;
const MSR_FS_BASE: u32 = 0xC000_0100;
const RFLAGS_IF: u64 = 1 << 9;
/// RFLAGS bits a subject may set through iret/lret emulation: CF PF AF
/// ZF SF TF DF OF RF AC ID (IF is virtual, IOPL/NT/VM never).
const RFLAGS_USER: u64 =
    0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x100 | 0x400 | 0x800 | 0x1_0000 | 0x4_0000 | 0x20_0000;

/// State of the subject's CPU that the hardware does not hold for it.
#[derive(Debug, Clone)]
pub struct VirtCpu {
    pub gdt_base: u64,
    pub gdt_limit: u16,
    pub idt_base: u64,
    pub idt_limit: u16,
    pub tr: u16,
    pub tss_base: u64,
    pub ldtr: u16,
    /// Virtual RFLAGS.IF.
    pub vif: bool,
    /// Virtual CR2 (last delivered #PF address or value written).
    pub cr2: u64,
    pub cs: u16,
    pub ss: u16,
    pub ds: u16,
    pub es: u16,
    pub fs: u16,
    pub gs: u16,
    /// FS base (the real MSR is loaded with it while the subject runs).
    pub fs_base: u64,
}

impl VirtCpu {
    /// Muen native profile at reset (docs/muen-abi.md §3.1).
    pub fn reset() -> Self {
        VirtCpu {
            gdt_base: 0,
            gdt_limit: 0,
            idt_base: 0,
            idt_limit: 0,
            tr: 0x18,
            tss_base: 0,
            ldtr: 0,
            vif: false,
            cr2: 0,
            cs: 0x08,
            ss: 0x10,
            ds: 0x10,
            es: 0x10,
            fs: 0,
            gs: 0,
            fs_base: 0,
        }
    }
}

/// I/O ports as the subject monitor emulates them.
pub trait Ports {
    /// `in` of `size` bytes; None = port not allowed.
    fn port_in(&mut self, port: u16, size: u8) -> Option<u32>;
    /// `out` of `size` bytes; false = port not allowed.
    fn port_out(&mut self, port: u16, size: u8, value: u32) -> bool;
}

/// An exception to deliver through the subject's IDT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exception {
    pub vector: u8,
    pub error: Option<u64>,
    /// Faulting address (#PF).
    pub addr: Option<u64>,
    /// Software interrupt (`int n`): RIP already points past it.
    pub software: bool,
}

impl Exception {
    /// A hardware exception, with the error code if the vector has one.
    pub fn fault(vector: u8, error: u64) -> Self {
        let has_error = matches!(vector, 8 | 10 | 11 | 12 | 13 | 14 | 17 | 21 | 29 | 30);
        Exception {
            vector,
            error: has_error.then_some(error),
            addr: None,
            software: false,
        }
    }

    /// #PF (or #GP for a non-canonical address) for a failed access.
    pub fn from_mem(f: MemFault) -> Self {
        if f.noncanonical {
            Exception::fault(13, 0)
        } else {
            Exception {
                vector: 14,
                error: Some(f.error_code()),
                addr: Some(f.addr),
                software: false,
            }
        }
    }
}

/// Why a subject is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// A privileged instruction the monitor does not handle.
    Unhandled(&'static str),
    /// An I/O port outside the emulated set.
    Port { port: u16, write: bool },
    /// CR3/CR8 access or a CR4 change (Muen halts the subject).
    ControlRegister { cr: u8, write: bool },
    /// The instruction at RIP could not be fetched or decoded.
    BadInstruction(u64),
    /// An exception could not be delivered through the subject's IDT.
    Delivery {
        vector: u8,
        why: &'static str,
        addr: u64,
    },
    /// Demand paging ran out of memory.
    OutOfMemory(u64),
    /// The CPU state cannot be resumed (non-canonical RIP or RSP).
    BadState { rip: u64, rsp: u64 },
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::Unhandled(what) => write!(f, "unhandled trap: {what}"),
            Stop::Port { port, write } => {
                write!(
                    f,
                    "unhandled trap: {} port {port:#x}",
                    if *write { "out to" } else { "in from" }
                )
            }
            Stop::ControlRegister { cr, write } => {
                write!(
                    f,
                    "unhandled trap: mov {} cr{cr}",
                    if *write { "to" } else { "from" }
                )
            }
            Stop::BadInstruction(rip) => {
                write!(f, "cannot decode the trapping instruction at {rip:#x}")
            }
            Stop::Delivery { vector, why, addr } => {
                write!(
                    f,
                    "cannot deliver exception {vector}: {why} (address {addr:#x})"
                )
            }
            Stop::OutOfMemory(addr) => write!(f, "out of memory populating {addr:#x}"),
            Stop::BadState { rip, rsp } => write!(
                f,
                "cannot resume: non-canonical rip {rip:#x} or rsp {rsp:#x}"
            ),
        }
    }
}

/// What the kernel does after an emulated instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Continue the subject (RIP and state updated).
    Resume,
    /// `vmcall`: raise event RAX (RIP already advanced).
    Event(u64),
    /// `hlt`: the subject stops for good.
    Halt,
    /// Deliver this exception through the subject's IDT.
    Deliver(Exception),
    /// Stop the subject.
    Stop(Stop),
    /// Not an instruction the monitor handles: reflect the original fault.
    Reflect,
}

fn mem_err(f: MemFault) -> Outcome {
    if f.oom {
        Outcome::Stop(Stop::OutOfMemory(f.addr))
    } else {
        Outcome::Deliver(Exception::from_mem(f))
    }
}

macro_rules! tryf {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(f) => return mem_err(f),
        }
    };
}

fn gp(sel: u64) -> Outcome {
    Outcome::Deliver(Exception::fault(13, sel & 0xFFFC))
}

fn canonical(a: u64) -> bool {
    !(USER_TOP..0xFFFF_8000_0000_0000).contains(&a)
}

fn le(b: &[u8]) -> u64 {
    b.iter().rev().fold(0u64, |a, &x| a << 8 | x as u64)
}

/// The emulation context of one trap.
pub struct Emu<'a> {
    pub f: &'a mut TrapFrame,
    pub v: &'a mut VirtCpu,
    pub mem: &'a mut AddressSpace,
    pub ports: &'a mut dyn Ports,
    /// `tsc_schedule_end` of the current minor frame (rdtsc result).
    pub sched_end: u64,
}

impl Emu<'_> {
    fn ea(&self, m: &Mem, next_rip: u64) -> u64 {
        let mut a = m.disp as u64;
        if m.rip_relative {
            a = a.wrapping_add(next_rip);
        }
        if let Some(b) = m.base {
            a = a.wrapping_add(self.f.gpr(b));
        }
        if let Some(i) = m.index {
            a = a.wrapping_add(self.f.gpr(i).wrapping_mul(m.scale as u64));
        }
        if m.addr32 {
            a &= 0xFFFF_FFFF;
        }
        if m.seg == Some(Seg::Fs) {
            a = a.wrapping_add(self.v.fs_base);
        }
        a
    }

    fn read_rm16(&mut self, rm: Rm, next_rip: u64) -> Result<u16, MemFault> {
        match rm {
            Rm::Reg(r) => Ok(self.f.gpr(r) as u16),
            Rm::Mem(m) => {
                let mut b = [0u8; 2];
                let a = self.ea(&m, next_rip);
                self.mem.read(a, &mut b)?;
                Ok(u16::from_le_bytes(b))
            }
        }
    }

    /// Stores a selector-like value: registers get it zero-extended by
    /// operand size (16-bit keeps the upper bits), memory gets 16 bits.
    fn write_rm_sel(
        &mut self,
        rm: Rm,
        osize: u8,
        value: u64,
        next_rip: u64,
    ) -> Result<(), MemFault> {
        match rm {
            Rm::Reg(r) => {
                let old = self.f.gpr(r);
                let v = if osize == 2 {
                    (old & !0xFFFF) | (value & 0xFFFF)
                } else if osize == 4 {
                    value & 0xFFFF_FFFF
                } else {
                    value
                };
                self.f.set_gpr(r, v);
                Ok(())
            }
            Rm::Mem(m) => {
                let a = self.ea(&m, next_rip);
                self.mem.write(a, &(value as u16).to_le_bytes())
            }
        }
    }

    /// Reads the 8-byte descriptor of `sel` from the subject's GDT.
    fn descriptor(&mut self, sel: u16, size: u64) -> Result<Option<[u8; 16]>, MemFault> {
        let off = (sel & !7) as u64;
        if sel & 4 != 0 || off + size - 1 > self.v.gdt_limit as u64 {
            return Ok(None);
        }
        let mut d = [0u8; 16];
        self.mem
            .read(self.v.gdt_base.wrapping_add(off), &mut d[..size as usize])?;
        Ok(Some(d))
    }

    /// Checks that `sel` names a present code segment; Err = the fault.
    fn check_code_selector(&mut self, sel: u16) -> Result<(), Outcome> {
        match self.descriptor(sel, 8) {
            Err(f) => Err(mem_err(f)),
            Ok(None) => Err(gp(sel as u64)),
            Ok(Some(d)) => {
                if d[5] & 0x18 != 0x18 {
                    Err(gp(sel as u64))
                } else if d[5] & 0x80 == 0 {
                    Err(Outcome::Deliver(Exception::fault(11, sel as u64 & 0xFFFC)))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Pops `n` values of `size` bytes from the subject stack (all or
    /// nothing).
    fn pop(&mut self, n: usize, size: u8) -> Result<[u64; 5], MemFault> {
        let mut buf = [0u8; 40];
        let len = n * size as usize;
        self.mem.read(self.f.rsp, &mut buf[..len])?;
        let mut out = [0u64; 5];
        for (i, o) in out.iter_mut().enumerate().take(n) {
            *o = le(&buf[i * size as usize..(i + 1) * size as usize]);
        }
        Ok(out)
    }

    fn set_rflags(&mut self, value: u64) {
        self.v.vif = value & RFLAGS_IF != 0;
        self.f.rflags = (value & RFLAGS_USER) | 0x2 | RFLAGS_IF;
    }

    /// Emulates `insn` (decoded at RIP) after a #GP or #UD.
    pub fn emulate(&mut self, insn: &Insn) -> Outcome {
        let next = self.f.rip.wrapping_add(insn.len as u64);
        let osize = insn.osize;
        match insn.op {
            Op::Vmcall => {
                self.f.rip = next;
                return Outcome::Event(self.f.rax);
            }
            Op::Rdtsc => {
                self.f.rax = self.sched_end & 0xFFFF_FFFF;
                self.f.rdx = self.sched_end >> 32;
            }
            Op::Rdtscp => return Outcome::Deliver(Exception::fault(6, 0)),
            Op::Rdmsr => {
                let v = if self.f.rcx as u32 == MSR_FS_BASE {
                    self.v.fs_base
                } else {
                    0
                };
                self.f.rax = v & 0xFFFF_FFFF;
                self.f.rdx = v >> 32;
            }
            Op::Wrmsr => {
                if self.f.rcx as u32 == MSR_FS_BASE {
                    let v = (self.f.rdx & 0xFFFF_FFFF) << 32 | (self.f.rax & 0xFFFF_FFFF);
                    if !canonical(v) {
                        return gp(0);
                    }
                    self.v.fs_base = v;
                }
            }
            Op::Rdpmc => return Outcome::Stop(Stop::Unhandled("rdpmc")),
            Op::Hlt => return Outcome::Halt,
            Op::Cli => self.v.vif = false,
            Op::Sti => self.v.vif = true,
            Op::In { size, port } => {
                let p = match port {
                    Port::Imm(p) => p as u16,
                    Port::Dx => self.f.rdx as u16,
                };
                let Some(v) = self.ports.port_in(p, size) else {
                    return Outcome::Stop(Stop::Port {
                        port: p,
                        write: false,
                    });
                };
                self.f.rax = match size {
                    1 => (self.f.rax & !0xFF) | (v as u64 & 0xFF),
                    2 => (self.f.rax & !0xFFFF) | (v as u64 & 0xFFFF),
                    _ => v as u64,
                };
            }
            Op::Out { size, port } => {
                let p = match port {
                    Port::Imm(p) => p as u16,
                    Port::Dx => self.f.rdx as u16,
                };
                let mask = match size {
                    1 => 0xFF,
                    2 => 0xFFFF,
                    _ => 0xFFFF_FFFF,
                };
                if !self.ports.port_out(p, size, (self.f.rax & mask) as u32) {
                    return Outcome::Stop(Stop::Port {
                        port: p,
                        write: true,
                    });
                }
            }
            Op::StringIo => return Outcome::Stop(Stop::Unhandled("string I/O (ins/outs)")),
            Op::Lgdt(m) | Op::Lidt(m) => {
                let mut b = [0u8; 10];
                let a = self.ea(&m, next);
                tryf!(self.mem.read(a, &mut b));
                let limit = u16::from_le_bytes([b[0], b[1]]);
                let base = le(&b[2..10]);
                if matches!(insn.op, Op::Lgdt(_)) {
                    self.v.gdt_base = base;
                    self.v.gdt_limit = limit;
                } else {
                    self.v.idt_base = base;
                    self.v.idt_limit = limit;
                }
            }
            Op::Sgdt(m) | Op::Sidt(m) => {
                let (base, limit) = if matches!(insn.op, Op::Sgdt(_)) {
                    (self.v.gdt_base, self.v.gdt_limit)
                } else {
                    (self.v.idt_base, self.v.idt_limit)
                };
                let mut b = [0u8; 10];
                b[..2].copy_from_slice(&limit.to_le_bytes());
                b[2..].copy_from_slice(&base.to_le_bytes());
                let a = self.ea(&m, next);
                tryf!(self.mem.write(a, &b));
            }
            Op::Smsw(rm) => match rm {
                Rm::Reg(_) => tryf!(self.write_rm_sel(rm, osize, CR0_SHADOW, next)),
                Rm::Mem(_) => tryf!(self.write_rm_sel(rm, 2, CR0_SHADOW & 0xFFFF, next)),
            },
            Op::Lmsw(_) | Op::Invlpg(_) | Op::Wbinvd | Op::Invd | Op::Clts | Op::MovDr { .. } => {}
            Op::Str(rm) => tryf!(self.write_rm_sel(rm, osize, self.v.tr as u64, next)),
            Op::Sldt(rm) => tryf!(self.write_rm_sel(rm, osize, self.v.ldtr as u64, next)),
            Op::Lldt(rm) => {
                let sel = tryf!(self.read_rm16(rm, next));
                if sel & !3 != 0 {
                    return Outcome::Stop(Stop::Unhandled(
                        "lldt with a non-null selector (no LDT support)",
                    ));
                }
                self.v.ldtr = 0;
            }
            Op::Ltr(rm) => {
                let sel = tryf!(self.read_rm16(rm, next));
                let d = match self.descriptor(sel, 16) {
                    Err(f) => return mem_err(f),
                    Ok(None) => return gp(sel as u64),
                    Ok(Some(d)) => d,
                };
                if sel & !7 == 0 || d[5] & 0x1F != 0x09 {
                    return gp(sel as u64);
                }
                if d[5] & 0x80 == 0 {
                    return Outcome::Deliver(Exception::fault(11, sel as u64 & 0xFFFC));
                }
                let base = le(&d[2..5]) | (d[7] as u64) << 24 | le(&d[8..12]) << 32;
                // Mark the descriptor busy, as the CPU does.
                let a = self.v.gdt_base.wrapping_add((sel & !7) as u64 + 5);
                tryf!(self.mem.write(a, &[d[5] | 0x02]));
                self.v.tr = sel;
                self.v.tss_base = base;
            }
            Op::MovSreg { sreg, src } => {
                if sreg == 1 || sreg > 5 {
                    return Outcome::Deliver(Exception::fault(6, 0));
                }
                let sel = tryf!(self.read_rm16(src, next));
                if sel & !3 != 0 {
                    match self.descriptor(sel, 8) {
                        Err(f) => return mem_err(f),
                        Ok(None) => return gp(sel as u64),
                        Ok(Some(d)) if d[5] & 0x80 == 0 => {
                            let v = if sreg == 2 { 12 } else { 11 };
                            return Outcome::Deliver(Exception::fault(v, sel as u64 & 0xFFFC));
                        }
                        Ok(Some(_)) => {}
                    }
                }
                match sreg {
                    0 => self.v.es = sel,
                    2 => self.v.ss = sel,
                    3 => self.v.ds = sel,
                    4 => self.v.fs = sel,
                    _ => self.v.gs = sel,
                }
            }
            Op::MovFromCr { cr, gpr } => {
                let v = match cr {
                    0 => CR0_SHADOW,
                    2 => self.v.cr2,
                    4 => CR4_SHADOW,
                    3 | 8 => return Outcome::Stop(Stop::ControlRegister { cr, write: false }),
                    _ => return Outcome::Deliver(Exception::fault(6, 0)),
                };
                self.f.set_gpr(gpr, v);
            }
            Op::MovToCr { cr, gpr } => {
                let v = self.f.gpr(gpr);
                match cr {
                    0 if gpr == 0 => {}
                    0 => {
                        return Outcome::Stop(Stop::Unhandled(
                            "mov to cr0 from a register other than rax",
                        ));
                    }
                    2 => self.v.cr2 = v,
                    4 if (v ^ CR4_SHADOW) & !0x400 == 0 => {}
                    3 | 4 | 8 => return Outcome::Stop(Stop::ControlRegister { cr, write: true }),
                    _ => return Outcome::Deliver(Exception::fault(6, 0)),
                }
            }
            Op::Iret => {
                let size = osize;
                let v = tryf!(self.pop(5, size));
                let (rip, cs, rflags, rsp, ss) = (v[0], v[1] as u16, v[2], v[3], v[4] as u16);
                if rip >= USER_TOP || !canonical(rsp) {
                    return gp(0);
                }
                if let Err(o) = self.check_code_selector(cs) {
                    return o;
                }
                self.f.rip = rip;
                self.v.cs = cs;
                self.set_rflags(rflags);
                self.f.rsp = rsp;
                self.v.ss = ss;
                return Outcome::Resume;
            }
            Op::Lret { pop } => {
                let size = if osize == 8 { 8 } else { osize };
                let v = tryf!(self.pop(2, size));
                let (rip, cs) = (v[0], v[1] as u16);
                if rip >= USER_TOP {
                    return gp(0);
                }
                if let Err(o) = self.check_code_selector(cs) {
                    return o;
                }
                self.f.rip = rip;
                self.v.cs = cs;
                self.f.rsp = self.f.rsp.wrapping_add(2 * size as u64 + pop as u64);
                return Outcome::Resume;
            }
            Op::FarJmp(m) | Op::FarCall(m) => {
                let size = osize as usize;
                let mut b = [0u8; 10];
                let a = self.ea(&m, next);
                tryf!(self.mem.read(a, &mut b[..size + 2]));
                let target = le(&b[..size]);
                let cs = u16::from_le_bytes([b[size], b[size + 1]]);
                if target >= USER_TOP {
                    return gp(0);
                }
                if let Err(o) = self.check_code_selector(cs) {
                    return o;
                }
                if matches!(insn.op, Op::FarCall(_)) {
                    let mut s = [0u8; 16];
                    s[..size].copy_from_slice(&next.to_le_bytes()[..size]);
                    s[size..2 * size].copy_from_slice(&(self.v.cs as u64).to_le_bytes()[..size]);
                    let new_rsp = self.f.rsp.wrapping_sub(2 * size as u64);
                    tryf!(self.mem.write(new_rsp, &s[..2 * size]));
                    self.f.rsp = new_rsp;
                }
                self.f.rip = target;
                self.v.cs = cs;
                return Outcome::Resume;
            }
            Op::Int(n) => {
                self.f.rip = next;
                return Outcome::Deliver(Exception {
                    vector: n,
                    error: None,
                    addr: None,
                    software: true,
                });
            }
            Op::Int3 => {
                self.f.rip = next;
                return Outcome::Deliver(Exception {
                    vector: 3,
                    error: None,
                    addr: None,
                    software: true,
                });
            }
            Op::Privileged(name) => return Outcome::Stop(Stop::Unhandled(name)),
            Op::Other => return Outcome::Reflect,
        }
        self.f.rip = next;
        Outcome::Resume
    }

    /// Delivers `e` through the subject's IDT as the CPU would at CPL 0 →
    /// CPL 0: gate lookup, optional IST switch, 16-byte alignment, push of
    /// SS, RSP, RFLAGS, CS, RIP and the error code.
    pub fn deliver(&mut self, e: Exception) -> Result<(), Stop> {
        let vector = e.vector;
        let fail = |why, addr| Stop::Delivery { vector, why, addr };
        let gate_off = vector as u64 * 16;
        if gate_off + 15 > self.v.idt_limit as u64 {
            return Err(fail(
                "IDT limit too small (no IDT loaded?)",
                self.v.idt_base,
            ));
        }
        let gate_va = self.v.idt_base.wrapping_add(gate_off);
        let mut g = [0u8; 16];
        self.mem
            .read(gate_va, &mut g)
            .map_err(|_| fail("IDT not mapped", gate_va))?;
        let kind = g[5] & 0x1F;
        if g[5] & 0x80 == 0 {
            return Err(fail("gate not present", gate_va));
        }
        if kind != 0x0E && kind != 0x0F {
            return Err(fail("not an interrupt or trap gate", gate_va));
        }
        let handler = le(&g[0..2]) | le(&g[6..8]) << 16 | le(&g[8..12]) << 32;
        let selector = u16::from_le_bytes([g[2], g[3]]);
        let ist = g[4] & 7;
        if handler >= USER_TOP {
            return Err(fail("handler address outside the subject's half", handler));
        }
        self.mem
            .check_exec(handler)
            .map_err(|_| fail("handler not mapped executable", handler))?;
        let stack = if ist != 0 {
            let a = self.v.tss_base.wrapping_add(36 + 8 * (ist as u64 - 1));
            let mut b = [0u8; 8];
            self.mem
                .read(a, &mut b)
                .map_err(|_| fail("TSS not mapped (no ltr?)", a))?;
            u64::from_le_bytes(b)
        } else {
            self.f.rsp
        } & !0xF;
        let image =
            (self.f.rflags & !(RFLAGS_IF | 0x3000)) | if self.v.vif { RFLAGS_IF } else { 0 };
        let mut words = [0u64; 6];
        let mut n = 0;
        if let Some(err) = e.error {
            words[n] = err;
            n += 1;
        }
        for w in [
            self.f.rip,
            self.v.cs as u64,
            image,
            self.f.rsp,
            self.v.ss as u64,
        ] {
            words[n] = w;
            n += 1;
        }
        let mut bytes = [0u8; 48];
        for (i, w) in words[..n].iter().enumerate() {
            bytes[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
        }
        let new_rsp = stack.wrapping_sub(8 * n as u64);
        self.mem
            .write(new_rsp, &bytes[..8 * n])
            .map_err(|f| fail("stack not mapped writable", f.addr))?;
        self.f.rsp = new_rsp;
        self.f.rip = handler;
        self.v.cs = selector;
        if kind == 0x0E {
            self.v.vif = false;
        }
        // TF, NT, RF cleared as on delivery.
        self.f.rflags &= !(0x100 | 0x4000 | 0x1_0000);
        if let Some(a) = e.addr {
            self.v.cr2 = a;
        }
        Ok(())
    }
}
