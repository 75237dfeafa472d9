//! The deploy manifests under `deploy/` checked against the schemas the cluster
//! would check them with, vendored in `deploy/schemas/` (see its README): the
//! `SpinApp` CRD of spin-operator and Kubernetes' own JSON schemas. No cluster
//! and no network: a small validator (`synatra_tests::schema`) covers the
//! keywords those schemas use.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{json, Value};
use synatra_tests::{repo_root, schema};

fn deploy_dir(name: &str) -> PathBuf {
    repo_root().join("deploy").join(name)
}

/// The YAML documents of one file, as JSON values (empty documents skipped).
fn documents(path: &Path) -> Vec<Value> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .filter(|doc| !doc.is_null())
        .collect()
}

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `spec.versions[name == v1alpha1].schema.openAPIV3Schema` of the vendored CRD.
fn spinapp_schema() -> Value {
    let path = deploy_dir("schemas").join("core.spinkube.dev_spinapps.yaml");
    let crd = documents(&path).remove(0);
    assert_eq!(crd["kind"], "CustomResourceDefinition");
    assert_eq!(crd["spec"]["group"], "core.spinkube.dev");
    assert_eq!(crd["spec"]["names"]["kind"], "SpinApp");
    let versions = crd["spec"]["versions"].as_array().expect("spec.versions");
    let version = versions
        .iter()
        .find(|v| v["name"] == "v1alpha1")
        .expect("v1alpha1");
    version["schema"]["openAPIV3Schema"].clone()
}

/// The schema the API server would use for this document's apiVersion and kind.
fn schema_for(doc: &Value) -> Value {
    let api_version = doc["apiVersion"].as_str().expect("apiVersion");
    let kind = doc["kind"].as_str().expect("kind");
    let file = match (api_version, kind) {
        ("core.spinkube.dev/v1alpha1", "SpinApp") => return spinapp_schema(),
        ("batch/v1", "CronJob") => "cronjob-batch-v1.json",
        ("apps/v1", "Deployment") => "deployment-apps-v1.json",
        ("v1", "Service") => "service-v1.json",
        ("v1", "Secret") => "secret-v1.json",
        other => panic!("no vendored schema for {other:?}"),
    };
    read_json(&deploy_dir("schemas").join(file))
}

/// Validates every document of `deploy/<dir>/*.yaml`; returns them by kind.
fn validate_dir(dir: &str) -> BTreeMap<String, Vec<Value>> {
    let mut files: Vec<PathBuf> = fs::read_dir(deploy_dir(dir))
        .expect("deploy directory")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no manifests in deploy/{dir}");
    let mut by_kind: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let mut failures = Vec::new();
    for path in &files {
        for doc in documents(path) {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            for error in schema::validate(&schema_for(&doc), &doc) {
                failures.push(format!("deploy/{dir}/{name}: {error}"));
            }
            let kind = doc["kind"].as_str().unwrap().to_string();
            by_kind.entry(kind).or_default().push(doc);
        }
    }
    assert!(
        failures.is_empty(),
        "schema violations:\n{}",
        failures.join("\n")
    );
    by_kind
}

/// `(name, required)` of each entry of spin.toml's `[variables]` table. A
/// line scan: every entry there is a one-line inline table.
fn manifest_variables() -> Vec<(String, bool)> {
    let text = fs::read_to_string(repo_root().join("spin.toml")).expect("spin.toml");
    let mut in_variables = false;
    let mut variables = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_variables = line == "[variables]";
        } else if in_variables && !line.starts_with('#') {
            if let Some((name, rest)) = line.split_once('=') {
                let required = rest.replace(' ', "").contains("required=true");
                variables.push((name.trim().to_string(), required));
            }
        }
    }
    assert!(!variables.is_empty(), "spin.toml has no [variables]");
    variables
}

