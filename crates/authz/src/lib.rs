//! Who may call what. Every API route is declared once in [`ROUTES`] with its
//! [`Access`]; the API component dispatches only through this table (so a
//! route cannot exist without an access rule) and the RBAC matrix test walks
//! it.

use std::fmt;
use std::str::FromStr;

/// An organisation role, ordered from least to most privileged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Uses threads in channels they can access.
    Member,
    /// Creates and edits agents, tools, resources, prompts and triggers.
    Builder,
    /// Everything except deleting the org or making owners.
    Admin,
    /// Everything.
    Owner,
}

impl Role {
    /// All roles, least privileged first.
    pub const ALL: [Role; 4] = [Role::Member, Role::Builder, Role::Admin, Role::Owner];

    /// The role's name in the API and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Builder => "builder",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    /// Whether this role may grant `other` (to a member, invitation or API key):
    /// only owners grant ownership; nobody grants more than they have.
    pub fn may_grant(self, other: Role) -> bool {
        other <= self && (other != Role::Owner || self == Role::Owner)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or(UnknownRole)
    }
}

/// A string that is not one of `owner`, `admin`, `builder`, `member`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownRole;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not.
    Public,
    /// Any signed-in principal (session or API key).
    Authenticated,
    /// A member of the `:org` in the path with at least this role. Callers
    /// who are not members get 404, as if the org did not exist.
    Org(Role),
    /// The operator's schedulers (a cron job calling the tick): the
    /// `tick_secret` as `Authorization: Bearer`. No session or API key
    /// grants it.
    Operator,
}

/// Declares [`RouteId`] and [`ROUTES`] together, so every operation has
/// exactly one route and access rule, and every route names an operation.
macro_rules! routes {
    ($($id:ident => $method:literal $path:literal $access:expr;)*) => {
        /// Names of API operations; the component maps each to its handler
        /// with an exhaustive `match`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum RouteId {
            $($id,)*
        }

        /// Every route of the REST API (`/api/v1` prefix omitted).
        pub const ROUTES: &[RouteSpec] = &[
            $(RouteSpec { id: RouteId::$id, method: $method, path: $path, access: $access },)*
        ];
    };
}

/// One API route: method, path under `/api/v1` (`:name` segments), access.
#[derive(Debug, Clone, Copy)]
pub struct RouteSpec {
    pub id: RouteId,
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
}

use Access::{Authenticated, Operator, Org, Public};
use Role::{Admin, Builder, Member, Owner};

