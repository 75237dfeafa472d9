//! The tool-js component (private route): `POST /run {code, params}` runs a
//! user's JavaScript tool — the body of `async function (params, context)`
//! — in a fresh Boa engine inside a fresh Wasm instance. The instance has no
//! network, files, environment or clock beyond WASI's; the host bounds its
//! memory and time. The answer is `{ok: true, result, logs}` or
//! `{ok: false, error, logs}`: a tool's failure is data, not a server error.

use boa_engine::object::builtins::JsPromise;
use boa_engine::property::Attribute;
use boa_engine::{js_string, Context, JsResult, JsValue, NativeFunction, Source};
use serde::Deserialize;
use serde_json::{json, Value};
use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;
use std::cell::RefCell;
use std::rc::Rc;
use synatra_internal::{error_response, json_response};
use synatra_tools::sandbox::{push_log, ToolAnswer, MAX_RESULT};

#[derive(Deserialize)]
struct Run {
    code: String,
    params: Value,
}

/// Most iterations of any one loop.
const LOOP_ITERATION_LIMIT: u64 = 1_000_000_000;

#[http_component]
async fn handle(req: Request) -> Response {
    synatra_internal::serve_private(req, |req| async move { run(&req) }).await
}

fn run(req: &Request) -> Response {
    let Ok(run) = serde_json::from_slice::<Run>(req.body()) else {
        return error_response(400, "invalid_json", "expected {code, params}");
    };
    let logs = Rc::new(RefCell::new(Vec::<String>::new()));
    // `run_id:seq` in a run (None for a test call): lets a tool make its side
    // effect idempotent, so a call retried after a crash is not repeated.
    let key = req
        .header(synatra_names::headers::IDEMPOTENCY_KEY)
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let outcome = execute(&run.code, &run.params, key.as_deref(), logs.clone());
    let logs = logs.borrow().clone();
    let answer = match outcome {
        Ok(result) => ToolAnswer::success(result, logs),
        Err(error) => ToolAnswer::failure(&error, logs),
    };
    json_response(200, &json!(answer))
}

/// Runs the tool body; the error is a message for the model.
fn execute(
    code: &str,
    params: &Value,
    idempotency_key: Option<&str>,
    logs: Rc<RefCell<Vec<String>>>,
) -> Result<Value, String> {
    let mut ctx = Context::default();
    // The host's deadline ends a runaway tool; this also bounds one where no
    // host enforces a deadline (plain `spin up`): a billion turns of one loop.
    ctx.runtime_limits_mut()
        .set_loop_iteration_limit(LOOP_ITERATION_LIMIT);
    install_console(&mut ctx, logs).map_err(|e| e.to_string())?;
    let params_js = JsValue::from_json(params, &mut ctx).map_err(|e| e.to_string())?;
    ctx.register_global_property(js_string!("__params"), params_js, Attribute::all())
        .map_err(|e| e.to_string())?;
    let key_js = JsValue::from_json(&serde_json::json!(idempotency_key), &mut ctx)
        .map_err(|e| e.to_string())?;
    ctx.register_global_property(js_string!("__idempotency_key"), key_js, Attribute::all())
        .map_err(|e| e.to_string())?;
    // `context.resources` reaches resources through the gateway once they exist.
    // The tool's first line shares the wrapper's, so error lines are its own.
    let source = format!(
        "{WRAPPER}{code}\n}})(__params, {{ idempotencyKey: __idempotency_key, resources: new Proxy({{}}, {{ get(_, name) {{ throw new Error('no such resource: ' + String(name)); }} }}) }})"
    );
    let value = ctx
        .eval(Source::from_bytes(source.as_bytes()))
        .map_err(|e| describe(e, &mut ctx))?;
    let promise = value
        .as_object()
        .and_then(|o| JsPromise::from_object(o).ok())
        .ok_or("the tool did not produce a promise")?;
    ctx.run_jobs().map_err(|e| describe(e, &mut ctx))?;
    let settled = promise.state();
    let result = match settled {
        boa_engine::builtins::promise::PromiseState::Fulfilled(v) => v,
        boa_engine::builtins::promise::PromiseState::Rejected(e) => {
            return Err(describe(boa_engine::JsError::from_opaque(e), &mut ctx));
        }
        boa_engine::builtins::promise::PromiseState::Pending => {
            return Err("the tool's promise never settled".into());
        }
    };
    let json = to_json(&result, &mut ctx)?;
    if json.to_string().len() > MAX_RESULT {
        return Err(format!("the result exceeds {MAX_RESULT} bytes"));
    }
    Ok(json)
}

