//! The org's own tools in a run: which versions the agent's config offers,
//! how a call's arguments are checked, and running a call in its sandbox.

use serde_json::{json, Value};
use synatra_db::{Db, DbError};
use synatra_internal::ToolCode;
use synatra_llm::ToolSpec;
use synatra_tools::{is_builtin, split_ref, ToolDef};

/// A user tool at the version this run uses.
pub struct UserTool {
    pub org_id: String,
    pub version: String,
    pub def: ToolDef,
}

/// The user tools among the config's `tools` entries (`name` or
/// `name@version`); entries that no longer resolve are reported and skipped.
pub fn load(db: &Db, org_id: &str, entries: &[String]) -> Result<Vec<UserTool>, DbError> {
    let mut out = Vec::new();
    for entry in entries {
        let (name, version) = split_ref(entry);
        if is_builtin(name) {
            continue;
        }
        let Some((version, definition)) = synatra_db::tools::definition(db, org_id, name, version)?
        else {
            eprintln!("tool `{entry}` does not exist (any more); not offered");
            continue;
        };
        match serde_json::from_value::<ToolDef>(definition) {
            Ok(def) => out.push(UserTool {
                org_id: org_id.to_string(),
                version,
                def,
            }),
            Err(e) => eprintln!("tool `{entry}` has an unreadable definition: {e}"),
        }
    }
    Ok(out)
}

/// Tool `name` at exactly `version` (the one a person approved), if kept.
pub fn at_version(
    db: &Db,
    org_id: &str,
    name: &str,
    version: &str,
) -> Result<Option<UserTool>, DbError> {
    let Some((version, definition)) =
        synatra_db::tools::definition(db, org_id, name, Some(version))?
    else {
        return Ok(None);
    };
    Ok(serde_json::from_value::<ToolDef>(definition)
        .ok()
        .map(|def| UserTool {
            org_id: org_id.to_string(),
            version,
            def,
        }))
}

impl UserTool {
    /// How the model sees the tool.
    pub fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: self.def.name.clone(),
            description: self.def.description.clone(),
            parameters: self.def.model_parameters(),
        }
    }

    /// The call's arguments (without the rationale) and its rationale, or
    /// a message for the model naming what is wrong.
    pub fn check(&self, arguments: &Value) -> Result<(Value, Option<String>), String> {
        let (params, rationale) = self.def.split_rationale(arguments)?;
        let mut errors = Vec::new();
        synatra_runs::widgets::schema_errors(&self.def.params, &params, "params", &mut errors);
        if errors.is_empty() {
            Ok((params, rationale))
        } else {
            let list: Vec<String> = errors.iter().map(|(f, m)| format!("{f}: {m}")).collect();
            Err(format!("invalid arguments: {}", list.join("; ")))
        }
    }

    /// Runs the tool once: `(output for the model, is_error, console lines)`.
    pub async fn run(&self, params: &Value, idempotency_key: &str) -> (Value, bool, Value) {
        let code = ToolCode::of(
            &self.org_id,
            self.def.code.as_deref(),
            self.def.component_sha256.as_deref(),
        );
        let timeout = self.def.timeout_ms.into();
        // One line per execution: an operator can see when a call ran again
        // after a crash (always with the same idempotency key).
        eprintln!(
            "tool {}@{} executing (idempotency key {idempotency_key})",
            self.def.name, self.version
        );
        match synatra_internal::run_tool(code, params, timeout, Some(idempotency_key)).await {
            Ok(a) if a.ok => match self.returns_error(&a.result) {
                None => (a.result, false, json!(a.logs)),
                Some(e) => (json!({ "error": e }), true, json!(a.logs)),
            },
            Ok(a) => (json!({ "error": a.error }), true, json!(a.logs)),
            Err(e) => (json!({ "error": e }), true, Value::Null),
        }
    }

    /// Why a result does not match the declared `returns` schema, if it does not.
    fn returns_error(&self, result: &Value) -> Option<String> {
        let schema = self.def.returns.as_ref()?;
        let mut errors = Vec::new();
        synatra_runs::widgets::schema_errors(schema, result, "result", &mut errors);
        let list: Vec<String> = errors.iter().map(|(f, m)| format!("{f}: {m}")).collect();
        (!list.is_empty()).then(|| {
            format!(
                "the tool's result does not match its `returns` schema: {}",
                list.join("; ")
            )
        })
    }
}
