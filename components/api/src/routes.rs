//! Each route's handler, body rule and run wake-up: the one place where a
//! route of [`synatra_authz::ROUTES`] (method, path, role) meets its code.
//! The match is exhaustive, so a route without a handler does not compile.

use synatra_authz::RouteId;

use crate::ctx::{Ctx, OrgCtx};
use crate::error::ApiResult;
use crate::handlers::*;
use crate::http::{BodyRule, Reply, MAX_BODY, MAX_UPLOAD_BODY};
use crate::inline_runs::Wake;

/// What serves a route.
#[derive(Clone, Copy)]
pub enum Handler {
    /// Needs no database and no caller (health).
    Bare(fn() -> Reply),
    /// Outside any org: public, signed-in or operator routes.
    Open(fn(&Ctx) -> ApiResult<Reply>),
    /// One org's route; the pipeline has resolved the org and the role.
    Org(fn(&OrgCtx) -> ApiResult<Reply>),
    /// One org's event stream.
    Stream(fn(&OrgCtx) -> ApiResult<events::Subscription>),
}

/// A route's handler and what the pipeline does around it.
#[derive(Clone, Copy)]
pub struct Endpoint {
    pub handler: Handler,
    /// Largest body and its media type (checked before anything else).
    pub body: BodyRule,
    /// Whether the request advances runs where no dispatcher does.
    pub wake: Option<Wake>,
}

const JSON: BodyRule = BodyRule {
    max: MAX_BODY,
    media_type: "application/json",
};

const UPLOAD: BodyRule = BodyRule {
    max: MAX_UPLOAD_BODY,
    media_type: "application/json",
};

const WASM: BodyRule = BodyRule {
    max: synatra_tools::component::MAX_COMPONENT_BYTES,
    media_type: "application/wasm",
};

impl Endpoint {
    const fn new(handler: Handler) -> Self {
        Self {
            handler,
            body: JSON,
            wake: None,
        }
    }

    const fn bare(f: fn() -> Reply) -> Self {
        Self::new(Handler::Bare(f))
    }

    const fn open(f: fn(&Ctx) -> ApiResult<Reply>) -> Self {
        Self::new(Handler::Open(f))
    }

    const fn org(f: fn(&OrgCtx) -> ApiResult<Reply>) -> Self {
        Self::new(Handler::Org(f))
    }

    const fn stream(f: fn(&OrgCtx) -> ApiResult<events::Subscription>) -> Self {
        Self::new(Handler::Stream(f))
    }

    const fn body(self, body: BodyRule) -> Self {
        Self { body, ..self }
    }

    const fn wakes(self, wake: Wake) -> Self {
        Self {
            wake: Some(wake),
            ..self
        }
    }
}

/// The endpoint serving `route`.
pub fn endpoint(route: RouteId) -> Endpoint {
    use Endpoint as E;
    use RouteId::*;
    use Wake::{AfterWrite, BeforeRead};
    match route {
        Health => E::bare(health::get),
        OpenApi => E::bare(reference::openapi),
        ApiReference => E::bare(reference::page),
        Tick => E::open(tick::run),
        Signup => E::open(account::signup),
        Login => E::open(account::login),
        Logout => E::open(account::logout),
        Me => E::open(account::me),
        CreateOrg => E::open(orgs::create),
        ListOrgs => E::open(orgs::list),
        GetOrg => E::org(orgs::get),
        DeleteOrg => E::org(orgs::delete),
        ListEnvironments => E::org(orgs::environments),
        ListChannels => E::org(orgs::channels),
        CreateChannel => E::org(channels::create),
        ListChannelMembers => E::org(channels::members),
        PutChannelMember => E::org(channels::put_member),
        RemoveChannelMember => E::org(channels::remove_member),
        ListMembers => E::org(members::list),
        UpdateMember => E::org(members::update),
        RemoveMember => E::org(members::remove),
        CreateInvitation => E::org(invitations::create),
        ListInvitations => E::org(invitations::list),
        RevokeInvitation => E::org(invitations::revoke),
        AcceptInvitation => E::open(invitations::accept),
        CreateApiKey => E::org(api_keys::create),
        ListApiKeys => E::org(api_keys::list),
        DeleteApiKey => E::org(api_keys::delete),
        CreateAgent => E::org(agents::create),
        ListAgents => E::org(agents::list),
        GetAgent => E::org(agents::get),
        UpdateAgent => E::org(agents::update),
        DeleteAgent => E::org(agents::delete),
        GetWorkingCopy => E::org(agents::get_working_copy),
        PutWorkingCopy => E::org(agents::put_working_copy),
        CreateRelease => E::org(agents::create_release),
        ListReleases => E::org(agents::list_releases),
        CheckoutRelease => E::org(agents::checkout_release),
        CreateThread => E::org(threads::create).wakes(AfterWrite),
        ListThreads => E::org(threads::list),
        GetThread => E::org(threads::get).wakes(BeforeRead),
        PostMessage => E::org(threads::post_message).wakes(AfterWrite),
        CancelThread => E::org(threads::cancel),
        ThreadEvents => E::stream(events::subscribe),
        RespondHumanRequest => E::org(threads::respond).wakes(AfterWrite),
        CreateTool => E::org(tools::create).body(UPLOAD),
        ListTools => E::org(tools::list),
        GetTool => E::org(tools::get),
        PutTool => E::org(tools::put).body(UPLOAD),
        DeleteTool => E::org(tools::delete),
        TestTool => E::org(tools::test),
        PutToolComponent => E::org(tools::put_component).body(WASM),
        ListApprovals => E::org(approvals::list),
        GetApproval => E::org(approvals::get),
        Approve => E::org(approvals::approve).wakes(AfterWrite),
        Reject => E::org(approvals::reject).wakes(AfterWrite),
        ListLlmProviders => E::org(llm_providers::list),
        PutLlmProvider => E::org(llm_providers::put),
        DeleteLlmProvider => E::org(llm_providers::delete),
    }
}
