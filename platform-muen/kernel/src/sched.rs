//! The static round-robin plan and trap dispatch: each runnable subject
//! gets one minor frame in turn; traps are emulated, reflected through the
//! subject's IDT or stop the subject; peers are serviced at every frame
//! boundary (docs/kernel.md "Time and scheduling").

use crate::apic::Lapic;
use crate::bridge::Bridge;
use crate::decode::{self, Op};
use crate::paging::USER_TOP;
use crate::peers::DebugLogs;
use crate::subject::{End, Subject};
use crate::trap::{self, VEC_NET, VEC_SPURIOUS, VEC_TIMER};
use crate::vcpu::{Emu, Exception, Outcome, Stop};
use crate::{cpu, klog, kprint};
use alloc::vec::Vec;
use muen_image::Action;

/// What happens after a trap has been handled.
enum Next {
    Resume,
    EndFrame,
}

/// The running system.
pub struct Kernel {
    pub subjects: Vec<Subject>,
    pub lapic: Lapic,
    pub tsc_hz: u64,
    /// Minor frame length in TSC ticks.
    pub frame_tsc: u64,
    pub logs: DebugLogs,
    pub bridge: Option<Bridge>,
    pub debug_exit: bool,
    frame_us: u32,
    names: Vec<&'static str>,
    current_cr3: u64,
    sched_end: u64,
    /// Network-channel restart period in TSC ticks (0: never) and the TSC
    /// of the next restart.
    net_restart_tsc: u64,
    net_restart_ms: u32,
    next_net_restart: u64,
}

impl Kernel {
    /// Assembles the kernel state; `settings` is the image's plan (minor
    /// frame, debug exit, NIC channel restarts).
    pub fn new(
        subjects: Vec<Subject>,
        lapic: Lapic,
        tsc_hz: u64,
        settings: muen_image::Settings,
        logs: DebugLogs,
        bridge: Option<Bridge>,
    ) -> Self {
        let frame_us = settings.minor_frame_us;
        let debug_exit = settings.flags & muen_image::FLAG_DEBUG_EXIT != 0;
        let net_restart_ms = settings.net_restart_ms();
        let net_restart_tsc = (tsc_hz as u128 * net_restart_ms as u128 / 1000) as u64;
        let names = subjects.iter().map(|s| s.name).collect();
        Kernel {
            subjects,
            lapic,
            tsc_hz,
            frame_tsc: (tsc_hz as u128 * frame_us as u128 / 1_000_000).max(1) as u64,
            logs,
            bridge,
            debug_exit,
            frame_us,
            names,
            current_cr3: 0,
            sched_end: 0,
            net_restart_tsc,
            net_restart_ms,
            next_net_restart: u64::MAX,
        }
    }

    fn service_peers(&mut self) {
        self.logs.poll(&self.names);
        if let Some(b) = self.bridge.as_mut() {
            let now = cpu::rdtsc();
            if now >= self.next_net_restart {
                b.restart_subject_channels(crate::random_epoch);
                self.next_net_restart = now.saturating_add(self.net_restart_tsc);
            }
            b.poll();
            b.report(now, self.tsc_hz.saturating_mul(5), false);
        }
    }

    /// Runs the plan until no subject is runnable, then reports and exits.
    pub fn run(&mut self) -> ! {
        let mut rr = 0usize;
        let first = cpu::rdtsc();
        klog!(
            "starting {} subject(s), minor frame {} us, {} ms after reset",
            self.subjects.len(),
            self.frame_us,
            first as u128 * 1000 / self.tsc_hz as u128
        );
        if self.net_restart_tsc > 0 && self.bridge.is_some() {
            self.next_net_restart = first.saturating_add(self.net_restart_tsc);
            klog!(
                "bridge: channels to subjects restart with a new epoch every {} ms",
                self.net_restart_ms
            );
        }
        loop {
            let n = self.subjects.len();
            if self.subjects.iter().all(|s| !s.alive()) {
                self.finish();
            }
            let now = cpu::rdtsc();
            let pick = (0..n).map(|k| (rr + k) % n).find(|&i| {
                let s = &self.subjects[i];
                s.alive() && s.sleep_until <= now
            });
            let Some(i) = pick else {
                let wake = self
                    .subjects
                    .iter()
                    .filter(|s| s.alive())
                    .map(|s| s.sleep_until)
                    .min()
                    .unwrap_or(now);
                self.idle_until(wake.min(self.next_net_restart));
                self.service_peers();
                continue;
            };
            rr = i + 1;
            self.run_frame(i);
            self.service_peers();
        }
    }