/// Every `secretKeyRef` under `value`, as (Secret name, key, optional).
fn secret_refs(value: &Value, out: &mut Vec<(String, String, bool)>) {
    match value {
        Value::Object(map) => {
            if let Some(r) = map.get("secretKeyRef") {
                let name = r["name"].as_str().unwrap_or_default().to_string();
                let key = r["key"].as_str().unwrap_or_default().to_string();
                out.push((name, key, r["optional"].as_bool() == Some(true)));
            }
            map.values().for_each(|v| secret_refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| secret_refs(v, out)),
        _ => {}
    }
}

/// Each key the manifests read from the Secret `synatra` is in the example.
fn assert_secret_keys_exist(docs: &[&Value], secret: &Value) {
    let mut refs = Vec::new();
    docs.iter().for_each(|doc| secret_refs(doc, &mut refs));
    assert!(!refs.is_empty());
    for (name, key, _) in refs {
        assert_eq!(name, "synatra", "secretKeyRef {key} names another Secret");
        assert!(
            secret["stringData"].get(&key).is_some(),
            "secret.example.yaml lacks {key}"
        );
    }
}

fn only(by_kind: &BTreeMap<String, Vec<Value>>, kind: &str) -> Value {
    match by_kind.get(kind).map(Vec::as_slice) {
        Some([doc]) => doc.clone(),
        other => panic!("expected one {kind}, found {other:?}"),
    }
}

#[test]
fn spinkube_manifests_validate_against_the_spinapp_crd_and_kubernetes_schemas() {
    let by_kind = validate_dir("spinkube");
    let app = only(&by_kind, "SpinApp");
    let secret = only(&by_kind, "Secret");
    let cron = only(&by_kind, "CronJob");

    assert_eq!(app["metadata"]["name"], "synatra");
    assert_eq!(app["spec"]["executor"], "containerd-shim-spin");
    let replicas = app["spec"]["replicas"].as_i64().expect("spec.replicas");
    assert!(
        replicas >= 2,
        "one replica is no scale-out: replicas = {replicas}"
    );

    let variables: BTreeMap<&str, &Value> = app["spec"]["variables"]
        .as_array()
        .expect("spec.variables")
        .iter()
        .map(|v| (v["name"].as_str().expect("variable name"), v))
        .collect();
    let declared = manifest_variables();
    for (name, required) in &declared {
        if !required {
            continue;
        }
        let variable = variables
            .get(name.as_str())
            .unwrap_or_else(|| panic!("SpinApp does not set required variable {name}"));
        assert!(
            variable.get("value").is_some() || variable["valueFrom"]["secretKeyRef"].is_object(),
            "{name} has neither a value nor a secretKeyRef"
        );
        let optional = &variable["valueFrom"]["secretKeyRef"]["optional"];
        assert_ne!(optional, &json!(true), "{name} is required, not optional");
    }
    for name in variables.keys() {
        assert!(
            declared.iter().any(|(d, _)| d == name),
            "SpinApp sets {name}, which spin.toml's [variables] does not declare"
        );
    }
    assert!(
        variables["app_origins"]["value"].is_string(),
        "app_origins is a plain value"
    );
    assert_secret_keys_exist(&[&app, &cron], &secret);

    let job = &cron["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(cron["spec"]["schedule"], "* * * * *");
    assert_eq!(cron["spec"]["concurrencyPolicy"], "Forbid");
    assert_eq!(job["restartPolicy"], "Never");
    let command = job["containers"][0]["command"].to_string();
    let url = format!(
        "http://{}/api/v1/tick",
        app["metadata"]["name"].as_str().unwrap()
    );
    assert!(
        command.contains(&url),
        "the tick CronJob calls {command}, not {url}"
    );
    assert!(command.contains("Bearer $TICK_SECRET"), "{command}");
}

#[test]
fn kubernetes_manifests_validate_against_kubernetes_schemas() {
    let by_kind = validate_dir("kubernetes");
    let deployment = only(&by_kind, "Deployment");
    let service = only(&by_kind, "Service");

    assert_eq!(deployment["metadata"]["name"], "synatra-host");
    assert_eq!(service["metadata"]["name"], "synatra-host");
    assert!(deployment["spec"]["replicas"].as_i64().unwrap_or(1) >= 2);
    let pod = &deployment["spec"]["template"]["spec"];
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    for (key, value) in service["spec"]["selector"].as_object().expect("selector") {
        assert_eq!(&labels[key], value, "the Service selects {key}={value}");
    }
    let container = &pod["containers"][0];
    let env: Vec<&str> = container["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    for name in [
        "DATABASE_URL",
        "SERVICE_SECRET",
        "ENCRYPTION_KEY",
        "APP_ORIGINS",
    ] {
        assert!(env.contains(&name), "the host needs {name}");
    }
    assert_eq!(
        container["securityContext"]["readOnlyRootFilesystem"],
        json!(true)
    );
    assert_eq!(pod["securityContext"]["runAsNonRoot"], json!(true));

    let spinkube_secret = documents(&deploy_dir("spinkube").join("secret.example.yaml"));
    assert_secret_keys_exist(&[&deployment], &spinkube_secret[0]);
}

#[test]
fn the_validator_refuses_wrong_types_and_unknown_fields_naming_the_path() {
    let spinapp = spinapp_schema();
    let app = documents(&deploy_dir("spinkube").join("spinapp.yaml")).remove(0);
    assert_eq!(schema::validate(&spinapp, &app), Vec::<String>::new());

    let refused = |s: &Value, doc: &Value, path: &str, what: &str| {
        let errors = schema::validate(s, doc);
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with(&format!("{path}: ")) && e.contains(what)),
            "expected an error at {path} ({what}), got {errors:?}"
        );
    };

    let mut bad = app.clone();
    bad["spec"]["replicas"] = json!("two");
    refused(&spinapp, &bad, "$.spec.replicas", "expected integer");

    let mut bad = app.clone();
    bad["spec"]["replica"] = json!(2);
    refused(&spinapp, &bad, "$.spec.replica", "unknown field");

    let mut bad = app.clone();
    bad["spec"]["variables"][0]["valueFrom"]["secretKeyRef"]["secret"] = json!("synatra");
    refused(
        &spinapp,
        &bad,
        "$.spec.variables[0].valueFrom.secretKeyRef.secret",
        "unknown",
    );

    let mut bad = app.clone();
    bad["spec"].as_object_mut().unwrap().remove("image");
    refused(&spinapp, &bad, "$.spec.image", "required field is missing");

    let deployment_schema = schema_for(&json!({"apiVersion": "apps/v1", "kind": "Deployment"}));
    let deployment = documents(&deploy_dir("kubernetes").join("deployment.yaml")).remove(0);
    let mut bad = deployment.clone();
    bad["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = json!("http");
    let path = "$.spec.template.spec.containers[0].ports[0].containerPort";
    refused(&deployment_schema, &bad, path, "expected integer");

    let service_schema = schema_for(&json!({"apiVersion": "v1", "kind": "Service"}));
    let service = documents(&deploy_dir("kubernetes").join("service.yaml")).remove(0);
    let mut bad = service.clone();
    bad["spec"]["ports"][0]["targetPort"] = json!(true);
    refused(&service_schema, &bad, "$.spec.ports[0].targetPort", "oneOf");
    let mut bad = service;
    bad["kind"] = json!("Services");
    refused(&service_schema, &bad, "$.kind", "is not one of");
}
