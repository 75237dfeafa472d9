//! Synatra's Spin-compatible host: reads `spin.toml`, compiles the
//! components once, and serves each HTTP request on a fresh, limited
//! instance with only the capabilities the manifest grants.

pub mod allowed_hosts;
pub mod app;
mod bindings;
pub mod database;
pub mod dispatcher;
pub mod engine;
pub mod factors;
pub mod instance;
pub mod manifest;
pub mod metrics;
pub mod router;
pub mod server;
pub mod wit_tools;