    fn idle_until(&mut self, wake: u64) {
        let now = cpu::rdtsc();
        if wake > now {
            self.lapic
                .arm(self.lapic.tsc_to_ticks(wake - now, self.tsc_hz));
            trap::idle();
            self.lapic.disarm();
        }
        for v in [VEC_TIMER, VEC_NET] {
            if trap::take_pending(v) {
                self.lapic.eoi();
            }
        }
        trap::take_pending(VEC_SPURIOUS);
    }

    fn run_frame(&mut self, i: usize) {
        let start = cpu::rdtsc();
        let end = start + self.frame_tsc;
        self.sched_end = end;
        {
            let s = &mut self.subjects[i];
            s.set_schedule(start, end);
            s.stats.frames += 1;
            if s.space.pml4 != self.current_cr3 {
                // SAFETY: the subject's PML4 shares the kernel half.
                unsafe { cpu::write_cr3(s.space.pml4) };
                self.current_cr3 = s.space.pml4;
            }
            // SAFETY: FS_BASE only affects the subject (the kernel never
            // uses %fs); the value is canonical (checked on wrmsr).
            unsafe { cpu::wrmsr(0xC000_0100, s.virt.fs_base) };
        }
        self.lapic
            .arm(self.lapic.tsc_to_ticks(self.frame_tsc, self.tsc_hz));
        loop {
            let s = &mut self.subjects[i];
            if s.frame.rip >= USER_TOP
                || (s.frame.rsp >= USER_TOP && s.frame.rsp < 0xFFFF_8000_0000_0000)
            {
                let (rip, rsp) = (s.frame.rip, s.frame.rsp);
                self.stop(i, End::Stopped(Stop::BadState { rip, rsp }), None);
                break;
            }
            trap::enter(&mut s.frame);
            s.stats.traps += 1;
            match self.handle_trap(i) {
                Next::Resume => {}
                Next::EndFrame => break,
            }
            if !self.subjects[i].alive() {
                break;
            }
        }
        self.lapic.disarm();
    }

    fn handle_trap(&mut self, i: usize) -> Next {
        let vector = self.subjects[i].frame.vector;
        match vector {
            v if v == VEC_TIMER as u64 => {
                self.lapic.eoi();
                if self.lapic.expired() {
                    Next::EndFrame
                } else {
                    Next::Resume
                }
            }
            v if v == VEC_SPURIOUS as u64 => Next::Resume,
            v if v == VEC_NET as u64 => {
                self.lapic.eoi();
                if let Some(b) = self.bridge.as_mut() {
                    b.poll();
                }
                Next::Resume
            }
            32..=255 => {
                self.lapic.eoi();
                Next::Resume
            }
            14 => {
                let cr2 = cpu::read_cr2();
                let err = self.subjects[i].frame.error;
                let s = &mut self.subjects[i];
                if err & 1 == 0 && cr2 < USER_TOP {
                    match s.space.populate(cr2) {
                        Ok(true) => return Next::Resume,
                        Ok(false) => {}
                        Err(_) => {
                            self.stop(i, End::Stopped(Stop::OutOfMemory(cr2)), Some(cr2));
                            return Next::EndFrame;
                        }
                    }
                }
                // As Muen shows it: CPL 0 (U/S = 0); the kernel half is absent.
                let mut e = err & !(1 << 2);
                if cr2 >= USER_TOP {
                    e &= !1;
                }
                self.reflect(
                    i,
                    Exception {
                        vector: 14,
                        error: Some(e),
                        addr: Some(cr2),
                        software: false,
                    },
                )
            }
            6 | 13 => self.emulate(i, vector as u8),
            v => {
                let err = self.subjects[i].frame.error;
                self.reflect(i, Exception::fault(v as u8, err))
            }
        }
    }

