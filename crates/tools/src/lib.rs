//! User tool definitions: what a builder saves, how it is validated (field
//! errors name the field), and its content version (a hash, so an agent
//! release can freeze the exact tool it was published with).

pub mod component;
pub mod sandbox;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Who must approve a call before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApprovalPolicy {
    /// No review.
    AutoApprove,
    /// The channel owner, or an org owner or admin.
    OwnerOnly,
    /// Any member of the thread's channel.
    AnyMember,
}

/// Approval settings of a tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    #[serde(default = "auto")]
    pub policy: ApprovalPolicy,
    /// Whether the person who started the thread may approve.
    #[serde(default = "yes")]
    pub self_approval: bool,
    /// Whether the approver sees (and may edit) the arguments and rationale.
    #[serde(default)]
    pub review: bool,
    /// How long a request waits before the run fails as `timeout`.
    #[serde(default = "three_days")]
    pub timeout_secs: u32,
}

fn auto() -> ApprovalPolicy {
    ApprovalPolicy::AutoApprove
}

fn yes() -> bool {
    true
}

fn three_days() -> u32 {
    259_200
}

impl Default for Approval {
    fn default() -> Self {
        Self {
            policy: auto(),
            self_approval: true,
            review: false,
            timeout_secs: three_days(),
        }
    }
}

/// A tool as saved through the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolDef {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// JSON Schema of the arguments (an object schema).
    pub params: Value,
    /// JSON Schema of the result, if declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returns: Option<Value>,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u32,
    /// The body of an async JavaScript function of `(params, context)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The SHA-256 (hex) of an uploaded WIT tool component, instead of `code`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component_sha256: Option<String>,
    #[serde(default)]
    pub approval: Approval,
}

fn default_timeout() -> u32 {
    30_000
}

/// Names the system reserves for its own tools.
const RESERVED: [&str; 7] = [
    "add_numbers",
    "wait",
    "human_request",
    "output_table",
    "output_chart",
    "output_markdown",
    "output_key_value",
];

/// Largest tool source, in bytes.
pub const MAX_CODE_BYTES: usize = 256 * 1024;

impl ToolDef {
    /// Parses and validates a definition; errors are `(field, message)`.
    pub fn parse(value: &Value) -> Result<Self, Vec<(String, String)>> {
        let def: ToolDef = serde_path_to_error::deserialize(value.clone()).map_err(|e| {
            let path = e.path().to_string();
            vec![(
                if path == "." { "body".into() } else { path },
                e.into_inner().to_string(),
            )]
        })?;
        let errors = def.problems();
        if errors.is_empty() {
            Ok(def)
        } else {
            Err(errors)
        }
    }

    fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut fail = |f: &str, m: &str| out.push((f.to_string(), m.to_string()));
        let n = self.name.as_bytes();
        let identifier = (1..=64).contains(&n.len())
            && (n[0].is_ascii_lowercase() || n[0] == b'_')
            && n.iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_');
        if !identifier {
            fail(
                "name",
                "must be a lower_snake identifier of at most 64 characters",
            );
        } else if RESERVED.contains(&self.name.as_str()) || self.name.starts_with("delegate_to_") {
            fail("name", "is reserved for a system tool");
        }
        if self.description.len() > 2000 {
            fail("description", "must be at most 2000 bytes");
        }
        if let Err(e) = check_schema(&self.params, true) {
            fail("params", &e);
        }
        if let Some(Err(e)) = self.returns.as_ref().map(|r| check_schema(r, false)) {
            fail("returns", &e);
        }
        if !(100..=60_000).contains(&self.timeout_ms) {
            fail("timeout_ms", "must be 100 to 60000");
        }
        match (&self.code, &self.component_sha256) {
            (Some(code), None) if code.trim().is_empty() || code.len() > MAX_CODE_BYTES => {
                fail("code", "must be 1 byte to 256 KiB of JavaScript")
            }
            (Some(_), None) => {}
            (None, Some(sha)) if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) => {
                fail("component_sha256", "must be a SHA-256 in hex")
            }
            (None, Some(_)) => {}
            _ => fail(
                "code",
                "give either `code` (JavaScript) or `component` (a WIT tool component, base64)",
            ),
        }
        if !(60..=31_536_000).contains(&self.approval.timeout_secs) {
            fail("approval.timeout_secs", "must be 60 s to one year");
        }
        out
    }

    /// The content version: a hash of everything that changes behaviour.
    pub fn version(&self) -> String {
        let canonical = serde_json::to_vec(self).expect("a ToolDef serializes");
        Sha256::digest(&canonical)
            .iter()
            .take(12)
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// The argument a reviewed tool's caller must add: why it makes the call.
pub const RATIONALE: &str = "rationale";

impl ToolDef {
    /// Whether a call waits for a person's approval.
    pub fn needs_approval(&self) -> bool {
        self.approval.policy != ApprovalPolicy::AutoApprove
    }

    /// The arguments' schema as the model sees it: reviewed tools require a
    /// `rationale` the reviewer reads.
    pub fn model_parameters(&self) -> Value {
        let mut schema = self.params.clone();
        if self.approval.review {
            schema["properties"][RATIONALE] = serde_json::json!({
                "type": "string",
                "description": "Why this call is needed; a person reviews it before it runs."
            });
            let mut required = schema["required"].as_array().cloned().unwrap_or_default();
            required.push(RATIONALE.into());
            schema["required"] = Value::Array(required);
        }
        schema
    }

    /// Splits a call's arguments into the tool's arguments and the rationale
    /// (required, non-empty, when the tool is reviewed).
    pub fn split_rationale(&self, arguments: &Value) -> Result<(Value, Option<String>), String> {
        let mut params = arguments.clone();
        if !self.approval.review {
            return Ok((params, None));
        }
        let rationale = params
            .as_object_mut()
            .and_then(|o| o.remove(RATIONALE))
            .and_then(|r| r.as_str().map(str::trim).map(str::to_string))
            .filter(|r| !r.is_empty())
            .ok_or("`rationale` is required: say why this call is needed")?;
        Ok((params, Some(rationale)))
    }

    /// `javascript` or `wit`.
    pub fn kind(&self) -> &'static str {
        if self.component_sha256.is_some() {
            "wit"
        } else {
            "javascript"
        }
    }

    /// The policy's name, as stored with an approval.
    pub fn policy_name(&self) -> &'static str {
        match self.approval.policy {
            ApprovalPolicy::AutoApprove => "auto-approve",
            ApprovalPolicy::OwnerOnly => "owner-only",
            ApprovalPolicy::AnyMember => "any-member",
        }
    }
}

/// Splits an agent's tool entry `name` or `name@version` (a pinned version).
pub fn split_ref(entry: &str) -> (&str, Option<&str>) {
    match entry.split_once('@') {
        Some((name, version)) => (name, Some(version)),
        None => (entry, None),
    }
}

/// Whether `name` is a built-in test tool rather than a user tool.
pub fn is_builtin(name: &str) -> bool {
    matches!(name, "add_numbers" | "wait")
}

/// JSON Schema keywords that constrain values but that our validator does
/// not implement: refused when a schema is saved, rather than silently ignored.
const UNSUPPORTED: [&str; 23] = [
    "pattern",
    "patternProperties",
    "oneOf",
    "anyOf",
    "allOf",
    "not",
    "if",
    "then",
    "else",
    "$ref",
    "dependentRequired",
    "dependentSchemas",
    "uniqueItems",
    "multipleOf",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "propertyNames",
    "contains",
    "minProperties",
    "maxProperties",
    "prefixItems",
    "unevaluatedProperties",
    "unevaluatedItems",
];

const TYPES: [&str; 7] = [
    "object", "array", "string", "number", "integer", "boolean", "null",
];