/// JSON for a result: `undefined` → null, bigint → string, Date → ISO
/// string (via `toJSON`), functions and symbols are refused.
fn to_json(value: &JsValue, ctx: &mut Context) -> Result<Value, String> {
    if value.is_undefined() {
        return Ok(Value::Null);
    }
    if let Some(b) = value.as_bigint() {
        return Ok(Value::String(b.to_string()));
    }
    if value.is_callable() || value.is_symbol() {
        return Err("the tool returned a value that is not JSON (a function or symbol)".into());
    }
    // JSON.stringify handles Date (toJSON) and nested values; bigint inside
    // objects is converted first by a replacer.
    let stringify = ctx
        .eval(Source::from_bytes(
            b"(v) => JSON.stringify(v, (k, x) => typeof x === 'bigint' ? x.toString() : x)",
        ))
        .map_err(|e| e.to_string())?;
    let text = stringify
        .as_callable()
        .ok_or("no JSON.stringify")?
        .call(&JsValue::undefined(), std::slice::from_ref(value), ctx)
        .map_err(|e| describe(e, ctx))?;
    let text = text
        .as_string()
        .map(|s| s.to_std_string_escaped())
        .ok_or("the tool returned a value that is not JSON")?;
    serde_json::from_str(&text).map_err(|e| format!("the tool returned invalid JSON: {e}"))
}

/// What precedes the tool's code on its first line.
const WRAPPER: &str = "(async function (params, context) { ";

fn describe(e: boa_engine::JsError, ctx: &mut Context) -> String {
    let text = match e.try_native(ctx) {
        Ok(native) => native.to_string(),
        Err(_) => e.to_string(),
    };
    own_columns(&text)
}

/// `line 1, col N` counted in the tool's code rather than the wrapper's.
fn own_columns(text: &str) -> String {
    const AT: &str = "line 1, col ";
    let Some(start) = text.find(AT).map(|i| i + AT.len()) else {
        return text.to_string();
    };
    let digits: String = text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    match digits.parse::<usize>() {
        Ok(col) if col > WRAPPER.len() => format!(
            "{}{}{}",
            &text[..start],
            col - WRAPPER.len(),
            &text[start + digits.len()..]
        ),
        _ => text.to_string(),
    }
}

/// `console.log/info/warn/error` append to the call's logs.
fn install_console(ctx: &mut Context, logs: Rc<RefCell<Vec<String>>>) -> JsResult<()> {
    let console = boa_engine::object::ObjectInitializer::new(ctx).build();
    for name in ["log", "info", "warn", "error", "debug"] {
        let logs = logs.clone();
        // SAFETY (of the closure contract): the captured Rc is not a JS value,
        // so it needs no tracing by the garbage collector.
        let f = unsafe {
            NativeFunction::from_closure(move |_, args, ctx| {
                let line = args
                    .iter()
                    .map(|a| {
                        a.to_string(ctx)
                            .map(|s| s.to_std_string_escaped())
                            .unwrap_or_default()
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                push_log(&mut logs.borrow_mut(), &line);
                Ok(JsValue::undefined())
            })
        };
        console.set(js_string!(name), f.to_js_function(ctx.realm()), false, ctx)?;
    }
    ctx.register_global_property(js_string!("console"), console, Attribute::all())?;
    Ok(())
}
