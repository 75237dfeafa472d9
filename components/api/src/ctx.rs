//! What a handler gets: the connection, the request, the caller, the org.

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
    pub org: Option<OrgAccess>,
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

    /// The org of an org route.
    pub fn org(&self) -> &OrgAccess {
        self.org
            .as_ref()
            .expect("org routes resolve the org before the handler")
    }

    /// The JSON body as an object to validate.
    pub fn input(&self) -> ApiResult<Input> {
        Input::parse(self.req.body())
    }
}
