//! Host capabilities, one module per Spin interface. Each follows the same
//! shape: shared app state configured once from the manifest, per-instance
//! state built for every request, and the WIT `Host` trait implementation.

pub mod key_value;
pub mod outbound_http;
pub mod postgres;
pub mod variables;