    fn emulate(&mut self, i: usize, vector: u8) -> Next {
        let sched_end = self.sched_end;
        let s = &mut self.subjects[i];
        let rip = s.frame.rip;
        let err = s.frame.error;
        let mut bytes = [0u8; 15];
        let got = s.space.fetch(rip, &mut bytes);
        let insn = match decode::decode(&bytes[..got]) {
            Ok(insn) => insn,
            Err(_) => {
                self.stop(i, End::Stopped(Stop::BadInstruction(rip)), None);
                return Next::EndFrame;
            }
        };
        if vector == 6 {
            // #UD: only vmcall and unhandled privileged instructions are
            // the monitor's business; everything else is the subject's.
            match insn.op {
                Op::Vmcall | Op::Privileged(_) => {}
                _ => return self.reflect(i, Exception::fault(6, 0)),
            }
        } else if err & 2 != 0 && !matches!(insn.op, Op::Int(_) | Op::Int3) {
            // #GP through an IDT gate that is not `int n`: genuine.
            return self.reflect(i, Exception::fault(13, err));
        }
        s.stats.emulated += 1;
        let outcome = {
            let mut emu = Emu {
                f: &mut s.frame,
                v: &mut s.virt,
                mem: &mut s.space,
                ports: &mut s.ports,
                sched_end,
            };
            emu.emulate(&insn)
        };
        if matches!(insn.op, Op::Wrmsr) {
            // An emulated `wrmsr FS_BASE` must take effect at once, not at
            // the next minor frame: the CPU uses the real MSR.
            // SAFETY: as in `run_frame` (the kernel never uses %fs; the
            // value was checked canonical by the emulation).
            unsafe { cpu::wrmsr(0xC000_0100, s.virt.fs_base) };
        }
        match outcome {
            Outcome::Resume => Next::Resume,
            Outcome::Event(n) => self.event(i, n),
            Outcome::Halt => {
                self.stop(i, End::Halted { rip }, None);
                Next::EndFrame
            }
            Outcome::Deliver(e) => self.reflect(i, e),
            Outcome::Reflect => self.reflect(i, Exception::fault(vector, err)),
            Outcome::Stop(stop) => {
                self.stop(i, End::Stopped(stop), None);
                Next::EndFrame
            }
        }
    }

    fn event(&mut self, i: usize, n: u64) -> Next {
        let s = &mut self.subjects[i];
        s.stats.events += 1;
        let ev = if n < 64 { s.events[n as usize] } else { None };
        match ev {
            Some((name, Action::Exit)) => {
                self.stop(
                    i,
                    End::Exited {
                        event: name,
                        number: n as u8,
                    },
                    None,
                );
                Next::EndFrame
            }
            Some((_, Action::NetNotify)) => {
                if let Some(b) = self.bridge.as_mut() {
                    b.poll();
                }
                Next::Resume
            }
            Some((_, Action::Yield)) => {
                s.sleep_until = self.sched_end;
                Next::EndFrame
            }
            None => {
                let name = s.name;
                self.logs.poll(&self.names);
                klog!("{name}: spurious event {n} ignored");
                Next::Resume
            }
        }
    }

