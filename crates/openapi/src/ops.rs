//! Each route's summary, request body and success response. The match is
//! exhaustive: a route added to the table without its description does not
//! compile, so the document always covers the whole API.

use serde_json::{json, Value};
use synatra_authz::RouteId;

use crate::schemas::{
    any_object, body, boolean, integer, list, nullable_string, object, refer, string,
};

/// What the document says of one operation.
pub struct Op {
    pub summary: &'static str,
    /// The JSON request body, if the route takes one.
    pub request: Option<Value>,
    /// Success status and its JSON body (None: no body, or not JSON).
    pub status: u16,
    pub response: Option<Value>,
    /// Error codes particular to this route (beyond the common ones).
    pub errors: &'static [(u16, &'static str)],
    /// Other successful answers: status, what it means, its JSON body.
    pub also: Vec<(u16, &'static str, Value)>,
}

fn op(summary: &'static str, status: u16, response: Value) -> Op {
    Op {
        summary,
        request: None,
        status,
        response: Some(response),
        errors: &[],
        also: Vec::new(),
    }
}

fn none(summary: &'static str, status: u16) -> Op {
    Op {
        summary,
        request: None,
        status,
        response: None,
        errors: &[],
        also: Vec::new(),
    }
}

impl Op {
    fn with(mut self, request: Value) -> Self {
        self.request = Some(request);
        self
    }

    fn also(mut self, status: u16, meaning: &'static str, body: Value) -> Self {
        self.also.push((status, meaning, body));
        self
    }

    fn errors(mut self, errors: &'static [(u16, &'static str)]) -> Self {
        self.errors = errors;
        self
    }
}

fn role() -> Value {
    json!({ "type": "string", "enum": ["owner", "admin", "builder", "member"] })
}

