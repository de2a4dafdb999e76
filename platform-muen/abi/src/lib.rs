//! The binary interface of a Muen native subject, as used by Solo5/MirageOS
//! unikernels and by the unipi-rs subject and minimal kernel.
//!
//! The specification is `docs/muen-abi.md`; section numbers (§) below refer
//! to it. Everything is little-endian x86-64, `no_std`, and needs no heap.
//!
//! Modules:
//!
//! * [`sinfo`] — the subject info page (§2.1–§2.3): typed read-only view
//!   ([`sinfo::Sinfo`]) and a builder ([`sinfo::SinfoWriter`]).
//! * [`sched`] — scheduling info page (§2.4) and timed event page (§2.6).
//! * [`time`] — the `time_info` page (§2.5) and Solo5's coarse monotonic clock.
//! * [`channel`] — SHMStream v2 channels (§4): [`channel::Writer`] and
//!   [`channel::Reader`] over a raw [`channel::ChannelMemory`].
//! * [`debuglog`] — the debuglog protocol (§5.3): line-splitting writer and a
//!   line-reassembling reader.
//! * [`muennet`] — the muennet Ethernet protocol (§5.2), plus a smoltcp
//!   `phy::Device` with the `smoltcp` feature.
//! * [`bootinfo`] — the Solo5 boot info page at `0x1000` (§6.1).
//!
//! # Safety model
//!
//! `unsafe` is confined to the raw views of shared memory: [`channel::ChannelMemory`]
//! and the page views in [`sched`] and [`time`]. Everything else is safe code over
//! byte slices that validates untrusted input and never panics on it. Shared
//! memory written by another CPU or domain is never accessed through Rust
//! references: header words are accessed as `AtomicU64`, element data with
//! volatile copies, in the order given by §4.4.
//!
//! # API notes
//!
//! What the API does beyond a plain transcription of the layouts in
//! `docs/muen-abi.md` (whose "*Here:*" paragraphs say where the behaviour
//! differs from Muen and Solo5):
//!
//! * `sinfo::MemoryKind::to_raw(self, Version)` returns `Option<u8>`:
//!   `SubjectDeviceTree` has no number in sinfo v03.
//! * `sinfo::Sinfo::resources()` returns the nameable iterator type
//!   `sinfo::Resources<'a>` (an `Iterator<Item = Result<Resource<'a>, SinfoError>>`).
//! * Resource names must be valid UTF-8 without NUL (≤ 63 bytes); otherwise the record is
//!   reported as `SinfoError::BadName` (lookups by name compare raw bytes and
//!   simply do not match such records).
//! * Besides parsing and building, sinfo offers `Sinfo::from_ptr`, `Sinfo::find`,
//!   `Sinfo::resource_count`, `sinfo::patch_tsc_khz` and
//!   `SinfoWriter::{device, dev_mem, dev_port, resource}`.
//! * `sched::SchedulingInfo::encode`, `sched::TimedEvent::encode` and
//!   `time::TimeInfo::encode` panic if `out` is shorter than the record
//!   (a programming error, like `copy_from_slice`); `to_bytes()` variants exist.
//!   `sched::TimedEventPage` and `time::wall_clock_ns` complete the page types.
//! * `channel::ChannelError` also covers `ZeroElementSize`, `DataTooLarge`,
//!   `BadParts` and `Inactive`. `Writer::write`/`write_at` on a
//!   deactivated writer return `Err(Inactive)`. `Writer::restart(0)` is the same
//!   as `deactivate()`. `write_at` parts must be in increasing offset order and
//!   must not overlap (else `BadParts`).
//! * `channel::Reader::has_pending_data` returns `true` when a new compatible
//!   epoch is waiting to be synchronised (so a poll loop calls `read`, which
//!   reports `EpochChanged`); it never synchronises itself.
//! * `muennet::FrameError::Channel(ChannelError)` reports a refused write
//!   (e.g. the writer was deactivated). `muennet::NetReader` also has
//!   `lost_elements()` and `epoch()`.
//! * `debuglog::LogReader` also has `take_partial()` (flush an unterminated
//!   line, e.g. when the subject stopped) and `last_timestamp()`.
//! * `muennet::MuennetDevice` transmits through a 1514-byte scratch buffer inside
//!   the device (no heap allocation, one copy) instead of handing smoltcp a
//!   `&mut [u8]` into the channel slot: a Rust reference into memory that a
//!   peer reads concurrently is not allowed by the safety model above.
//! * Accessors without behaviour of their own: `SchedInfoPage::{start, end}`,
//!   `SchedInfoWriter::read`, `Writer::{protocol, write_count, memory, header}`,
//!   `Reader::{read_count, element_size, memory, header}`, `ChannelMemory::{base,
//!   is_empty}`, `LogWriter::{buffered, inner, inner_mut}`, `NetWriter::deactivate`,
//!   `NetReader::{drain, inner}`, `MuennetDevice::{has_pending, reader, writer,
//!   writer_mut, into_parts}`, `MonotonicClock::{tsc_hz, min_delta, current_tsc,
//!   tsc_to_ns}`, layout offset constants in each module.
//! * `ChannelMemory`, `SchedInfoPage` and `TimeInfoPage` are `Send + Sync`;
//!   `Writer`, `Reader` and the writer-side page views are `Send`.
//! * The `smoltcp` feature enables smoltcp's `proto-ipv4` and `socket-tcp` in
//!   addition to `medium-ethernet`: smoltcp 0.14 does not compile without an
//!   IP version and a socket type (unipi-rs enables them anyway).
//! * `bootinfo::parse` accepts any command-line pointer whose page offset is 40
//!   (Muen writes boot-info VA + 40; the mugensolo5 test vector has `0x28`) and
//!   always reads the command line at offset 40. Non-UTF-8 command lines are an
//!   error (`BootInfoError::BadUtf8`).

#![no_std]
#![warn(missing_docs)]

#[cfg(test)]
extern crate std;

mod bytes;
#[cfg(test)]
mod test_util;

pub mod bootinfo;
pub mod channel;
pub mod debuglog;
pub mod muennet;
pub mod sched;
pub mod sinfo;
pub mod time;