    fn reflect(&mut self, i: usize, e: Exception) -> Next {
        let s = &mut self.subjects[i];
        let rip = s.frame.rip;
        let result = {
            let mut emu = Emu {
                f: &mut s.frame,
                v: &mut s.virt,
                mem: &mut s.space,
                ports: &mut s.ports,
                sched_end: 0,
            };
            emu.deliver(e)
        };
        match result {
            Ok(()) => {
                s.stats.exceptions += 1;
                self.logs.poll(&self.names);
                let s = &self.subjects[i];
                klog!(
                    "{}: exception {} ({}) rip={:#x} addr={:#x} err={:#x} -> subject IDT",
                    s.name,
                    e.vector,
                    if e.software {
                        "int"
                    } else {
                        trap::exception_name(e.vector as u64)
                    },
                    rip,
                    e.addr.unwrap_or(0),
                    e.error.unwrap_or(0)
                );
                Next::Resume
            }
            Err(stop) => {
                s.frame.vector = e.vector as u64;
                s.frame.error = e.error.unwrap_or(0);
                self.stop(i, End::Stopped(stop), e.addr);
                Next::EndFrame
            }
        }
    }

    /// Ends subject `i` and logs it (with a full report if it was stopped).
    fn stop(&mut self, i: usize, end: End, addr: Option<u64>) {
        self.logs.flush_subject(i, &self.names);
        let s = &mut self.subjects[i];
        s.ports.flush();
        s.end = Some(end);
        klog!("subject {} {}", s.name, end);
        if let End::Stopped(_) = end {
            let f = &s.frame;
            let v = &s.virt;
            klog!(
                "  {}: vector {} ({}) rip={:#x} addr={:#x} err={:#x} rsp={:#x} rflags={:#x} vif={}",
                s.name,
                f.vector,
                trap::exception_name(f.vector),
                f.rip,
                addr.unwrap_or(0),
                f.error,
                f.rsp,
                f.rflags,
                v.vif as u8
            );
            klog!(
                "  rax={:#x} rbx={:#x} rcx={:#x} rdx={:#x} rsi={:#x} rdi={:#x} rbp={:#x}",
                f.rax,
                f.rbx,
                f.rcx,
                f.rdx,
                f.rsi,
                f.rdi,
                f.rbp
            );
            klog!(
                "  r8={:#x} r9={:#x} r10={:#x} r11={:#x} r12={:#x} r13={:#x} r14={:#x} r15={:#x}",
                f.r8,
                f.r9,
                f.r10,
                f.r11,
                f.r12,
                f.r13,
                f.r14,
                f.r15
            );
            klog!(
                "  cs={:#x} ss={:#x} gdtr={:#x}/{:#x} idtr={:#x}/{:#x} tr={:#x} tss={:#x} fs_base={:#x} cr2={:#x}",
                v.cs,
                v.ss,
                v.gdt_base,
                v.gdt_limit,
                v.idt_base,
                v.idt_limit,
                v.tr,
                v.tss_base,
                v.fs_base,
                v.cr2
            );
            klog!("  regions: {}", s.region_map());
        }
    }

    fn finish(&mut self) -> ! {
        self.service_peers();
        if let Some(b) = self.bridge.as_mut() {
            b.report(cpu::rdtsc(), 0, true);
        }
        let mut code = 0x10;
        for s in &self.subjects {
            let st = s.stats;
            let end = s.end.unwrap_or(End::Halted { rip: 0 });
            klog!(
                "summary: {}: {} [frames {}, traps {}, emulated {}, exceptions {}, events {}, demand pages {}]",
                s.name,
                end,
                st.frames,
                st.traps,
                st.emulated,
                st.exceptions,
                st.events,
                s.space.demand_pages
            );
            match end {
                End::Stopped(_) => code = 0x13,
                End::Halted { .. } if code != 0x13 => code = 0x12,
                _ => {}
            }
        }
        klog!("no runnable subject left; exit code {code:#x}");
        if self.debug_exit {
            crate::exit_qemu(code);
        }
        kprint!("kernel: halting (image has no FLAG_DEBUG_EXIT)\n");
        cpu::halt_forever()
    }
}
