//! SQL, one module per table (group). Handlers never write SQL.

pub mod agents;
pub mod api_keys;
pub mod channels;
pub mod invitations;
pub mod members;
pub mod orgs;
pub mod sessions;
pub mod sign_in_limits;
pub mod users;
