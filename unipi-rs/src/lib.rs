//! unipi-rs: serve a static website fetched from a Git remote over HTTPS.
//!
//! This crate is the portable core of the unikernel: `no_std` + `alloc`,
//! `#![forbid(unsafe_code)]`, and no knowledge of Muen. It talks to the
//! machine through the small [`platform::Platform`] trait (clock, entropy, network device, memory
//! regions, log sink); `platform-muen/subject` implements it for a Muen
//! subject, and host tests implement it in memory.
//!
//! Data flow: boot parameters ([`config`]) → network ([`net`], smoltcp) →
//! site snapshot ([`site`], pulled from Git by [`pull`] or read from an
//! archive region) → connections ([`server`]) → [`transport`] (TCP, TLS by
//! [`tls`]) → HTTP ([`http`]) → snapshot. `docs/architecture.md` walks
//! through it with file and function names.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod acme;
pub mod app;
pub mod config;
pub mod http;
pub mod net;
pub mod observe;
pub mod platform;
pub mod pull;
pub mod server;
pub mod site;
pub mod tls;
pub mod transport;

pub use app::run;