/// The description of `route`.
pub fn describe(route: RouteId) -> Op {
    use RouteId::*;
    let s = string;
    match route {
        Health => op(
            "Whether the API and its database answer",
            200,
            object(&[("status", s()), ("database", s())]),
        )
        .also(
            503,
            "the database does not answer",
            object(&[("status", s()), ("database", s())]),
        ),
        OpenApi => op("This document", 200, any_object()),
        ApiReference => none("The API reference as a readable page (HTML)", 200),
        Tick => op(
            "Advance due runs where no dispatcher runs (the operator's scheduler)",
            200,
            object(&[("advanced", integer())]),
        )
        .errors(&[(403, "tick_disabled")]),
        Signup => op(
            "Create an account and sign in (sets the session cookie)",
            201,
            object(&[("user", refer("User"))]),
        )
        .with(body(
            &[("email", s()), ("password", s()), ("name", s())],
            &[],
        ))
        .errors(&[(409, "email_taken"), (429, "rate_limited")]),
        Login => op(
            "Sign in (sets the session cookie)",
            200,
            object(&[("user", refer("User"))]),
        )
        .with(body(&[("email", s()), ("password", s())], &[]))
        .errors(&[(401, "invalid_credentials"), (429, "rate_limited")]),
        Logout => none("End the session", 204).errors(&[(403, "api_key_not_allowed")]),
        Me => op(
            "The caller: a user with their orgs, or an API key",
            200,
            any_object(),
        ),
        CreateOrg => op(
            "Create an org; the caller becomes its owner",
            201,
            refer("Org"),
        )
        .with(body(&[("name", s()), ("slug", s())], &[]))
        .errors(&[(403, "api_key_not_allowed"), (409, "slug_taken")]),
        ListOrgs => op("The caller's orgs", 200, list("orgs", refer("Org"), false)),
        GetOrg => op("One org, by slug or id", 200, refer("Org")),
        DeleteOrg => none("Delete the org and everything in it", 204),
        ListEnvironments => op(
            "The org's environments",
            200,
            list("environments", refer("Environment"), false),
        ),
        ListChannels => op(
            "The channels the caller sees",
            200,
            list("channels", refer("Channel"), false),
        ),
        CreateChannel => op(
            "Create a channel; the creator owns it",
            201,
            refer("Channel"),
        )
        .with(body(&[("slug", s()), ("name", s())], &[]))
        .errors(&[(409, "slug_taken")]),
        ListChannelMembers => op(
            "A channel's members",
            200,
            list("members", refer("Member"), false),
        ),
        PutChannelMember => op(
            "Add an org member to a channel or change their channel role",
            200,
            any_object(),
        )
        .with(body(
            &[(
                "role",
                json!({ "type": "string", "enum": ["owner", "member"] }),
            )],
            &[],
        )),
        RemoveChannelMember => none("Remove someone from a channel", 204),
        ListMembers => op(
            "The org's members",
            200,
            list("members", refer("Member"), false),
        ),
        UpdateMember => op("Change a member's role", 200, refer("Member"))
            .with(body(&[("role", role())], &[]))
            .errors(&[(409, "last_owner")]),
        RemoveMember => none("Remove a member", 204).errors(&[(409, "last_owner")]),
        CreateInvitation => op(
            "Invite someone by email (the token is shown once)",
            201,
            refer("Invitation"),
        )
        .with(body(&[("email", s()), ("role", role())], &[]))
        .errors(&[(403, "api_key_not_allowed"), (409, "already_member")]),
        ListInvitations => op(
            "Pending invitations",
            200,
            list("invitations", refer("Invitation"), false),
        ),
        RevokeInvitation => none("Revoke an invitation", 204),
        AcceptInvitation => op("Join the org of an invitation", 200, refer("Org"))
            .errors(&[
                (403, "api_key_not_allowed"),
                (403, "invitation_email_mismatch"),
                (404, "not_found"),
                (409, "invitation_used"),
                (409, "already_member"),
                (410, "invitation_expired"),
            ]),
        CreateApiKey => op(
            "Mint an API key (the token is shown once)",
            201,
            refer("ApiKey"),
        )
        .with(body(&[("name", s()), ("role", role())], &[]))
        .errors(&[(403, "api_key_not_allowed")]),
        ListApiKeys => op(
            "Active API keys",
            200,
            list("api_keys", refer("ApiKey"), false),
        ),
        DeleteApiKey => none("Revoke an API key", 204),
        CreateAgent => op("Create an agent", 201, refer("Agent"))
            .with(body(
                &[("slug", s()), ("name", s())],
                &[
                    ("description", nullable_string()),
                    ("icon", nullable_string()),
                ],
            ))
            .errors(&[(409, "slug_taken")]),
        ListAgents => op(
            "The org's agents (archived ones left out)",
            200,
            list("agents", refer("Agent"), false),
        ),
        GetAgent => op("One agent, by slug or id", 200, refer("Agent")),
        UpdateAgent => op("Rename, re-slug or describe an agent", 200, refer("Agent")).with(body(
            &[],
            &[
                ("slug", s()),
                ("name", s()),
                ("description", nullable_string()),
                ("icon", nullable_string()),
            ],
        )),
        DeleteAgent => none("Delete an agent no thread names", 204)
            .also(
                200,
                "An agent with threads is archived instead (hidden from lists; its threads stay readable)",
                refer("Agent"),
            )
            .errors(&[(409, "agent_in_use")]),
        GetWorkingCopy => op("The agent's working copy", 200, refer("WorkingCopy")),
        PutWorkingCopy => op(
            "Replace the working copy (validated, defaults filled in)",
            200,
            refer("WorkingCopy"),
        )
        .with(body(&[("config", any_object())], &[])),
        CreateRelease => op(
            "Publish the working copy as an immutable release",
            201,
            refer("Release"),
        )
        .with(body(
            &[(
                "bump",
                json!({ "type": "string", "enum": ["major", "minor", "patch"] }),
            )],
            &[("notes", s())],
        ))
        .errors(&[(409, "agent_archived")]),
        ListReleases => op(
            "The agent's releases, newest first",
            200,
            list("releases", refer("Release"), false),
        ),
        CheckoutRelease => op(
            "Copy a release into the working copy",
            200,
            refer("WorkingCopy"),
        ),
        CreateThread => op(
            "Start a thread: its first run begins",
            201,
            object(&[("thread", refer("Thread")), ("run_id", s())]),
        )
        .with(body(
            &[("agent", s()), ("message", s())],
            &[
                ("channel", s()),
                ("environment", s()),
                ("subject", s()),
                (
                    "kind",
                    json!({ "type": "string", "enum": ["normal", "playground"] }),
                ),
            ],
        ))
        .errors(&[(409, "agent_archived"), (409, "agent_not_released")]),
        ListThreads => op(
            "Threads, newest first (?status=&agent=&channel=&limit=&after=)",
            200,
            list("threads", refer("Thread"), true),
        ),
        GetThread => op(
            "A thread with a page of its messages (?limit=&after=) and its runs",
            200,
            refer("ThreadDetail"),
        ),
        PostMessage => op(
            "Continue a finished thread: a new run begins",
            201,
            object(&[("run_id", s())]),
        )
        .with(body(&[("message", s())], &[]))
        .also(
            202,
            "The run was waiting for a person's answer: the request is skipped and the run goes on with the message",
            object(&[("skipped_request", boolean())]),
        )
        .errors(&[
            (409, "run_in_progress"),
            (409, "agent_archived"),
            (409, "agent_not_released"),
        ]),
        CancelThread => op(
            "Cancel the thread's unfinished runs (and their sub-agents)",
            202,
            object(&[("cancelled_runs", integer())]),
        ),
        ThreadEvents => none(
            "Server-Sent Events of the thread (?after=, ?follow=true; Last-Event-ID)",
            200,
        )
        .errors(&[(429, "org_limit_reached")]),
        RespondHumanRequest => op(
            "Answer a person's request; the run resumes",
            200,
            object(&[("request_id", s()), ("status", s())]),
        )
        .with(body(
            &[(
                "status",
                json!({ "type": "string", "enum": ["responded", "cancelled", "skipped"] }),
            )],
            &[("data", any_object())],
        ))
        .errors(&[(409, "request_not_pending")]),
        CreateTool => op("Create a JavaScript or WIT tool", 201, refer("Tool"))
            .with(any_object())
            .errors(&[(409, "name_taken"), (422, "invalid_component")]),
        ListTools => op("The org's tools", 200, list("tools", refer("Tool"), false)),
        GetTool => op(
            "One tool, by name or id (code for builders)",
            200,
            refer("Tool"),
        ),
        PutTool => op(
            "Replace a tool (a new version when the content changes)",
            200,
            refer("Tool"),
        )
        .with(any_object())
        .errors(&[
            (409, "tool_in_use"),
            (409, "name_taken"),
            (422, "invalid_component"),
        ]),
        DeleteTool => none("Delete a tool", 204).errors(&[(409, "tool_in_use")]),
        TestTool => op("Run the tool once in its sandbox", 200, refer("ToolTest"))
            .with(body(&[("params", any_object())], &[]))
            .errors(&[(429, "org_limit_reached"), (502, "sandbox_unreachable")]),
        PutToolComponent => op(
            "Upload a WIT tool's .wasm (application/wasm)",
            200,
            refer("Tool"),
        )
        .errors(&[
            (408, "body_timeout"),
            (413, "payload_too_large"),
            (415, "unsupported_media_type"),
            (422, "invalid_component"),
        ]),
        ListApprovals => op(
            "Approvals (?status=pending is your inbox; &limit=&after=)",
            200,
            list("approvals", refer("Approval"), true),
        ),
        GetApproval => op("One approval with its audit trail", 200, refer("Approval")),
        Approve => op(
            "Approve a held tool call (edited params for reviewed tools)",
            200,
            object(&[("id", s()), ("status", s())]),
        )
        .with(body(&[], &[("params", any_object()), ("comment", s())]))
        .errors(&[
            (403, "not_an_approver"),
            (409, "approval_not_pending"),
            (409, "approval_expired"),
            (409, "params_not_editable"),
        ]),
        Reject => op(
            "Reject a held tool call: the run ends rejected",
            200,
            object(&[("id", s()), ("status", s())]),
        )
        .with(body(&[], &[("comment", s())]))
        .errors(&[
            (403, "not_an_approver"),
            (409, "approval_not_pending"),
            (409, "approval_expired"),
        ]),
        ListLlmProviders => op(
            "The environment's provider credentials, masked",
            200,
            list("providers", refer("Credential"), false),
        ),
        PutLlmProvider => op(
            "Store a provider credential (sealed; never returned)",
            200,
            refer("Credential"),
        )
        .with(body(
            &[],
            &[
                ("api_key", nullable_string()),
                ("base_url", nullable_string()),
                (
                    "allowed_base_urls",
                    json!({ "type": "array", "items": string() }),
                ),
            ],
        ))
        .errors(&[(502, "gateway_error")]),
        DeleteLlmProvider => none("Remove a provider credential", 204),
    }
}