routes! {
    Health => "GET" "/health" Public;
    OpenApi => "GET" "/openapi.json" Public;
    ApiReference => "GET" "/docs" Public;
    Tick => "POST" "/tick" Operator;
    Signup => "POST" "/auth/signup" Public;
    Login => "POST" "/auth/login" Public;
    Logout => "POST" "/auth/logout" Authenticated;
    Me => "GET" "/me" Authenticated;
    CreateOrg => "POST" "/orgs" Authenticated;
    ListOrgs => "GET" "/orgs" Authenticated;
    GetOrg => "GET" "/orgs/:org" Org(Member);
    DeleteOrg => "DELETE" "/orgs/:org" Org(Owner);
    ListEnvironments => "GET" "/orgs/:org/environments" Org(Member);
    ListChannels => "GET" "/orgs/:org/channels" Org(Member);
    CreateChannel => "POST" "/orgs/:org/channels" Org(Admin);
    ListChannelMembers => "GET" "/orgs/:org/channels/:channel/members" Org(Member);
    PutChannelMember => "PUT" "/orgs/:org/channels/:channel/members/:user_id" Org(Admin);
    RemoveChannelMember => "DELETE" "/orgs/:org/channels/:channel/members/:user_id" Org(Admin);
    ListMembers => "GET" "/orgs/:org/members" Org(Member);
    UpdateMember => "PATCH" "/orgs/:org/members/:user_id" Org(Admin);
    RemoveMember => "DELETE" "/orgs/:org/members/:user_id" Org(Admin);
    CreateInvitation => "POST" "/orgs/:org/invitations" Org(Admin);
    ListInvitations => "GET" "/orgs/:org/invitations" Org(Admin);
    RevokeInvitation => "DELETE" "/orgs/:org/invitations/:invitation_id" Org(Admin);
    AcceptInvitation => "POST" "/invitations/:token/accept" Authenticated;
    CreateApiKey => "POST" "/orgs/:org/api-keys" Org(Admin);
    ListApiKeys => "GET" "/orgs/:org/api-keys" Org(Admin);
    DeleteApiKey => "DELETE" "/orgs/:org/api-keys/:key_id" Org(Admin);
    CreateAgent => "POST" "/orgs/:org/agents" Org(Builder);
    ListAgents => "GET" "/orgs/:org/agents" Org(Member);
    GetAgent => "GET" "/orgs/:org/agents/:agent" Org(Member);
    UpdateAgent => "PATCH" "/orgs/:org/agents/:agent" Org(Builder);
    DeleteAgent => "DELETE" "/orgs/:org/agents/:agent" Org(Builder);
    GetWorkingCopy => "GET" "/orgs/:org/agents/:agent/working-copy" Org(Builder);
    PutWorkingCopy => "PUT" "/orgs/:org/agents/:agent/working-copy" Org(Builder);
    CreateRelease => "POST" "/orgs/:org/agents/:agent/releases" Org(Builder);
    ListReleases => "GET" "/orgs/:org/agents/:agent/releases" Org(Member);
    CheckoutRelease => "POST" "/orgs/:org/agents/:agent/releases/:version/checkout" Org(Builder);
    CreateThread => "POST" "/orgs/:org/threads" Org(Member);
    ListThreads => "GET" "/orgs/:org/threads" Org(Member);
    GetThread => "GET" "/orgs/:org/threads/:thread" Org(Member);
    PostMessage => "POST" "/orgs/:org/threads/:thread/messages" Org(Member);
    CancelThread => "POST" "/orgs/:org/threads/:thread/cancel" Org(Member);
    ThreadEvents => "GET" "/orgs/:org/threads/:thread/events" Org(Member);
    RespondHumanRequest => "POST" "/orgs/:org/threads/:thread/human-requests/:request/respond" Org(Member);
    CreateTool => "POST" "/orgs/:org/tools" Org(Builder);
    ListTools => "GET" "/orgs/:org/tools" Org(Member);
    GetTool => "GET" "/orgs/:org/tools/:tool" Org(Member);
    PutTool => "PUT" "/orgs/:org/tools/:tool" Org(Builder);
    DeleteTool => "DELETE" "/orgs/:org/tools/:tool" Org(Builder);
    TestTool => "POST" "/orgs/:org/tools/:tool/test" Org(Builder);
    PutToolComponent => "PUT" "/orgs/:org/tools/:tool/component" Org(Builder);
    ListApprovals => "GET" "/orgs/:org/approvals" Org(Member);
    GetApproval => "GET" "/orgs/:org/approvals/:approval" Org(Member);
    Approve => "POST" "/orgs/:org/approvals/:approval/approve" Org(Member);
    Reject => "POST" "/orgs/:org/approvals/:approval/reject" Org(Member);
    ListLlmProviders => "GET" "/orgs/:org/environments/:env/llm-providers" Org(Admin);
    PutLlmProvider => "PUT" "/orgs/:org/environments/:env/llm-providers/:provider" Org(Admin);
    DeleteLlmProvider => "DELETE" "/orgs/:org/environments/:env/llm-providers/:provider" Org(Admin);
}

/// Someone who would decide on a tool call's approval.
#[derive(Debug, Clone, Copy)]
pub struct Approver<'a> {
    /// Their org role.
    pub role: Role,
    /// The user (None for an API key, which acts for the org and is not
    /// limited to channels).
    pub user_id: Option<&'a str>,
    /// The API key, when one is deciding.
    pub api_key_id: Option<&'a str>,
    /// Who created that key: for self-approval a key counts as its creator.
    pub api_key_creator: Option<&'a str>,
    /// Their role in the thread's channel (`owner` or `member`), if any.
    pub channel_role: Option<&'a str>,
}

