//! Symbols the precompiled `core` expects from a C runtime: the mem*
//! functions (string instructions, never Rust loops that LLVM would turn
//! back into calls) and the two unwinding stubs that panic=abort never
//! reaches (docs: /work/shared/toolchain.md §2.5).

use core::arch::global_asm;

global_asm!(
    r#"
.section .text.memcpy, "ax"
.globl memcpy
memcpy:
    movq %rdi, %rax
    movq %rdx, %rcx
    rep movsb
    ret

.section .text.memmove, "ax"
.globl memmove
memmove:
    movq %rdi, %rax
    movq %rdx, %rcx
    cmpq %rsi, %rdi
    jbe 1f
    leaq -1(%rsi,%rdx), %rsi
    leaq -1(%rdi,%rdx), %rdi
    std
    rep movsb
    cld
    ret
1:  rep movsb
    ret

.section .text.memset, "ax"
.globl memset
memset:
    movq %rdi, %r9
    movl %esi, %eax
    movq %rdx, %rcx
    rep stosb
    movq %r9, %rax
    ret

.section .text.memcmp, "ax"
.globl memcmp
.globl bcmp
memcmp:
bcmp:
    xorl %eax, %eax
    movq %rdx, %rcx
    testq %rcx, %rcx
    jz 2f
    repe cmpsb
    je 2f
    movzbl -1(%rdi), %eax
    movzbl -1(%rsi), %ecx
    subl %ecx, %eax
2:  ret
"#,
    options(att_syntax)
);

/// Landing pads of the precompiled `core` reference this; with
/// panic=abort nothing ever unwinds.
#[unsafe(no_mangle)]
pub extern "C" fn _Unwind_Resume() -> ! {
    crate::fatal("unwinding is not supported")
}

/// Referenced by `.eh_frame` CIEs of the precompiled `core`; never called.
#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() {}
