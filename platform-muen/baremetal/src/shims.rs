//! The C symbols a freestanding binary on the linux-gnu target must provide
//! (docs/toolchain.md §2.5): `compiler_builtins` for this target is built
//! without its `mem` feature, ring's C code calls `memcpy` & co., getrandom
//! 0.2 calls `syscall(SYS_getrandom)` and reads `errno`, and the precompiled
//! `core` refers to the unwinder even with `panic = "abort"`.
//!
//! The memory functions are written in assembly on purpose: LLVM turns
//! byte loops written in Rust back into calls to `memcpy` (infinite
//! recursion). They use `rep movsq`/`rep stosq` for the bulk, which is also
//! much faster under QEMU's TCG than byte moves.

use core::arch::global_asm;
use core::sync::atomic::{AtomicI32, Ordering};

global_asm!(
    ".pushsection .text.memcpy,\"ax\",@progbits",
    ".globl memcpy",
    ".type memcpy,@function",
    "memcpy:",
    "    mov rax, rdi",
    "    mov rcx, rdx",
    "    shr rcx, 3",
    "    rep movsq",
    "    mov rcx, rdx",
    "    and rcx, 7",
    "    rep movsb",
    "    ret",
    ".size memcpy, . - memcpy",
    "",
    ".globl memmove",
    ".type memmove,@function",
    "memmove:",
    "    mov rax, rdi",
    "    mov rcx, rdx",
    "    mov r8, rdi",
    "    sub r8, rsi", // dst - src (unsigned): >= n means no harmful overlap
    "    cmp r8, rdx",
    "    jb 2f",
    "    shr rcx, 3",
    "    rep movsq",
    "    mov rcx, rdx",
    "    and rcx, 7",
    "    rep movsb",
    "    ret",
    "2:", // dst inside (src, src+n): copy backwards
    "    lea rsi, [rsi + rcx - 1]",
    "    lea rdi, [rdi + rcx - 1]",
    "    std",
    "    rep movsb",
    "    cld",
    "    ret",
    ".size memmove, . - memmove",
    "",
    ".globl memset",
    ".type memset,@function",
    "memset:",
    "    mov r8, rdi",
    "    movzx eax, sil",
    "    mov r9, 0x0101010101010101",
    "    imul rax, r9",
    "    mov rcx, rdx",
    "    shr rcx, 3",
    "    rep stosq",
    "    mov rcx, rdx",
    "    and rcx, 7",
    "    rep stosb",
    "    mov rax, r8",
    "    ret",
    ".size memset, . - memset",
    "",
    ".globl memcmp",
    ".type memcmp,@function",
    ".globl bcmp",
    ".type bcmp,@function",
    "memcmp:",
    "bcmp:",
    "    mov rcx, rdx",
    "    xor eax, eax",
    "    test rcx, rcx",
    "    jz 3f",
    "    repe cmpsb",
    "    je 3f",
    "    movzx eax, byte ptr [rdi - 1]",
    "    movzx ecx, byte ptr [rsi - 1]",
    "    sub eax, ecx",
    "3:",
    "    ret",
    ".size memcmp, . - memcmp",
    ".popsection",
);

static ERRNO: AtomicI32 = AtomicI32::new(0);

const SYS_GETRANDOM: i64 = 318;
const ENOSYS: i32 = 38;
const EIO: i32 = 5;

/// `long syscall(long nr, ...)`: only `getrandom(buf, len, flags)` exists,
/// served from RDSEED/RDRAND. The variadic C call passes integer arguments
/// exactly like this non-variadic signature in the SysV ABI.
///
/// # Safety
/// For `SYS_GETRANDOM`, `a1` must point to `a2` writable bytes (what
/// getrandom's contract with the kernel already requires).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn syscall(
    nr: i64,
    a1: i64,
    a2: i64,
    _a3: i64,
    _a4: i64,
    _a5: i64,
    _a6: i64,
) -> i64 {
    if nr != SYS_GETRANDOM {
        ERRNO.store(ENOSYS, Ordering::Relaxed);
        return -1;
    }
    let len = a2 as usize;
    // SAFETY: the caller (getrandom) passes a buffer of `len` writable bytes.
    let buf = unsafe { core::slice::from_raw_parts_mut(a1 as *mut u8, len) };
    if crate::cpu::fill_random(buf) {
        len as i64
    } else {
        ERRNO.store(EIO, Ordering::Relaxed);
        -1
    }
}

/// `int *__errno_location(void)`: one global errno (no threads, no TLS).
#[unsafe(no_mangle)]
pub extern "C" fn __errno_location() -> *mut i32 {
    ERRNO.as_ptr()
}

/// Landing pads of the precompiled `core` call this; with `panic = "abort"`
/// nothing ever unwinds, so reaching it is a bug.
#[unsafe(no_mangle)]
pub extern "C" fn _Unwind_Resume() -> ! {
    crate::cpu::com1_write(b"FATAL: _Unwind_Resume called (unwinding is not supported)\n");
    loop {
        crate::cpu::pause();
    }
}

/// Referenced by the `.eh_frame` of the precompiled `core` (discarded at
/// link time); never called.
#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() {}
