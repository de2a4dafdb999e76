//! Boot headers and the 32-bit entry stubs.
//!
//! The image carries two entry points: the PVH note (QEMU `-kernel`,
//! Firecracker, cloud-hypervisor) and a multiboot1 header with the a.out
//! kludge (GRUB, QEMU's multiboot loader). Both enter 32-bit protected mode
//! with paging off at a *physical* address; everything is linked at
//! `KVMA + phys`, so the stubs only use relative jumps and `sym - KVMA`.
//!
//! The stubs zero `.bss`, build boot page tables (identity and direct map
//! of the first 4 GiB with 2 MiB pages, and the kernel window at
//! `0xFFFF_FFFF_8000_0000`), enter long mode and call
//! `kmain(protocol, info_phys)` on the boot stack at its high address.
//! [`crate::paging`] replaces these tables early in `kmain`.

use core::arch::global_asm;

/// `kmain`'s first argument: booted through multiboot1 (`%ebx` = info).
pub const PROTO_MULTIBOOT: u32 = 1;
/// `kmain`'s first argument: booted through PVH (`%ebx` = `hvm_start_info`).
pub const PROTO_PVH: u32 = 2;

global_asm!(
    r#"
.set KVMA, 0xFFFFFFFF80000000
.set MB_MAGIC, 0x1BADB002
.set MB_FLAGS, 0x00010003

/* Multiboot1 header with the a.out kludge (flags bit 16). It ships
 * DISARMED (checksum 0): QEMU's -kernel prefers multiboot over PVH whenever
 * a valid header exists, so the packer arms it only for multiboot images
 * (checksum = -(magic + flags)). See docs/kernel.md "Inputs". */
.section .multiboot, "a"
.balign 4
.globl __multiboot_header
__multiboot_header:
    .long MB_MAGIC
    .long MB_FLAGS
    .long 0
    .long __multiboot_header - KVMA
    .long __kernel_start - KVMA
    .long __data_end - KVMA
    .long __kernel_end - KVMA
    .long _start_mb - KVMA

/* PVH: XEN_ELFNOTE_PHYS32_ENTRY (18), value = physical entry address. */
.section .note.Xen, "a", @note
.balign 4
    .long 4
    .long 8
    .long 18
    .asciz "Xen"
    .balign 4
    .quad _start_pvh - KVMA

.section .boot.text, "ax"
.code32
.globl _start_mb
_start_mb:
    movl $1, %ebp
    movl %ebx, %esi
    jmp start32
.globl _start_pvh
_start_pvh:
    movl $2, %ebp
    movl %ebx, %esi
start32:
    cli
    cld
    /* zero .bss (page tables and stack live there) */
    movl $(__bss_start - KVMA), %edi
    movl $(__bss_end - KVMA), %ecx
    subl %edi, %ecx
    shrl $2, %ecx
    xorl %eax, %eax
    rep stosl
    /* 2048 PD entries: 4 GiB in 2 MiB pages */
    movl $(boot_pd - KVMA), %edi
    movl $0x83, %eax
    movl $2048, %ecx
1:  movl %eax, (%edi)
    addl $0x200000, %eax
    addl $8, %edi
    loop 1b
    /* low PDPT: 4 PDs */
    movl $(boot_pdpt - KVMA), %edi
    movl $(boot_pd - KVMA + 3), %eax
    movl %eax, 0(%edi)
    addl $0x1000, %eax
    movl %eax, 8(%edi)
    addl $0x1000, %eax
    movl %eax, 16(%edi)
    addl $0x1000, %eax
    movl %eax, 24(%edi)
    /* high PDPT: entries 510/511 = first 2 GiB */
    movl $(boot_pdpt_hi - KVMA), %edi
    movl $(boot_pd - KVMA + 3), %eax
    movl %eax, 4080(%edi)
    addl $0x1000, %eax
    movl %eax, 4088(%edi)
    /* PML4: identity (0), direct map (256), kernel window (511) */
    movl $(boot_pml4 - KVMA), %edi
    movl $(boot_pdpt - KVMA + 3), %eax
    movl %eax, 0(%edi)
    movl %eax, 2048(%edi)
    movl $(boot_pdpt_hi - KVMA + 3), %eax
    movl %eax, 4088(%edi)
    /* CR4: PAE | OSFXSR | OSXMMEXCPT */
    movl %cr4, %eax
    orl $0x620, %eax
    movl %eax, %cr4
    movl $(boot_pml4 - KVMA), %eax
    movl %eax, %cr3
    /* EFER: LME, plus NXE when the CPU has NX; SCE cleared whatever the
     * loader left, so `syscall` from a subject is #UD, never a ring-0 entry */
    movl $0x80000001, %eax
    cpuid
    movl $0x100, %ebx
    testl $0x100000, %edx
    jz 2f
    orl $0x800, %ebx
2:  movl $0xC0000080, %ecx
    rdmsr
    andl $0xFFFFFFFE, %eax
    orl %ebx, %eax
    wrmsr
    /* CR0: clear EM, TS; set PE, MP, NE, WP, PG */
    movl %cr0, %eax
    andl $0xFFFFFFF3, %eax
    orl $0x80010023, %eax
    movl %eax, %cr0
    lgdt (boot_gdtr - KVMA)
    ljmp $0x08, $(start64_low - KVMA)

.code64
start64_low:
    movabsq $start64_high, %rax
    jmpq *%rax
start64_high:
    movl $0x10, %eax
    movl %eax, %ds
    movl %eax, %es
    movl %eax, %ss
    xorl %eax, %eax
    movl %eax, %fs
    movl %eax, %gs
    leaq boot_stack_top(%rip), %rsp
    fninit
    movl %ebp, %edi
    movl %esi, %esi
    xorl %ebp, %ebp
    call kmain
3:  cli
    hlt
    jmp 3b

.balign 8
boot_gdt:
    .quad 0
    .quad 0x00AF9A000000FFFF
    .quad 0x00CF92000000FFFF
boot_gdt_end:
boot_gdtr:
    .word boot_gdt_end - boot_gdt - 1
    .long boot_gdt - KVMA

.section .bss.boot, "aw", @nobits
.balign 4096
boot_pml4:    .skip 4096
boot_pdpt:    .skip 4096
boot_pdpt_hi: .skip 4096
boot_pd:      .skip 4 * 4096
.globl __stack_guard
__stack_guard: .skip 4096
.globl __boot_stack_bottom
__boot_stack_bottom:
    .skip 128 * 1024
.globl __boot_stack_top
__boot_stack_top:
boot_stack_top:
"#,
    options(att_syntax)
);
