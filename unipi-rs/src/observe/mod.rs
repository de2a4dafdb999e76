//! Observability: the access log, logs off the box (syslog) and metrics.
pub mod access;
pub mod syslog;
pub mod time;