/// Who asked for a call: the thread's author and whoever started the run
/// (a person or an API key, which counts as its creator too; they differ
/// when someone continues another person's thread).
#[derive(Debug, Clone, Copy, Default)]
pub struct Requesters<'a> {
    pub thread_author: Option<&'a str>,
    pub run_starter: Option<&'a str>,
    pub run_starter_key: Option<&'a str>,
    pub run_starter_key_creator: Option<&'a str>,
}

impl Requesters<'_> {
    fn include(&self, who: &Approver) -> bool {
        let people = [
            self.thread_author,
            self.run_starter,
            self.run_starter_key_creator,
        ];
        let person = [who.user_id, who.api_key_creator]
            .into_iter()
            .flatten()
            .any(|u| people.contains(&Some(u)));
        let key = who.api_key_id.is_some() && who.api_key_id == self.run_starter_key;
        person || key
    }
}

/// Whether `who` may approve or reject a call under the tool's `policy`
/// (`owner-only`: the channel's owner or an org owner/admin; `any-member`:
/// any member of the thread's channel) when `self_approval` decides whether
/// the call's requesters may. The error says why not.
pub fn may_decide_approval(
    policy: &str,
    self_approval: bool,
    requesters: &Requesters,
    who: &Approver,
) -> Result<(), &'static str> {
    if !self_approval && requesters.include(who) {
        return Err(
            "this tool does not let whoever started the thread or the run approve its calls",
        );
    }
    let org_wide = who.role >= Role::Admin;
    let allowed = match policy {
        "owner-only" => org_wide || who.channel_role == Some("owner"),
        "any-member" => org_wide || who.user_id.is_none() || who.channel_role.is_some(),
        _ => false,
    };
    if allowed {
        Ok(())
    } else if policy == "owner-only" {
        Err("only the channel's owner or an org owner or admin may decide on this tool's calls")
    } else {
        Err("only members of the thread's channel may decide on this tool's calls")
    }
}

/// Why a request matched no route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoRoute {
    NotFound,
    /// The path exists with these other methods.
    MethodNotAllowed(Vec<&'static str>),
}

/// The values of a route's `:name` segments, in order.
pub type PathParams<'p> = Vec<(&'static str, &'p str)>;

/// Finds the route for `method` and `path` (without `/api/v1`), with the
/// values of its `:name` segments.
pub fn match_route<'p>(
    method: &str,
    path: &'p str,
) -> Result<(&'static RouteSpec, PathParams<'p>), NoRoute> {
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let mut methods = Vec::new();
    for spec in ROUTES {
        if let Some(params) = match_path(spec.path, &parts) {
            if spec.method == method {
                return Ok((spec, params));
            }
            methods.push(spec.method);
        }
    }
    if methods.is_empty() {
        Err(NoRoute::NotFound)
    } else {
        Err(NoRoute::MethodNotAllowed(methods))
    }
}

