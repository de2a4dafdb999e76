//! A sans-IO Git fetch client for `no_std` + `alloc`: it downloads one commit of a remote
//! repository (depth 1) and returns its files in memory.
//!
//! * Transports: `git://`, smart HTTP(S) (HTTP/1.1 framing is `unipi-httpwire`'s) and SSH
//!   (`ssh://`, `user@host:path`: the driver runs the command [`Io::ConnectSsh`] names); TCP,
//!   TLS and SSH themselves are the driver's job.
//! * Protocol v2 with fallback to v0/v1, side-band-64k, ofs-delta, shallow (`deepen 1`).
//! * Packs are parsed as a stream while they arrive; every object is hashed, the pack
//!   trailer verified, deltas fully validated.
//! * Incremental pulls: given the [`BaseObjects`] of the commit being served
//!   ([`Snapshot::base`] → [`FetchOptions::base`]) the request declares that commit as the
//!   client's shallow boundary and `have`, and accepts a thin pack; deltas against the base
//!   are resolved from it and unchanged trees and blobs are taken from it (shared, not
//!   copied). A server without shallow fetches or thin packs gets a full request; one that
//!   no longer knows the commit (a force push, pruned) sends everything, which works the
//!   same; an answer that lacks objects makes the fetch start over in full.
//! * `https://user:token@host/…` remotes (or [`FetchOptions::credentials`]) authenticate with
//!   HTTP Basic on every request to that origin and never beyond it; [`Credentials`] and
//!   [`Url`] print the secret as `***`.
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
//!
//! [`Snapshot::base`], kept by the caller for the next incremental pull, adds the commit and
//! tree objects and a 40-byte table entry per tree and blob; the blobs are the snapshot's.
//! For the 1000-file benchmark site (10 directories) that is 79,151 bytes: 11 trees and 1000
//! blobs (`tests/incremental.rs` prints it). An incremental pull holds only the objects it
//! receives; unchanged files keep sharing the allocations of the site being served.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

mod base;
mod credentials;
mod delta;
mod error;
mod fetch;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod hex;
mod inflate;
mod limits;
mod object;
mod oid;
mod pack;
mod pktline;
mod protocol;
mod session;
mod sideband;
mod smart_http;
mod snapshot;
mod url;

pub use base::BaseObjects;
pub use credentials::{Credentials, redact_credentials};
pub use error::Error;
pub use fetch::{
    Fetch, FetchOptions, FetchPhase, Io, Outcome, Progress, ProtocolChoice, SshCommand,
};
pub use limits::Limits;
pub use oid::{BlobHasher, ObjectId, blob_id};
pub use protocol::ProtocolVersion;
pub use snapshot::{File, FileKind, Snapshot, Stats, UnsafeName, check_name, is_safe_name};
pub use unipi_httpwire::ResponseError;
pub use url::{DEFAULT_SSH_USER, Scheme, Url};

/// Wire-level building blocks, exposed for tests and tools: pkt-line framing, side-band
/// demultiplexing, and the writers for pack entry and delta headers (the reader's inverses,
/// for building packs in tests).
pub mod wire {
    pub use crate::delta::write_header as write_delta_header;
    pub use crate::pack::{write_entry_header, write_ofs_offset};
    pub use crate::pktline::{
        MAX_PAYLOAD, Pkt, PktReader, decode, delim, encode, err_message, flush, trim_lf,
    };
    pub use crate::sideband::{Band, demux};
}
