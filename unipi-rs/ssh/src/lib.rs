//! A sans-IO SSH client transport for `no_std` + `alloc`, built on [sunset]: it runs one
//! command on a server (for Git, `git-upload-pack '<path>'`) and carries its stdin and
//! stdout.
//!
//! It sits where TLS sits for `https://` remotes (see `unipi-rs/src/tls.rs`): TCP bytes from
//! the server go in with [`SshClient::receive`], bytes for the server come out of
//! [`SshClient::output`]; the command's stdout comes out of [`SshClient::stdout`] and its
//! stdin goes in with [`SshClient::write_stdin`]. [`SshClient`] documents the driving
//! protocol.
//!
//! * Host key: pinned by its SHA-256 fingerprint ([`parse_authenticator`], Unipi's
//!   `--ssh-authenticator=SHA256:...`); a mismatch ends the session during key exchange,
//!   before the client key is offered, with [`Error::HostKeyMismatch`] naming both
//!   fingerprints. Without a pin any key is accepted and reported
//!   ([`Event::HostKey`]): trust on first use without persistence.
//! * Client key: Ed25519 only ([`parse_ssh_key`] for `--ssh-key=ed25519:<base64 seed>`,
//!   [`parse_openssh_private_key`] for an `ssh-keygen` key file). Unipi's `rsa:<seed>` is
//!   refused: sunset signs with RSA only with `std`.
//! * Algorithms (sunset's): curve25519-sha256 key exchange (and mlkem768x25519-sha256 with
//!   the `mlkem` feature), ssh-ed25519 host keys, chacha20-poly1305 or aes256-ctr with
//!   hmac-sha256, strict key exchange.
//! * `env` requests (`GIT_PROTOCOL=version=2`) are **not sent**: sunset 0.6 has no
//!   client-side `env` request, so Git over this transport speaks protocol v0, as it does
//!   with OpenSSH servers that do not accept the variable ([`Config::env`]).
//!
//! # Entropy
//!
//! sunset draws its random bytes (key-exchange secrets, KEXINIT cookie, packet padding)
//! itself through the `getrandom` 0.4 crate (`getrandom::fill` and `SysRng`); it has no
//! parameter for a generator, so the driver supplies entropy by choosing getrandom's
//! backend when the binary is built. On the host that is the OS. On the unikernel's
//! linux-gnu target the default backend looks `getrandom` up with `dlsym`, which a
//! freestanding binary does not have; set one of
//!
//! * `RUSTFLAGS='--cfg getrandom_backend="custom"'` and define
//!   `unsafe extern "Rust" fn __getrandom_v03_custom(dest: *mut u8, len: usize) ->
//!   Result<(), getrandom::Error>` (`#[unsafe(no_mangle)]`) in the binary, filling `dest`
//!   with `muen_baremetal::cpu::fill_random` (checked: `unipi.muen` built this way links);
//! * or `--cfg getrandom_backend="linux_getrandom"`: getrandom calls the C function
//!   `getrandom(buf, len, flags)`, which the runtime would define next to the `syscall`
//!   shim it has for ring's getrandom 0.2 (`platform-muen/baremetal/src/shims.rs`).
//!
//! Either must fill the buffer from the platform's entropy source and fail only when it has
//! none: sunset turns a failure into a panic (`UnwrapErr`) where it generates keys.
//!
//! # Memory, code size, time
//!
//! One session holds sunset's [`Runner`](sunset::Runner) (about 4 KiB, boxed) with its two
//! packet buffers (35 000 bytes each, boxed), this crate's [`SshClient`] (about 0.4 KiB),
//! the stdout buffer (at most [`Limits::max_stdout_buffer`], 64 KiB by default) and the
//! stderr tail (1 KiB): about 75 KiB plus buffered stdout. Linked into `unipi.muen` (release
//! profile, `opt-level = "s"`, fat LTO, custom getrandom backend), one driven session adds
//! 240 KB of code and 24 KB of data, of which the `mlkem` feature is 14 KB of code
//! (measured with `size` on the stripped binary).
//!
//! sunset's channel window is fixed at 1000 bytes (`sunset::config::DEFAULT_WINDOW`), so
//! the server has at most 1000 bytes of stdout in flight: throughput is about 1000 bytes
//! per round trip: measured 2.7 MiB/s over local pipes, so about 100 KB/s on a 10 ms path
//! (estimate). A multi-megabyte site over a distant ssh remote takes minutes.
//! Nothing here reads a clock: timeouts are the driver's ([`SshClient::timeout`]).
//!
//! [sunset]: https://docs.rs/sunset
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;
#[cfg(test)]
extern crate std;

mod client;
mod error;
mod fingerprint;
mod keys;

pub use client::{Config, Event, ExitStatus, Limits, SshClient};
pub use error::{Error, ParamError, Phase};
pub use fingerprint::{Fingerprint, parse_authenticator};
pub use keys::{Ed25519Key, MAX_KEY_FILE_BYTES, parse_openssh_private_key, parse_ssh_key};
