//! Organisations, members, invitations, role changes and API keys.

use serde_json::json;
use synatra_tests::{add_member, create_org, sign_up, start_app, User};

#[test]
fn org_creation_makes_owner_protected_environments_and_general_channel() {
    let host = start_app();
    let owner = sign_up(&host, "founder");
    let reply = owner.client.post(
        "/api/v1/orgs",
        json!({ "name": "Acme Inc", "slug": "acme" }),
    );
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    assert_eq!(reply.body["role"], "owner");
    let envs: Vec<(&str, bool)> = reply.body["environments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["slug"].as_str().unwrap(),
                e["protected"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(envs, vec![("production", true), ("staging", true)]);
    assert_eq!(reply.body["channels"][0]["slug"], "general");
    assert_eq!(reply.body["channels"][0]["is_default"], true);

    let id = reply.body["id"].as_str().unwrap();
    // A slug shaped like an id (here: this org's own) is refused, so a path
    // key never names one org by id and another by slug.
    let impostor = owner.client.post(
        "/api/v1/orgs",
        json!({ "name": "Impostor", "slug": reply.body["id"] }),
    );
    assert_eq!(impostor.status, 400, "{:?}", impostor.body);
    // The org is addressable by slug or id.
    assert_eq!(
        owner.client.get(&format!("/api/v1/orgs/{id}")).body["slug"],
        "acme"
    );
    assert_eq!(
        owner.client.get("/api/v1/orgs/acme/environments").body["environments"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let members = owner.client.get("/api/v1/orgs/acme/members");
    assert_eq!(members.body["members"][0]["user_id"], owner.id.as_str());
    assert_eq!(members.body["members"][0]["role"], "owner");
    assert_eq!(
        owner.client.get("/api/v1/orgs").body["orgs"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn org_slug_is_validated_and_unique() {
    let host = start_app();
    let owner = sign_up(&host, "slugger");
    let bad = owner
        .client
        .post("/api/v1/orgs", json!({ "name": "X", "slug": "Not A Slug" }));
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body["error"]["details"]["fields"][0]["field"], "slug");
    assert_eq!(
        owner
            .client
            .post("/api/v1/orgs", json!({ "name": "X", "slug": "taken" }))
            .status,
        201
    );
    let dup = owner
        .client
        .post("/api/v1/orgs", json!({ "name": "Y", "slug": "taken" }));
    assert_eq!((dup.status, dup.code()), (409, "slug_taken"));
    // Nothing half-written: still one org.
    assert_eq!(
        owner.client.get("/api/v1/orgs").body["orgs"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn foreign_org_answers_404_not_403() {
    let host = start_app();
    let a = sign_up(&host, "alice");
    let b = sign_up(&host, "bob");
    let org = create_org(&a, "private");
    for path in [
        format!("/api/v1/orgs/{org}"),
        format!("/api/v1/orgs/{org}/members"),
    ] {
        let r = b.client.get(&path);
        assert_eq!((r.status, r.code()), (404, "not_found"), "{path}");
    }
    assert_eq!(b.client.delete(&format!("/api/v1/orgs/{org}")).status, 404);
    assert_eq!(a.client.get(&format!("/api/v1/orgs/{org}")).status, 200);
}

#[test]
fn invitation_flow_accept_once_by_the_invited_email() {
    let host = start_app();
    let owner = sign_up(&host, "inviter");
    let org = create_org(&owner, "team");
    let invitee = sign_up(&host, "invitee");
    let stranger = sign_up(&host, "stranger");
    let inv = owner.client.post(
        &format!("/api/v1/orgs/{org}/invitations"),
        json!({ "email": invitee.email.to_uppercase(), "role": "builder" }),
    );
    assert_eq!(inv.status, 201, "{:?}", inv.body);
    let token = inv.body["token"].as_str().unwrap().to_string();
    assert!(inv.body["expires_at"].is_string());
    let pending = owner.client.get(&format!("/api/v1/orgs/{org}/invitations"));
    assert_eq!(pending.body["invitations"].as_array().unwrap().len(), 1);
    assert!(pending.body["invitations"][0].get("token").is_none());

    let wrong = stranger
        .client
        .post(&format!("/api/v1/invitations/{token}/accept"), json!({}));
    assert_eq!(
        (wrong.status, wrong.code()),
        (403, "invitation_email_mismatch")
    );
    let ok = invitee
        .client
        .post(&format!("/api/v1/invitations/{token}/accept"), json!({}));
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert_eq!(ok.body["role"], "builder");
    let again = invitee
        .client
        .post(&format!("/api/v1/invitations/{token}/accept"), json!({}));
    assert_eq!((again.status, again.code()), (409, "invitation_used"));
    let bogus = invitee
        .client
        .post("/api/v1/invitations/nope/accept", json!({}));
    assert_eq!(bogus.status, 404);
    assert_eq!(
        invitee.client.get(&format!("/api/v1/orgs/{org}")).body["role"],
        "builder"
    );
    // The new member joined the default channel's org and can list members.
    assert_eq!(
        invitee
            .client
            .get(&format!("/api/v1/orgs/{org}/members"))
            .body["members"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let dup = owner.client.post(
        &format!("/api/v1/orgs/{org}/invitations"),
        json!({ "email": invitee.email, "role": "member" }),
    );
    assert_eq!((dup.status, dup.code()), (409, "already_member"));
}

#[test]
fn revoked_invitation_cannot_be_accepted() {
    let host = start_app();
    let owner = sign_up(&host, "revoker");
    let org = create_org(&owner, "rev");
    let invitee = sign_up(&host, "late");
    let inv = owner.client.post(
        &format!("/api/v1/orgs/{org}/invitations"),
        json!({ "email": invitee.email, "role": "member" }),
    );
    let id = inv.body["id"].as_str().unwrap();
    assert_eq!(
        owner
            .client
            .delete(&format!("/api/v1/orgs/{org}/invitations/{id}"))
            .status,
        204
    );
    assert_eq!(
        owner
            .client
            .delete(&format!("/api/v1/orgs/{org}/invitations/{id}"))
            .status,
        404
    );
    let token = inv.body["token"].as_str().unwrap();
    let r = invitee
        .client
        .post(&format!("/api/v1/invitations/{token}/accept"), json!({}));
    assert_eq!((r.status, r.code()), (409, "invitation_used"));
}

#[test]
fn role_changes_respect_owner_rules() {
    let host = start_app();
    let owner = sign_up(&host, "boss");
    let org = create_org(&owner, "roles");
    let admin = sign_up(&host, "admin");
    let member = sign_up(&host, "member");
    add_member(&owner, &org, &admin, "admin");
    add_member(&owner, &org, &member, "member");
    let path = |u: &synatra_tests::User| format!("/api/v1/orgs/{org}/members/{}", u.id);

    let promoted = admin
        .client
        .patch(&path(&member), json!({ "role": "builder" }));
    assert_eq!(promoted.status, 200, "{:?}", promoted.body);
    assert_eq!(promoted.body["role"], "builder");
    let r = admin
        .client
        .patch(&path(&member), json!({ "role": "owner" }));
    assert_eq!(r.status, 403, "admins cannot make owners");
    let r = admin
        .client
        .patch(&path(&owner), json!({ "role": "member" }));
    assert_eq!(r.status, 403, "admins cannot demote owners");
    let r = owner
        .client
        .patch(&path(&owner), json!({ "role": "admin" }));
    assert_eq!((r.status, r.code()), (409, "last_owner"));
    let r = owner
        .client
        .patch(&path(&member), json!({ "role": "superuser" }));
    assert_eq!((r.status, r.code()), (400, "validation_failed"));
    let r = owner.client.patch(
        &format!("/api/v1/orgs/{org}/members/not-a-uuid"),
        json!({ "role": "admin" }),
    );
    assert_eq!(r.status, 404);

    // Two owners: now one may step down.
    assert_eq!(
        owner
            .client
            .patch(&path(&admin), json!({ "role": "owner" }))
            .status,
        200
    );
    assert_eq!(
        owner
            .client
            .patch(&path(&owner), json!({ "role": "admin" }))
            .status,
        200
    );

    assert_eq!(admin.client.delete(&path(&member)).status, 204);
    assert_eq!(
        member.client.get(&format!("/api/v1/orgs/{org}")).status,
        404
    );
    let r = admin.client.delete(&path(&admin));
    assert_eq!((r.status, r.code()), (409, "last_owner"));
}

#[test]
fn api_keys_are_shown_once_scoped_to_their_org_and_revocable() {
    let host = start_app();
    let owner = sign_up(&host, "keyholder");
    let org = create_org(&owner, "keys");
    let other_org = create_org(&owner, "other");
    let created = owner.client.post(
        &format!("/api/v1/orgs/{org}/api-keys"),
        json!({ "name": "ci", "role": "member" }),
    );
    assert_eq!(created.status, 201, "{:?}", created.body);
    let token = created.body["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("syn_"));
    let listed = owner.client.get(&format!("/api/v1/orgs/{org}/api-keys"));
    assert!(listed.body["api_keys"][0].get("token").is_none());
    assert_eq!(listed.body["api_keys"][0]["prefix"], &token[..12]);

    let key = host.client().with_bearer(&token);
    assert_eq!(
        key.get(&format!("/api/v1/orgs/{org}")).body["role"],
        "member"
    );
    assert_eq!(key.get("/api/v1/me").body["api_key"]["name"], "ci");
    assert_eq!(
        key.get("/api/v1/orgs").body["orgs"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(key.get(&format!("/api/v1/orgs/{other_org}")).status, 404);
    let r = key.post(
        &format!("/api/v1/orgs/{org}/invitations"),
        json!({ "email": "a@b.co", "role": "member" }),
    );
    assert_eq!(r.status, 403, "a member key cannot invite");
    let r = key.post("/api/v1/orgs", json!({ "name": "K", "slug": "by-key" }));
    assert_eq!((r.status, r.code()), (403, "api_key_not_allowed"));

    let id = created.body["id"].as_str().unwrap();
    assert_eq!(
        owner
            .client
            .delete(&format!("/api/v1/orgs/{org}/api-keys/{id}"))
            .status,
        204
    );
    assert_eq!(key.get(&format!("/api/v1/orgs/{org}")).status, 401);
}

#[test]
fn admins_cannot_mint_owner_keys_or_invite_owners() {
    let host = start_app();
    let owner = sign_up(&host, "o");
    let org = create_org(&owner, "caps");
    let admin = sign_up(&host, "a");
    add_member(&owner, &org, &admin, "admin");
    let r = admin.client.post(
        &format!("/api/v1/orgs/{org}/api-keys"),
        json!({ "name": "x", "role": "owner" }),
    );
    assert_eq!(r.status, 403);
    let r = admin.client.post(
        &format!("/api/v1/orgs/{org}/invitations"),
        json!({ "email": "z@example.com", "role": "owner" }),
    );
    assert_eq!(r.status, 403);
    assert_eq!(
        admin
            .client
            .post(
                &format!("/api/v1/orgs/{org}/api-keys"),
                json!({ "name": "x", "role": "admin" })
            )
            .status,
        201
    );
}

#[test]
fn deleting_an_org_removes_it_for_everyone() {
    let host = start_app();
    let owner = sign_up(&host, "deleter");
    let org = create_org(&owner, "doomed");
    let member = sign_up(&host, "bystander");
    add_member(&owner, &org, &member, "admin");
    assert_eq!(
        member.client.delete(&format!("/api/v1/orgs/{org}")).status,
        403
    );
    assert_eq!(
        owner.client.delete(&format!("/api/v1/orgs/{org}")).status,
        204
    );
    assert_eq!(owner.client.get(&format!("/api/v1/orgs/{org}")).status, 404);
    assert_eq!(member.client.get("/api/v1/orgs").body["orgs"], json!([]));
}

#[test]
fn channels_have_owners_and_members() {
    let host = start_app();
    let owner = sign_up(&host, "chan-owner");
    let org = create_org(&owner, "chan");
    let member = sign_up(&host, "chan-member");
    add_member(&owner, &org, &member, "member");
    let outsider = sign_up(&host, "chan-outsider");

    let created = owner.client.post(
        &format!("/api/v1/orgs/{org}/channels"),
        json!({ "slug": "refunds", "name": "Refunds" }),
    );
    assert_eq!(created.status, 201, "{:?}", created.body);
    let again = owner.client.post(
        &format!("/api/v1/orgs/{org}/channels"),
        json!({ "slug": "refunds", "name": "Again" }),
    );
    assert_eq!((again.status, again.code()), (409, "slug_taken"));
    let bad = owner.client.post(
        &format!("/api/v1/orgs/{org}/channels"),
        json!({ "slug": "Not A Slug", "name": "" }),
    );
    assert_eq!(bad.status, 400);

    let members = format!("/api/v1/orgs/{org}/channels/refunds/members");
    // A member sees the channels they belong to, and only their members.
    let slugs = |user: &User| -> Vec<String> {
        let r = user.client.get(&format!("/api/v1/orgs/{org}/channels"));
        assert_eq!(r.status, 200, "{:?}", r.body);
        r.body["channels"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["slug"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(slugs(&owner), ["general", "refunds"]);
    assert_eq!(slugs(&member), ["general"]);
    assert_eq!(member.client.get(&members).status, 404);
    let list = owner.client.get(&members);
    let roles: Vec<(&str, &str)> = list.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["email"].as_str().unwrap(), m["role"].as_str().unwrap()))
        .collect();
    assert_eq!(
        roles,
        vec![(owner.email.as_str(), "owner")],
        "the creator owns it"
    );

    // Only org members can join; roles are owner or member.
    let r = owner.client.send(
        "PUT",
        &format!("{members}/{}", outsider.id),
        Some(&json!({ "role": "member" })),
    );
    assert_eq!(r.status, 404);
    let r = owner.client.send(
        "PUT",
        &format!("{members}/{}", member.id),
        Some(&json!({ "role": "admin" })),
    );
    assert_eq!(r.status, 400);
    let r = owner.client.send(
        "PUT",
        &format!("{members}/{}", member.id),
        Some(&json!({ "role": "member" })),
    );
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = owner.client.send(
        "PUT",
        &format!("{members}/{}", member.id),
        Some(&json!({ "role": "owner" })),
    );
    assert_eq!(r.status, 200);
    assert_eq!(slugs(&member), ["general", "refunds"]);
    let list = member.client.get(&members);
    assert_eq!(list.body["members"].as_array().unwrap().len(), 2);
    assert!(list.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["role"] == "owner"));

    let gone = owner
        .client
        .send("DELETE", &format!("{members}/{}", member.id), None);
    assert_eq!(gone.status, 204);
    let gone = owner
        .client
        .send("DELETE", &format!("{members}/{}", member.id), None);
    assert_eq!(gone.status, 404);
    assert_eq!(slugs(&member), ["general"]);
    assert_eq!(member.client.get(&members).status, 404);
}

#[test]
fn keys_do_not_outlive_or_outrank_their_creator() {
    let host = start_app();
    let owner = sign_up(&host, "keyowner");
    let org = create_org(&owner, "keys");
    let admin = sign_up(&host, "keyadmin");
    add_member(&owner, &org, &admin, "admin");
    let key = |role: &str| {
        let r = admin.client.post(
            &format!("/api/v1/orgs/{org}/api-keys"),
            json!({ "name": role, "role": role }),
        );
        assert_eq!(r.status, 201, "{:?}", r.body);
        host.client().with_bearer(r.body["token"].as_str().unwrap())
    };
    let (admin_key, builder_key) = (key("admin"), key("builder"));
    let me = |c: &synatra_tests::Client| c.get(&format!("/api/v1/orgs/{org}")).status;
    assert_eq!((me(&admin_key), me(&builder_key)), (200, 200));
    // A key cannot mint another key.
    let minted = admin_key.post(
        &format!("/api/v1/orgs/{org}/api-keys"),
        json!({ "name": "child", "role": "member" }),
    );
    assert_eq!((minted.status, minted.code()), (403, "api_key_not_allowed"));
    // Demoted to builder: the admin key goes, the builder key stays.
    let demoted = owner.client.send(
        "PATCH",
        &format!("/api/v1/orgs/{org}/members/{}", admin.id),
        Some(&json!({ "role": "builder" })),
    );
    assert_eq!(demoted.status, 200, "{:?}", demoted.body);
    assert_eq!((me(&admin_key), me(&builder_key)), (401, 200));
    // Removed: every key they made goes.
    let removed = owner.client.send(
        "DELETE",
        &format!("/api/v1/orgs/{org}/members/{}", admin.id),
        None,
    );
    assert_eq!(removed.status, 204);
    assert_eq!(me(&builder_key), 401);
}

#[test]
fn invitations_do_not_outrank_their_sender() {
    let host = start_app();
    let owner = sign_up(&host, "invowner");
    let org = create_org(&owner, "invites");
    let admin = sign_up(&host, "invadmin");
    add_member(&owner, &org, &admin, "admin");
    let invite = |email: &str, role: &str| {
        let r = admin.client.post(
            &format!("/api/v1/orgs/{org}/invitations"),
            json!({ "email": email, "role": role }),
        );
        assert_eq!(r.status, 201, "{:?}", r.body);
        r.body["token"].as_str().unwrap().to_string()
    };
    let (future_admin, future_member) = (sign_up(&host, "fadmin"), sign_up(&host, "fmember"));
    let (as_admin, as_member) = (
        invite(&future_admin.email, "admin"),
        invite(&future_member.email, "member"),
    );
    // Demoted to builder: the admin invitation goes, the member one stays.
    let demoted = owner.client.send(
        "PATCH",
        &format!("/api/v1/orgs/{org}/members/{}", admin.id),
        Some(&json!({ "role": "builder" })),
    );
    assert_eq!(demoted.status, 200, "{:?}", demoted.body);
    let pending = owner.client.get(&format!("/api/v1/orgs/{org}/invitations"));
    let roles: Vec<&str> = pending.body["invitations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["member"], "{:?}", pending.body);
    let accept = |user: &synatra_tests::User, token: &str| {
        user.client
            .post(&format!("/api/v1/invitations/{token}/accept"), json!({}))
    };
    let r = accept(&future_admin, &as_admin);
    assert_eq!(
        (r.status, r.code()),
        (409, "invitation_used"),
        "{:?}",
        r.body
    );
    // Removed: every invitation they sent goes.
    let removed = owner.client.send(
        "DELETE",
        &format!("/api/v1/orgs/{org}/members/{}", admin.id),
        None,
    );
    assert_eq!(removed.status, 204);
    let r = accept(&future_member, &as_member);
    assert_eq!(
        (r.status, r.code()),
        (409, "invitation_used"),
        "{:?}",
        r.body
    );
}
