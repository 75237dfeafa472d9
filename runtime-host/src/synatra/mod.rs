//! Synatra's own services, plugged into the generic host from `main.rs`:
//! the run dispatcher (drives the `agent-step` component through
//! [`App::dispatch`](crate::app::App::dispatch)) and the runner of users'
//! WIT tools (a [`HostService`](crate::app::HostService)). Nothing outside
//! this module knows Synatra's names.

pub mod dispatcher;
pub mod wit_tools;
