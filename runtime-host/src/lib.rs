//! Synatra's Spin-compatible host: reads `spin.toml`, compiles the
//! components once, and serves each HTTP request on a fresh, limited
//! instance with only the capabilities the manifest grants.

pub mod admission;
pub mod allowed_hosts;
pub mod app;
pub mod database;
pub mod engine;
pub mod factors;
mod in_process;
pub mod instance;
pub mod manifest;
pub mod metrics;
pub mod router;
pub mod server;
pub mod synatra;
