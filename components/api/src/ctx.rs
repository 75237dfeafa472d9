//! What a handler gets: the connection, the request, the caller and, on an
//! org's routes, the org with the caller's role in it.

use spin_sdk::http::Request;

use crate::auth::Principal;
use crate::db::Db;
use crate::error::{ApiError, ApiResult};
use crate::input::{is_uuid, Input};
use crate::store::orgs::OrgAccess;

/// The context of one authorised request.
pub struct Ctx<'a> {
    pub db: &'a Db,
    pub req: &'a Request,
    pub principal: Option<Principal>,
    pub params: Vec<(&'static str, String)>,
}

impl Ctx<'_> {
    /// A path parameter.
    pub fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    }

    /// A path parameter that must be a UUID; anything else names no record (404).
    pub fn uuid_param(&self, name: &str, what: &str) -> ApiResult<&str> {
        let v = self.param(name);
        if is_uuid(v) {
            Ok(v)
        } else {
            Err(ApiError::not_found(what))
        }
    }

    /// The authenticated caller (the pipeline guarantees one where required).
    pub fn principal(&self) -> ApiResult<&Principal> {
        self.principal
            .as_ref()
            .ok_or_else(ApiError::unauthenticated)
    }

    /// The JSON body as an object to validate.
    pub fn input(&self) -> ApiResult<Input> {
        Input::parse(self.req.body())
    }
}

/// The context of a request on an org's route: everything of [`Ctx`] plus
/// the org, resolved and role-checked by the pipeline.
pub struct OrgCtx<'a> {
    pub base: &'a Ctx<'a>,
    pub org: OrgAccess,
}

impl<'a> std::ops::Deref for OrgCtx<'a> {
    type Target = Ctx<'a>;

    fn deref(&self) -> &Ctx<'a> {
        self.base
    }
}
