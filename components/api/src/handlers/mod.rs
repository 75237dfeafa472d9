//! Handlers, one module per resource. Each is reached only through the
//! route table in `routes.rs`.

pub mod account;
pub mod agents;
pub mod api_keys;
pub mod approvals;
pub mod channels;
pub mod events;
pub mod health;
pub mod invitations;
pub mod llm_providers;
pub mod members;
pub mod orgs;
pub mod reference;
pub mod threads;
pub mod tick;
pub mod tools;
