//! sipfront: a thread-per-core SIP load balancer.
//!
//! The library holds the sans-I/O protocol cores; the binary wires them to
//! sockets. See `docs/architecture.md` for the map.

pub mod admin;
pub mod app;
pub mod cli;
pub mod config;
pub mod dispatch;
pub mod nat;
pub mod proxy;
pub mod runtime;
pub use sipfront_sip as sip;