/// Checks the JSON Schema subset tools use; the arguments' schema must
/// describe an object.
pub fn check_schema(schema: &Value, object_root: bool) -> Result<(), String> {
    let Some(obj) = schema.as_object() else {
        return Err("must be a JSON Schema object".into());
    };
    if object_root && schema["type"] != "object" {
        return Err("must have \"type\": \"object\"".into());
    }
    if let Some(k) = UNSUPPORTED.iter().find(|k| obj.contains_key(**k)) {
        return Err(format!(
            "uses `{k}`, which is not supported (supported: type, properties, required, \
             additionalProperties: false, items, enum, const, minimum, maximum, minLength, \
             maxLength, minItems, maxItems, and annotations such as description)"
        ));
    }
    if obj
        .get("additionalProperties")
        .is_some_and(|a| a.as_bool().is_none())
    {
        return Err("`additionalProperties` must be true or false".into());
    }
    if let Some(t) = obj.get("type") {
        if !t.as_str().is_some_and(|t| TYPES.contains(&t)) {
            return Err(format!("unknown type {t}"));
        }
    }
    if let Some(props) = obj.get("properties") {
        let props = props
            .as_object()
            .ok_or("\"properties\" must be an object")?;
        for (name, sub) in props {
            check_schema(sub, false).map_err(|e| format!("property `{name}`: {e}"))?;
        }
    }
    if let Some(req) = obj.get("required") {
        let names = req
            .as_array()
            .filter(|r| r.iter().all(Value::is_string))
            .ok_or("\"required\" must list property names")?;
        for n in names {
            let declared = obj
                .get("properties")
                .and_then(|p| p.get(n.as_str().unwrap_or_default()));
            if declared.is_none() {
                return Err(format!("required property {n} is not in \"properties\""));
            }
        }
    }
    if let Some(items) = obj.get("items") {
        check_schema(items, false).map_err(|e| format!("items: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def() -> Value {
        json!({
            "name": "refund_order",
            "description": "Refunds an order",
            "params": { "type": "object", "required": ["order_id"], "properties": { "order_id": { "type": "string" } } },
            "code": "return { ok: true };",
            "approval": { "policy": "owner-only", "self_approval": false, "review": true }
        })
    }

    #[test]
    fn a_valid_definition_gets_defaults_and_a_stable_version() {
        let d = ToolDef::parse(&def()).unwrap();
        assert_eq!(d.timeout_ms, 30_000);
        assert_eq!(d.approval.policy, ApprovalPolicy::OwnerOnly);
        assert_eq!(d.approval.timeout_secs, 259_200);
        assert_eq!(d.version(), ToolDef::parse(&def()).unwrap().version());
        let mut changed = def();
        changed["code"] = json!("return 1;");
        assert_ne!(d.version(), ToolDef::parse(&changed).unwrap().version());
    }

    #[test]
    fn errors_name_the_field() {
        let fields = |v: Value| -> Vec<String> {
            ToolDef::parse(&v)
                .unwrap_err()
                .into_iter()
                .map(|(f, _)| f)
                .collect()
        };
        let mut v = def();
        v["name"] = json!("Refund Order");
        v["timeout_ms"] = json!(5);
        v["params"] = json!({ "type": "string" });
        assert_eq!(fields(v), vec!["name", "params", "timeout_ms"]);
        let mut v = def();
        v["name"] = json!("human_request");
        assert_eq!(fields(v), vec!["name"]);
        let mut v = def();
        v["params"]["required"] = json!(["missing"]);
        assert_eq!(fields(v), vec!["params"]);
        let mut v = def();
        v["approval"]["policy"] = json!("anyone");
        assert_eq!(fields(v), vec!["approval.policy"]);
        let mut v = def();
        v["params"]["properties"]["order_id"]["pattern"] = json!("^o");
        assert_eq!(fields(v), vec!["params"], "unenforced keywords are refused");
        let mut v = def();
        v["surprise"] = json!(1);
        assert_eq!(fields(v), vec!["surprise"]);
    }
}
