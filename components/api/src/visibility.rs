//! What a caller may see of an org's threads, and so of their messages,
//! runs, events and approvals: owners, admins and API keys see every
//! thread; other members see the threads of channels they belong to. The
//! one loader for both threads and approvals.

use std::collections::HashMap;

use synatra_authz::Role;

use crate::ctx::OrgCtx;
use crate::error::ApiResult;
use crate::store::channels;

/// The caller's view of one org.
pub struct Visibility {
    /// Sees every thread of the org.
    all: bool,
    /// The signed-in user, if the caller is one (API keys are not).
    user_id: Option<String>,
    /// The user's channels and their role in each.
    channel_roles: HashMap<String, String>,
}

impl Visibility {
    /// Loads the caller's view: one query for a signed-in user below admin,
    /// none for those who see all (their channel roles decide nothing:
    /// org owners and admins may do what a channel owner may).
    pub fn of(ctx: &OrgCtx) -> ApiResult<Self> {
        let user_id = ctx.principal()?.user_id().ok().map(str::to_string);
        let all = ctx.org.role >= Role::Admin || user_id.is_none();
        let channel_roles = match &user_id {
            Some(user) if !all => channels::roles_of(ctx.db, user)?,
            _ => HashMap::new(),
        };
        Ok(Self {
            all,
            user_id,
            channel_roles,
        })
    }

    /// Whether the caller sees a thread in `channel` (a thread whose channel
    /// was deleted is seen only by those who see all).
    pub fn sees(&self, channel: Option<&str>) -> bool {
        self.all || self.channel_role(channel).is_some()
    }

    /// The caller's role in `channel`, if they belong to it.
    pub fn channel_role(&self, channel: Option<&str>) -> Option<&str> {
        self.channel_roles.get(channel?).map(String::as_str)
    }

    /// The signed-in user, if any.
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// For listings: the channels the caller is limited to (None: all).
    pub fn channels(&self) -> Option<Vec<&str>> {
        (!self.all).then(|| self.channel_roles.keys().map(String::as_str).collect())
    }
}
