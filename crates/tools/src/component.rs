//! What a WIT tool component may import, checked when it is uploaded (and
//! again by the host before it runs one): the `synatra:tool` world's own
//! interfaces, plus the WASI runtime interfaces a language's standard
//! library links against, which the host provides inert — no preopened
//! directories, no environment or arguments, stdout and stderr into the
//! call's logs. Sockets, HTTP and everything else are refused, by name.

use wasmparser::{ComponentTypeRef, Encoding, Parser, Payload, Validator, WasmFeatures};

/// Interfaces a tool may import, without their `@version`.
const ALLOWED: [&str; 24] = [
    "synatra:tool/log",
    "synatra:tool/context",
    "synatra:tool/gateway",
    "synatra:tool/types",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
];

/// Largest component accepted, in bytes.
pub const MAX_COMPONENT_BYTES: usize = 24 << 20;

/// Why an import is refused, if it is: allowed interfaces must also be of
/// a supported major version (WASI 0.2, `synatra:tool` 0.1).
pub fn import_error(name: &str) -> Option<String> {
    let (base, version) = name.split_once('@').unwrap_or((name, ""));
    let supported = match base.split(':').next() {
        Some("wasi") => version.starts_with("0.2."),
        Some("synatra") => version.starts_with("0.1."),
        _ => false,
    };
    if ALLOWED.contains(&base) && supported {
        return None;
    }
    Some(if ALLOWED.contains(&base) {
        format!("the component imports `{name}`, a version this host does not provide")
    } else {
        format!(
            "the component imports `{name}`, which tools may not use: a tool reaches the outside only through synatra:tool/gateway"
        )
    })
}

/// Validates a component's bytes and its imports and exports; returns its
/// import names. The error names the offending import.
pub fn check_component(wasm: &[u8]) -> Result<Vec<String>, String> {
    if wasm.len() > MAX_COMPONENT_BYTES {
        return Err(format!(
            "the component is larger than {} MiB",
            MAX_COMPONENT_BYTES >> 20
        ));
    }
    Validator::new_with_features(WasmFeatures::all())
        .validate_all(wasm)
        .map_err(|e| format!("not a valid WebAssembly component: {e}"))?;
    let mut imports = Vec::new();
    let mut exports_call = false;
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload.map_err(|e| format!("not a valid WebAssembly component: {e}"))?;
        match payload {
            Payload::Version { encoding, .. } if depth == 0 && encoding != Encoding::Component => {
                return Err("this is a core WebAssembly module, not a component: build it for wasm32-wasip2 (or with cargo-component, jco or componentize-py)".into());
            }
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    let import = import.map_err(|e| e.to_string())?;
                    // A type the world itself declares (`tool-error`) grants nothing.
                    if !matches!(import.ty, ComponentTypeRef::Type(_)) {
                        imports.push(import.name.0.to_string());
                    }
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    let export = export.map_err(|e| e.to_string())?;
                    exports_call |= export.name.0 == "call";
                }
            }
            _ => {}
        }
    }
    if let Some(e) = imports.iter().find_map(|i| import_error(i)) {
        return Err(e);
    }
    if !exports_call {
        return Err("the component does not export `call`: implement the synatra:tool world (wit/tool/world.wit)".into());
    }
    Ok(imports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_outside_the_world_are_named() {
        assert_eq!(import_error("synatra:tool/log@0.1.0"), None);
        assert_eq!(import_error("wasi:io/streams@0.2.6"), None);
        let e = import_error("wasi:sockets/tcp@0.2.0").unwrap();
        assert!(e.contains("`wasi:sockets/tcp@0.2.0`"), "{e}");
        assert!(import_error("wasi:http/outgoing-handler@0.2.0").is_some());
        assert!(import_error("wasi:io/streams@0.3.0")
            .unwrap()
            .contains("version"));
        assert!(import_error("fermyon:spin/variables@2.0.0").is_some());
    }

    #[test]
    fn garbage_and_core_modules_are_refused() {
        assert!(check_component(b"not wasm").unwrap_err().contains("valid"));
        // The smallest core module: magic and version 1.
        let core = b"\0asm\x01\0\0\0";
        assert!(check_component(core).unwrap_err().contains("core"));
    }
}
