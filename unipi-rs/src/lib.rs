//! unipi-rs: serve a static website fetched from a Git remote over HTTPS.
//!
//! This crate is the portable core of the unikernel: `no_std` + `alloc`,
//! `#![forbid(unsafe_code)]`, and no knowledge of Muen. It talks to the
//! machine through the small [`platform::Platform`] trait (clock, entropy, network device, memory
//! regions, log sink); `platform-muen/subject` implements it for a Muen
//! subject, and host tests implement it in memory.
//!
//! Data flow: boot parameters ([`config`]) → network ([`net`], smoltcp) →
//! site snapshot ([`site`], from Git or from a read-only archive region) →
//! TLS ([`tls`], rustls unbuffered) → HTTP/1.1 ([`http`]) → snapshot.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod app;
pub mod config;
pub mod fetch;
pub mod http;
pub mod net;
pub mod platform;
pub mod server;
pub mod site;
pub mod tls;

pub use app::run;
