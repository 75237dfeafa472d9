//! Built-in system tools that show something to people: non-blocking output
//! widgets (`output_table`, `output_chart`, `output_markdown`,
//! `output_key_value`) and the blocking `human_request`, whose answer is
//! validated against the request before the run resumes.

use serde_json::{json, Map, Value};
use synatra_llm::ToolSpec;

/// The blocking tool that asks a person and waits (`waiting_user`).
pub const HUMAN_REQUEST: &str = "human_request";

/// Names of the non-blocking output widgets.
pub const OUTPUTS: [&str; 4] = [
    "output_table",
    "output_chart",
    "output_markdown",
    "output_key_value",
];

/// Whether `name` is a system tool (offered to every agent).
pub fn is_system_tool(name: &str) -> bool {
    name == HUMAN_REQUEST || OUTPUTS.contains(&name)
}

/// The system tools' specs.
pub fn system_tools() -> Vec<ToolSpec> {
    let spec = |name: &str, description: &str, parameters: Value| ToolSpec {
        name: name.into(),
        description: description.into(),
        parameters,
    };
    vec![
        spec(
            "output_table",
            "Shows a table to the user.",
            json!({ "type": "object", "required": ["columns", "rows"], "properties": {
                "columns": { "type": "array", "items": { "type": "string" } },
                "rows": { "type": "array", "items": { "type": "array" } } } }),
        ),
        spec(
            "output_chart",
            "Shows a chart to the user.",
            json!({ "type": "object", "required": ["type", "labels", "datasets"], "properties": {
                "type": { "enum": ["line", "bar", "pie", "area"] },
                "labels": { "type": "array", "items": { "type": "string" } },
                "datasets": { "type": "array", "items": { "type": "object", "required": ["label", "data"], "properties": {
                    "label": { "type": "string" }, "data": { "type": "array", "items": { "type": "number" } } } } } } }),
        ),
        spec(
            "output_markdown",
            "Shows formatted text to the user.",
            json!({ "type": "object", "required": ["content"], "properties": { "content": { "type": "string" } } }),
        ),
        spec(
            "output_key_value",
            "Shows labelled values to the user.",
            json!({ "type": "object", "required": ["items"], "properties": { "items": { "type": "array", "items": {
                "type": "object", "required": ["key", "value"] } } } }),
        ),
        spec(
            HUMAN_REQUEST,
            "Asks the user for input and waits for the answer. Field kinds: form (a JSON Schema), question (options, multi), select_rows (columns, rows, multi), confirm.",
            json!({ "type": "object", "required": ["title", "fields"], "properties": {
                "title": { "type": "string" }, "description": { "type": "string" },
                "fields": { "type": "array", "items": { "type": "object", "required": ["name", "kind"], "properties": {
                    "name": { "type": "string" }, "kind": { "enum": ["form", "question", "select_rows", "confirm"] },
                    "label": { "type": "string" }, "schema": { "type": "object" },
                    "options": { "type": "array", "items": { "type": "string" } }, "multi": { "type": "boolean" },
                    "columns": { "type": "array" }, "rows": { "type": "array" } } } } } }),
        ),
    ]
}

fn strings(v: &Value) -> bool {
    v.as_array().is_some_and(|a| a.iter().all(Value::is_string))
}

/// Checks an output widget's arguments; the error is shown to the model.
pub fn check_output(name: &str, args: &Value) -> Result<(), String> {
    let ok = match name {
        "output_table" => {
            let width = args["columns"].as_array().map(Vec::len);
            strings(&args["columns"])
                && args["rows"]
                    .as_array()
                    .is_some_and(|rows| rows.iter().all(|r| r.as_array().map(Vec::len) == width))
        }
        "output_chart" => {
            let n = args["labels"].as_array().map(Vec::len);
            matches!(args["type"].as_str(), Some("line" | "bar" | "pie" | "area"))
                && strings(&args["labels"])
                && args["datasets"].as_array().is_some_and(|d| {
                    !d.is_empty()
                        && d.iter().all(|s| {
                            s["label"].is_string()
                                && s["data"].as_array().is_some_and(|x| {
                                    Some(x.len()) == n && x.iter().all(Value::is_number)
                                })
                        })
                })
        }
        "output_markdown" => args["content"].is_string(),
        "output_key_value" => args["items"].as_array().is_some_and(|i| {
            i.iter()
                .all(|kv| kv["key"].is_string() && kv.get("value").is_some())
        }),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid arguments for {name}: see the tool's parameters"
        ))
    }
}

