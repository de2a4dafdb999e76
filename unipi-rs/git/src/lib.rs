//! A sans-IO Git fetch client for `no_std` + `alloc`: it downloads one commit of a remote
//! repository (depth 1) and returns its files in memory.
//!
//! * Transports: `git://` and smart HTTP(S) (a minimal HTTP/1.1 client is built in; TLS and
//!   TCP are the driver's job).
//! * Protocol v2 with fallback to v0/v1, side-band-64k, ofs-delta, shallow (`deepen 1`).
//! * Packs are parsed as a stream while they arrive; every object is hashed, the pack
//!   trailer verified, deltas fully validated.
//! * Every input from the remote is hostile: nothing panics, and memory and work are bounded
//!   by explicit [`Limits`]; each violation is a specific [`Error`].
//!
//! Start with [`Url::parse`] and [`Fetch::new`], then drive [`Fetch::poll`] (see [`Fetch`]
//! for the driving protocol and an example).
//!
//! # Memory
//!
//! The pack is never held: bytes are parsed as they arrive, keeping at most one pkt-line
//! (64 KiB) plus the current input chunk, one zlib state (~43 KiB) and a 32-byte entry
//! header. Whole objects are inflated straight into their final shared allocation, whose size
//! the entry header announced; delta results likewise. While the pack streams in, every
//! object is kept (any later entry may use it as a delta base), so the peak is about the
//! inflated size of the fetched commit's tree (its distinct blobs, trees and the commit),
//! plus the entry being inflated and any REF_DELTA waiting for a base. After the walk only
//! the blobs of the [`Snapshot`] remain; files with the same content share one allocation.
//! [`Stats::peak_object_bytes`] reports the measured peak.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod delta;
mod error;
mod fetch;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod inflate;
mod limits;
mod object;
mod oid;
mod pack;
mod pktline;
mod protocol;
mod sideband;
mod snapshot;
mod url;

pub use error::Error;
pub use fetch::{Fetch, FetchOptions, Io, Outcome, Phase, Progress, ProtocolChoice};
pub use limits::Limits;
pub use object::ObjectKind;
pub use oid::ObjectId;
pub use protocol::ProtocolVersion;
pub use snapshot::{File, FileKind, Snapshot, Stats, is_safe_name};
pub use url::{Scheme, Url};

/// Wire-level building blocks, exposed for tests and tools: pkt-line framing and side-band
/// demultiplexing.
pub mod wire {
    pub use crate::pktline::{
        MAX_PAYLOAD, Pkt, PktReader, decode, delim, encode, err_message, flush, trim_lf,
    };
    pub use crate::sideband::{Band, demux};
}