fn match_path<'p>(
    pattern: &'static str,
    parts: &[&'p str],
) -> Option<Vec<(&'static str, &'p str)>> {
    let segments: Vec<&'static str> = pattern.split('/').filter(|s| !s.is_empty()).collect();
    if segments.len() != parts.len() {
        return None;
    }
    let mut params = Vec::new();
    for (seg, part) in segments.iter().zip(parts) {
        match seg.strip_prefix(':') {
            Some(name) => params.push((name, *part)),
            None if seg == part => {}
            None => return None,
        }
    }
    Some(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_with_params_and_report_other_methods() {
        let (spec, params) = match_route("PATCH", "/orgs/acme/members/u1").unwrap();
        assert_eq!(spec.id, RouteId::UpdateMember);
        assert_eq!(params, vec![("org", "acme"), ("user_id", "u1")]);
        assert!(matches!(
            match_route("GET", "/nope"),
            Err(NoRoute::NotFound)
        ));
        match match_route("PUT", "/orgs/acme") {
            Err(NoRoute::MethodNotAllowed(m)) => assert_eq!(m, vec!["GET", "DELETE"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_route_is_unique() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(
                    !(a.method == b.method && a.path == b.path),
                    "duplicate {} {}",
                    a.method,
                    a.path
                );
                assert_ne!(a.id, b.id);
            }
        }
    }

    #[test]
    fn approval_policies_and_self_approval() {
        let who = |role, user, channel_role| Approver {
            role,
            user_id: user,
            api_key_id: None,
            api_key_creator: None,
            channel_role,
        };
        let none = Requesters::default();
        let thread_by = |u| Requesters {
            thread_author: Some(u),
            ..Requesters::default()
        };
        let member = who(Role::Member, Some("u"), Some("member"));
        let outsider = who(Role::Builder, Some("u"), None);
        let channel_owner = who(Role::Member, Some("u"), Some("owner"));
        let admin = who(Role::Admin, Some("u"), None);
        let key = who(Role::Member, None, None);
        assert!(may_decide_approval("any-member", true, &none, &member).is_ok());
        assert!(may_decide_approval("any-member", true, &none, &outsider).is_err());
        assert!(may_decide_approval("any-member", true, &none, &key).is_ok());
        assert!(may_decide_approval("owner-only", true, &none, &member).is_err());
        assert!(may_decide_approval("owner-only", true, &none, &channel_owner).is_ok());
        assert!(may_decide_approval("owner-only", true, &none, &admin).is_ok());
        assert!(may_decide_approval("owner-only", true, &none, &key).is_err());
        // The thread's author, even an admin, is refused without self-approval.
        assert!(may_decide_approval("owner-only", false, &thread_by("u"), &admin).is_err());
        assert!(may_decide_approval("owner-only", false, &thread_by("v"), &admin).is_ok());
        // So is whoever continued the thread, and an API key that started the run.
        let continued = Requesters {
            thread_author: Some("v"),
            run_starter: Some("u"),
            ..Requesters::default()
        };
        assert!(may_decide_approval("any-member", false, &continued, &member).is_err());
        let by_key = Requesters {
            run_starter_key: Some("k"),
            ..Requesters::default()
        };
        let the_key = Approver {
            api_key_id: Some("k"),
            ..key
        };
        assert!(may_decide_approval("any-member", false, &by_key, &the_key).is_err());
        assert!(may_decide_approval("any-member", true, &by_key, &the_key).is_ok());
        // A key counts as its creator: their own key cannot approve what
        // they asked for, nor they what their key asked for.
        let keys_creator = Approver {
            api_key_id: Some("k2"),
            api_key_creator: Some("v"),
            ..key
        };
        assert!(may_decide_approval("any-member", false, &thread_by("v"), &keys_creator).is_err());
        assert!(may_decide_approval("any-member", false, &thread_by("w"), &keys_creator).is_ok());
        let by_vs_key = Requesters {
            run_starter_key: Some("k"),
            run_starter_key_creator: Some("u"),
            ..Requesters::default()
        };
        assert!(may_decide_approval("owner-only", false, &by_vs_key, &admin).is_err());
        assert!(may_decide_approval("owner-only", true, &by_vs_key, &admin).is_ok());
        assert!(may_decide_approval("auto-approve", true, &none, &admin).is_err());
    }

    #[test]
    fn only_owners_grant_ownership_and_nobody_grants_more_than_they_have() {
        assert!(Role::Owner.may_grant(Role::Owner));
        assert!(!Role::Admin.may_grant(Role::Owner));
        assert!(Role::Admin.may_grant(Role::Admin));
        assert!(!Role::Builder.may_grant(Role::Admin));
        assert!(Role::Member.may_grant(Role::Member));
        assert_eq!("builder".parse::<Role>(), Ok(Role::Builder));
        assert!("root".parse::<Role>().is_err());
    }
}