/// Checks a `human_request`'s arguments.
pub fn check_request(args: &Value) -> Result<(), String> {
    if !args["title"].is_string() {
        return Err("`title` is required".into());
    }
    let fields = args["fields"]
        .as_array()
        .filter(|f| !f.is_empty())
        .ok_or("`fields` must be a non-empty array")?;
    let mut names = std::collections::HashSet::new();
    for f in fields {
        let name = f["name"].as_str().ok_or("every field needs a `name`")?;
        if !names.insert(name) {
            return Err(format!("field `{name}` appears twice"));
        }
        match f["kind"].as_str() {
            Some("form") if f["schema"].is_object() => {
                synatra_tools::check_schema(&f["schema"], false)
                    .map_err(|e| format!("field `{name}`: its schema {e}"))?;
            }
            Some("question")
                if strings(&f["options"])
                    && !f["options"].as_array().is_some_and(Vec::is_empty) => {}
            Some("select_rows") if f["rows"].is_array() => {}
            Some("confirm") => {}
            _ => {
                return Err(format!(
                    "field `{name}` has an unknown kind or misses its settings"
                ))
            }
        }
    }
    Ok(())
}

/// Validates a person's answer (`data`: one value per field name) against
/// the request; each error names the field.
pub fn check_response(request: &Value, data: &Value) -> Result<(), Vec<(String, String)>> {
    let mut errors = Vec::new();
    let empty = Map::new();
    let answers = data.as_object().unwrap_or(&empty);
    let fields = request["fields"].as_array().cloned().unwrap_or_default();
    for name in answers.keys() {
        if !fields.iter().any(|f| f["name"] == name.as_str()) {
            errors.push((
                format!("data.{name}"),
                "no such field in the request".into(),
            ));
        }
    }
    for f in &fields {
        let name = f["name"].as_str().unwrap_or_default();
        let path = format!("data.{name}");
        let Some(answer) = answers.get(name) else {
            errors.push((path, "an answer is required".into()));
            continue;
        };
        let multi = f["multi"].as_bool().unwrap_or(false);
        match f["kind"].as_str().unwrap_or_default() {
            "confirm" if !answer.is_boolean() => {
                errors.push((path, "must be true or false".into()))
            }
            "question" => {
                let options: Vec<&str> = f["options"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                let picked: Vec<&Value> = if multi {
                    answer
                        .as_array()
                        .map(|a| a.iter().collect())
                        .unwrap_or_default()
                } else {
                    vec![answer]
                };
                if (multi && !answer.is_array())
                    || picked
                        .iter()
                        .any(|p| !p.as_str().is_some_and(|s| options.contains(&s)))
                {
                    errors.push((
                        path,
                        format!(
                            "must be {} of: {}",
                            if multi { "a list" } else { "one" },
                            options.join(", ")
                        ),
                    ));
                }
            }
            "select_rows" => {
                let rows = f["rows"].as_array().map_or(0, Vec::len) as u64;
                let ok = answer.as_array().is_some_and(|a| {
                    (multi || a.len() <= 1)
                        && a.iter().all(|i| i.as_u64().is_some_and(|i| i < rows))
                });
                if !ok {
                    errors.push((path, format!("must be a list of row indexes below {rows}")));
                }
            }
            "form" => schema_errors(&f["schema"], answer, &path, &mut errors),
            _ => {}
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Validates `value` against the JSON Schema subset forms and tool
/// arguments use (type, required, properties, additionalProperties: false,
/// enum, const, minimum/maximum, minLength/maxLength, items,
/// minItems/maxItems), appending `(path, message)` errors. Schemas are
/// checked with `synatra_tools::check_schema` when saved.
pub fn schema_errors(
    schema: &Value,
    value: &Value,
    path: &str,
    errors: &mut Vec<(String, String)>,
) {
    if let Some(t) = schema["type"].as_str() {
        let ok = match t {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "number" => value.is_number(),
            "integer" => value.as_f64().is_some_and(|n| n.fract() == 0.0),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            _ => true,
        };
        if !ok {
            errors.push((path.to_string(), format!("must be of type {t}")));
            return;
        }
    }
    if schema.get("const").is_some_and(|c| c != value) {
        errors.push((path.to_string(), format!("must be {}", schema["const"])));
    }
    if let Some(options) = schema["enum"].as_array() {
        if !options.contains(value) {
            let listed: Vec<String> = options.iter().map(Value::to_string).collect();
            errors.push((
                path.to_string(),
                format!("must be one of {}", listed.join(", ")),
            ));
        }
    }
    if let Some(n) = value.as_f64() {
        if let Some(problem) = bounds(n, &schema["minimum"], &schema["maximum"], "") {
            errors.push((path.to_string(), problem));
        }
    }
    if let Some(s) = value.as_str() {
        let len = s.chars().count() as f64;
        let (min, max) = (&schema["minLength"], &schema["maxLength"]);
        if let Some(problem) = bounds(len, min, max, " characters long") {
            errors.push((path.to_string(), problem));
        }
    }
    if let Some(obj) = value.as_object() {
        for req in schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !obj.contains_key(req) {
                errors.push((format!("{path}.{req}"), "is required".into()));
            }
        }
        if let Some(props) = schema["properties"].as_object() {
            for (k, sub) in props {
                if let Some(v) = obj.get(k) {
                    schema_errors(sub, v, &format!("{path}.{k}"), errors);
                }
            }
        }
        if schema["additionalProperties"] == false {
            let declared = schema["properties"].as_object();
            for k in obj.keys() {
                if !declared.is_some_and(|d| d.contains_key(k)) {
                    errors.push((format!("{path}.{k}"), "is not an allowed property".into()));
                }
            }
        }
    }
    if let Some(arr) = value.as_array() {
        let n = arr.len() as f64;
        let (min, max) = (&schema["minItems"], &schema["maxItems"]);
        if let Some(problem) = bounds(n, min, max, " items") {
            errors.push((path.to_string(), problem));
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), value.as_array()) {
        for (i, v) in arr.iter().enumerate() {
            schema_errors(items, v, &format!("{path}[{i}]"), errors);
        }
    }
}

/// Why `n` is outside `[min, max]` (either may be absent), naming the
/// bounds: `must be at least 1 items`, `must be 2 to 5 characters long`.
fn bounds(n: f64, min: &Value, max: &Value, unit: &str) -> Option<String> {
    let (lo, hi) = (min.as_f64(), max.as_f64());
    if !(lo.is_some_and(|m| n < m) || hi.is_some_and(|m| n > m)) {
        return None;
    }
    Some(match (lo, hi) {
        (Some(_), Some(_)) => format!("must be {min} to {max}{unit}"),
        (Some(_), None) => format!("must be at least {min}{unit}"),
        _ => format!("must be at most {max}{unit}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(schema: Value, value: Value) -> Vec<String> {
        let mut out = Vec::new();
        schema_errors(&schema, &value, "v", &mut out);
        out.into_iter().map(|(f, _)| f).collect()
    }

    #[test]
    fn the_schema_subset_is_enforced() {
        let int = json!({ "type": "integer" });
        assert!(
            errors(int.clone(), json!(5.0)).is_empty(),
            "5.0 is an integer"
        );
        assert_eq!(errors(int, json!(5.5)), ["v"]);
        let closed = json!({ "type": "object", "additionalProperties": false,
                             "properties": { "a": { "const": 1 } } });
        assert_eq!(errors(closed.clone(), json!({ "a": 1, "b": 2 })), ["v.b"]);
        assert_eq!(errors(closed, json!({ "a": 2 })), ["v.a"]);
        let list = json!({ "type": "array", "minItems": 1, "maxItems": 2 });
        assert_eq!(errors(list.clone(), json!([])), ["v"]);
        assert!(errors(list, json!([1, 2])).is_empty());
        // A form whose schema uses a keyword we do not enforce is refused.
        let request = json!({ "title": "t", "fields": [{ "name": "f", "kind": "form",
            "schema": { "type": "object", "properties": { "x": { "type": "string", "pattern": "^a" } } } }] });
        assert!(check_request(&request).unwrap_err().contains("pattern"));
    }

    #[test]
    fn messages_state_the_bounds_and_the_choices() {
        let message = |schema: Value, value: Value| {
            let mut out = Vec::new();
            schema_errors(&schema, &value, "v", &mut out);
            out.into_iter().map(|(_, m)| m).collect::<Vec<_>>()
        };
        assert_eq!(
            message(json!({ "minimum": 1, "maximum": 10 }), json!(11)),
            ["must be 1 to 10"]
        );
        assert_eq!(
            message(json!({ "minimum": 0 }), json!(-1)),
            ["must be at least 0"]
        );
        assert_eq!(
            message(json!({ "maxLength": 3 }), json!("abcd")),
            ["must be at most 3 characters long"]
        );
        assert_eq!(
            message(json!({ "minItems": 1, "maxItems": 2 }), json!([])),
            ["must be 1 to 2 items"]
        );
        assert_eq!(
            message(json!({ "enum": ["low", "high"] }), json!("mid")),
            [r#"must be one of "low", "high""#]
        );
    }

    #[test]
    fn output_widgets_check_their_shape() {
        assert!(check_output(
            "output_table",
            &json!({ "columns": ["a", "b"], "rows": [[1, 2], [3, 4]] })
        )
        .is_ok());
        assert!(check_output(
            "output_table",
            &json!({ "columns": ["a", "b"], "rows": [[1]] })
        )
        .is_err());
        let chart = json!({ "type": "bar", "labels": ["x", "y"], "datasets": [{ "label": "s", "data": [1, 2] }] });
        assert!(check_output("output_chart", &chart).is_ok());
        assert!(check_output(
            "output_chart",
            &json!({ "type": "radar", "labels": [], "datasets": [] })
        )
        .is_err());
        assert!(check_output("output_markdown", &json!({ "content": "# hi" })).is_ok());
        assert!(check_output(
            "output_key_value",
            &json!({ "items": [{ "key": "k", "value": 1 }] })
        )
        .is_ok());
    }

    fn request() -> Value {
        json!({ "title": "Approve refund", "fields": [
            { "name": "details", "kind": "form", "schema": { "type": "object", "required": ["amount"],
                "properties": { "amount": { "type": "number", "minimum": 0, "maximum": 500 }, "reason": { "type": "string", "maxLength": 20 } } } },
            { "name": "speed", "kind": "question", "options": ["now", "later"] },
            { "name": "tags", "kind": "question", "options": ["a", "b", "c"], "multi": true },
            { "name": "orders", "kind": "select_rows", "columns": ["id"], "rows": [["o1"], ["o2"]], "multi": true },
            { "name": "ok", "kind": "confirm" }
        ] })
    }

    #[test]
    fn answers_are_validated_per_field_kind() {
        assert!(check_request(&request()).is_ok());
        assert!(check_request(
            &json!({ "title": "x", "fields": [{ "name": "a", "kind": "question" }] })
        )
        .is_err());
        let good = json!({ "details": { "amount": 20 }, "speed": "now", "tags": ["a", "c"], "orders": [1], "ok": true });
        assert_eq!(check_response(&request(), &good), Ok(()));
        let bad = json!({ "details": { "amount": 900, "reason": 3 }, "speed": "never", "tags": "a", "orders": [5], "ok": "yes", "extra": 1 });
        let fields: Vec<String> = check_response(&request(), &bad)
            .unwrap_err()
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        for f in [
            "data.extra",
            "data.details.amount",
            "data.details.reason",
            "data.speed",
            "data.tags",
            "data.orders",
            "data.ok",
        ] {
            assert!(
                fields.contains(&f.to_string()),
                "{f} missing from {fields:?}"
            );
        }
        let missing = check_response(&request(), &json!({})).unwrap_err();
        assert_eq!(missing.len(), 5);
    }
}
