//! Request parsing (size, content type, cookies, headers) and JSON replies.

use serde_json::Value;
use spin_sdk::http::{Fields, OutgoingResponse, Request, ResponseOutparam};

use crate::error::{ApiError, ApiResult};

/// Largest request body accepted, in bytes.
pub const MAX_BODY: usize = 1 << 20;

/// A JSON (or HTML) reply, with optional `Set-Cookie` headers.
pub struct Reply {
    pub status: u16,
    pub body: Option<Value>,
    /// An HTML page instead of JSON.
    pub html: Option<String>,
    pub cookies: Vec<String>,
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    /// 200 with a JSON body.
    pub fn ok(body: Value) -> Self {
        Self::status(200, body)
    }

    /// 201 with a JSON body.
    pub fn created(body: Value) -> Self {
        Self::status(201, body)
    }

    /// 204 with no body.
    pub fn no_content() -> Self {
        Self {
            status: 204,
            body: None,
            html: None,
            cookies: Vec::new(),
            headers: Vec::new(),
        }
    }

    fn status(status: u16, body: Value) -> Self {
        Self {
            status,
            body: Some(body),
            html: None,
            cookies: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// 200 with an HTML page.
    pub fn html(page: String) -> Self {
        Self {
            status: 200,
            html: Some(page),
            ..Self::no_content()
        }
    }

    /// Adds a `Set-Cookie` header.
    pub fn with_cookie(mut self, cookie: String) -> Self {
        self.cookies.push(cookie);
        self
    }

    /// Sends the reply.
    pub async fn send(self, out: ResponseOutparam) {
        let mut headers: Vec<(String, Vec<u8>)> = vec![
            ("cache-control".into(), b"no-store".to_vec()),
            ("x-content-type-options".into(), b"nosniff".to_vec()),
        ];
        for c in self.cookies {
            headers.push(("set-cookie".into(), c.into_bytes()));
        }
        for (k, v) in self.headers {
            headers.push((k.into(), v.into_bytes()));
        }
        let body = match (self.body, self.html) {
            (Some(body), _) => {
                headers.push(("content-type".into(), b"application/json".to_vec()));
                body.to_string().into_bytes()
            }
            (None, Some(page)) => {
                headers.push(("content-type".into(), b"text/html; charset=utf-8".to_vec()));
                // The page is static: no scripts, no outside resources.
                let policy = b"default-src 'none'; style-src 'unsafe-inline'".to_vec();
                headers.push(("content-security-policy".into(), policy));
                page.into_bytes()
            }
            (None, None) => Vec::new(),
        };
        let response = OutgoingResponse::new(Fields::from_list(&headers).expect("valid headers"));
        let _ = response.set_status_code(self.status);
        if let Err(e) = out.set_with_body(response, body).await {
            eprintln!("could not send the response body: {e:?}");
        }
    }
}

impl From<ApiError> for Reply {
    fn from(e: ApiError) -> Self {
        let retry_after = e
            .details
            .as_ref()
            .and_then(|d| d["retry_after_seconds"].as_u64());
        let mut reply = Reply::status(e.status, e.body());
        if let Some(secs) = retry_after {
            reply.headers.push(("retry-after", secs.to_string()));
        }
        reply
    }
}

/// A header value as a string.
pub fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.header(name).and_then(|v| v.as_str())
}

/// Largest body of a request that uploads a tool component (base64 in JSON).
pub const MAX_UPLOAD_BODY: usize = 32 << 20;

/// What a route's body must be.
#[derive(Clone, Copy)]
pub struct BodyRule {
    /// Largest body, in bytes.
    pub max: usize,
    /// The media type required of a non-empty body.
    pub media_type: &'static str,
}

/// Rejects bodies over the rule's size (413) or of another media type (415).
pub fn check_body(req: &Request, rule: BodyRule) -> ApiResult<()> {
    let max = rule.max;
    if req.body().len() > max {
        return Err(ApiError::new(
            413,
            "payload_too_large",
            format!("request body exceeds {max} bytes"),
        ));
    }
    if req.body().is_empty() {
        return Ok(());
    }
    let json = rule.media_type == "application/json";
    let matches = header(req, "content-type")
        .map(|ct| {
            let mime = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            mime == rule.media_type || (json && mime.ends_with("+json"))
        })
        .unwrap_or(false);
    if !matches {
        return Err(ApiError::new(
            415,
            "unsupported_media_type",
            format!("send the request body as {}", rule.media_type),
        ));
    }
    Ok(())
}

/// The page a listing asks for: `limit` (1 to 100, default 50) and the
/// keyset cursor `after` (the `next_cursor` of the previous page: an id of
/// `what`).
pub struct Page {
    pub limit: usize,
    pub after: Option<String>,
}

fn bad_param(field: &str, message: String) -> ApiError {
    ApiError::fields(&[(field.to_string(), message)])
}

/// `limit` (`default` when absent, 1 to `max`).
fn limit(req: &Request, default: usize, max: usize) -> ApiResult<usize> {
    match query_param(req, "limit") {
        None => Ok(default),
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=max).contains(l))
            .ok_or_else(|| bad_param("limit", format!("must be 1 to {max}"))),
    }
}

/// Reads and checks `limit` (1 to 100, default 50) and `after` (the id of
/// `what` a previous page's `next_cursor` gave).
pub fn page(req: &Request, what: &str) -> ApiResult<Page> {
    let limit = limit(req, 50, 100)?;
    let after = query_param(req, "after");
    if after.as_deref().is_some_and(|a| !crate::input::is_uuid(a)) {
        return Err(bad_param(
            "after",
            format!("must be {what} id from next_cursor"),
        ));
    }
    Ok(Page { limit, after })
}

/// A page of a thread's messages: `limit` (1 to 500, default 200) and
/// `after` (a message id from `next_cursor`; messages come oldest first).
pub fn message_page(req: &Request) -> ApiResult<(usize, i64)> {
    let limit = limit(req, 200, 500)?;
    let after =
        match query_param(req, "after") {
            None => 0,
            Some(a) => a.parse::<i64>().ok().filter(|a| *a >= 0).ok_or_else(|| {
                bad_param("after", "must be a message id from next_cursor".into())
            })?,
        };
    Ok((limit, after))
}

/// Refuses a query string whose decoded values hold NUL (no stored text
/// can, so no handler should see one).
pub fn check_query(req: &Request) -> Result<(), ApiError> {
    let bad = req.query().split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        percent_decode(v).contains('\0').then(|| percent_decode(k))
    });
    match bad {
        None => Ok(()),
        Some(field) => Err(ApiError::fields(&[(
            field,
            "may not contain NUL characters".into(),
        )])),
    }
}

/// A query-string parameter, percent-decoded.
pub fn query_param(req: &Request, name: &str) -> Option<String> {
    req.query().split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of cookie `name`.
pub fn cookie(req: &Request, name: &str) -> Option<String> {
    header(req, "cookie")?.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}
