//! The Spin application manifest (`spin.toml`, manifest version 2), as far as
//! the Synatra host understands it. Unknown fields are errors naming the field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// A parsed and validated `spin.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Must be 2.
    pub spin_manifest_version: u32,
    /// Application metadata.
    pub application: Application,
    /// Application variables, by lower_snake name.
    #[serde(default)]
    pub variables: BTreeMap<String, VariableDecl>,
    /// Triggers by type (`http`, `cron`).
    #[serde(default)]
    pub trigger: Triggers,
    /// Components by id.
    #[serde(default)]
    pub component: BTreeMap<String, ComponentDecl>,
    /// Directory that relative paths in the manifest are resolved against.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// `[application]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Application {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub authors: Vec<String>,
    #[serde(default)]
    pub trigger: Option<toml::Table>,
    /// Spin environments the app targets; informational here.
    #[serde(default)]
    pub targets: Vec<toml::Value>,
    /// Settings for tools and plugins; the host ignores them.
    #[serde(default)]
    pub tool: BTreeMap<String, toml::Table>,
}

/// `[variables.<name>]`: either required, or with a default; optionally secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariableDecl {
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub secret: bool,
}

/// The `[[trigger.*]]` arrays.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Triggers {
    #[serde(default)]
    pub http: Vec<HttpTrigger>,
    #[serde(default)]
    pub cron: Vec<CronTrigger>,
}

/// One `[[trigger.http]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTrigger {
    pub route: RouteDecl,
    pub component: String,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub executor: Option<toml::Table>,
}

/// A route: a path pattern, or `{ private = true }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RouteDecl {
    Path(String),
    Private(PrivateRoute),
}

/// `route = { private = true }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivateRoute {
    pub private: bool,
}

/// One `[[trigger.cron]]` (the format of Spin's cron trigger plugin).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CronTrigger {
    pub component: String,
    pub cron_expression: String,
    #[serde(default)]
    pub id: Option<String>,
}

/// `[component.<id>]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentDecl {
    pub source: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    pub key_value_stores: Vec<String>,
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub files: Vec<toml::Value>,
    #[serde(default)]
    pub exclude_files: Vec<String>,
    #[serde(default)]
    pub build: Option<BuildDecl>,
    /// Tool-specific settings; the host reads `[component.<id>.tool.synatra]`.
    #[serde(default)]
    pub tool: BTreeMap<String, toml::Value>,
    /// Spin features this host does not implement; accepted by the parser so
    /// the error can say so instead of "unknown field".
    #[serde(default)]
    pub allowed_http_hosts: Vec<String>,
    #[serde(default)]
    pub sqlite_databases: Vec<String>,
    #[serde(default)]
    pub ai_models: Vec<String>,
    #[serde(default)]
    pub dependencies: BTreeMap<String, toml::Value>,
    #[serde(default)]
    pub dependencies_inherit_configuration: bool,
    #[serde(default)]
    pub profile: BTreeMap<String, toml::Value>,
}

/// `[component.<id>.build]`, used by `spin build`; the host ignores it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildDecl {
    pub command: String,
    #[serde(default)]
    pub workdir: Option<String>,
    #[serde(default)]
    pub watch: Vec<String>,
}

/// Host-specific limits from `[component.<id>.tool.synatra]`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentLimits {
    /// Maximum linear memory of one instance, in MiB.
    #[serde(default = "default_memory_mb")]
    pub memory_limit_mb: u64,
    /// Wall-clock budget of one request (enforced by epoch interruption), in ms.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Outbound HTTP: longest wait for the first byte of a response, and
    /// between two chunks of it, in ms (connecting gets at most 10 s).
    #[serde(default = "default_outbound_timeout_ms")]
    pub outbound_timeout_ms: u64,
    /// Largest request body accepted from the network, in bytes; a larger
    /// one is refused (413) before any instance starts.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: u64,
    /// Requests from the network this component serves at once; more wait
    /// up to 5 s for a slot, then get 503.
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: usize,
}

fn default_max_body_bytes() -> u64 {
    10 << 20
}

fn default_max_concurrency() -> usize {
    256
}

fn default_outbound_timeout_ms() -> u64 {
    60_000
}

fn default_memory_mb() -> u64 {
    128
}

fn default_timeout_ms() -> u64 {
    30_000
}

impl Default for ComponentLimits {
    fn default() -> Self {
        Self {
            memory_limit_mb: default_memory_mb(),
            timeout_ms: default_timeout_ms(),
            outbound_timeout_ms: default_outbound_timeout_ms(),
            max_body_bytes: default_max_body_bytes(),
            max_concurrency: default_max_concurrency(),
        }
    }
}

impl ComponentDecl {
    /// The host limits for this component (defaults when not configured).
    pub fn limits(&self) -> Result<ComponentLimits> {
        match self.tool.get("synatra") {
            None => Ok(ComponentLimits::default()),
            Some(v) => v
                .clone()
                .try_into()
                .context("invalid [component.*.tool.synatra] table"),
        }
    }
}

impl Manifest {
    /// Reads and validates the manifest at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read manifest {}", path.display()))?;
        let mut manifest: Manifest = toml::from_str(&text)
            .with_context(|| format!("invalid manifest {}", path.display()))?;
        manifest.base_dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        manifest.validate()?;
        Ok(manifest)
    }

    fn validate(&self) -> Result<()> {
        if self.spin_manifest_version != 2 {
            bail!(
                "spin_manifest_version must be 2, found {}",
                self.spin_manifest_version
            );
        }
        for name in self.variables.keys() {
            check_variable_name(name)?;
        }
        for (name, decl) in &self.variables {
            if decl.required && decl.default.is_some() {
                bail!("variable `{name}` cannot be both required and have a default");
            }
        }
        let trigger_components = self
            .trigger
            .http
            .iter()
            .map(|t| &t.component)
            .chain(self.trigger.cron.iter().map(|t| &t.component));
        for id in trigger_components {
            if !self.component.contains_key(id) {
                bail!("trigger refers to unknown component `{id}`");
            }
        }
        for (id, component) in &self.component {
            component
                .limits()
                .with_context(|| format!("component `{id}`"))?;
            let unsupported = [
                (
                    "allowed_http_hosts (use allowed_outbound_hosts)",
                    !component.allowed_http_hosts.is_empty(),
                ),
                ("sqlite_databases", !component.sqlite_databases.is_empty()),
                ("ai_models", !component.ai_models.is_empty()),
                ("dependencies", !component.dependencies.is_empty()),
                ("profile", !component.profile.is_empty()),
            ];
            if let Some((field, _)) = unsupported.iter().find(|(_, used)| *used) {
                bail!("component `{id}`: `{field}` is not supported by the Synatra host");
            }
            for name in component.variables.keys() {
                check_variable_name(name).with_context(|| format!("component `{id}`"))?;
            }
        }
        for trigger in &self.trigger.http {
            if let RouteDecl::Private(p) = &trigger.route {
                if !p.private {
                    bail!(
                        "route table for `{}` must be `{{ private = true }}`",
                        trigger.component
                    );
                }
            }
        }
        Ok(())
    }

    /// Resolves a component's `source` against the manifest directory.
    pub fn source_path(&self, component: &ComponentDecl) -> PathBuf {
        self.base_dir.join(&component.source)
    }
}

/// Spin variable names are lower_snake: `[a-z][a-z0-9_]*`.
pub fn check_variable_name(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        bail!("invalid variable name `{name}`: use lower_snake_case");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest> {
        let m: Manifest = toml::from_str(text)?;
        m.validate()?;
        Ok(m)
    }

    const MINIMAL: &str = r#"
spin_manifest_version = 2
[application]
name = "t"
[[trigger.http]]
route = "/..."
component = "a"
[[trigger.http]]
route = { private = true }
component = "b"
[component.a]
source = "a.wasm"
[component.b]
source = "b.wasm"
[component.b.tool.synatra]
memory_limit_mb = 16
"#;

    #[test]
    fn minimal_manifest_parses_with_private_route_and_limits() {
        let m = parse(MINIMAL).unwrap();
        assert!(matches!(m.trigger.http[1].route, RouteDecl::Private(_)));
        assert_eq!(m.component["b"].limits().unwrap().memory_limit_mb, 16);
        assert_eq!(m.component["a"].limits().unwrap().timeout_ms, 30_000);
    }

    #[test]
    fn unknown_field_is_an_error_naming_it() {
        let text = MINIMAL.replace("[component.a]", "[component.a]\nbogus_field = 1");
        let err = format!("{:#}", parse(&text).unwrap_err());
        assert!(err.contains("bogus_field"), "{err}");
    }

    #[test]
    fn trigger_for_unknown_component_is_rejected() {
        let text = MINIMAL.replace("component = \"a\"", "component = \"zzz\"");
        let err = format!("{:#}", parse(&text).unwrap_err());
        assert!(err.contains("zzz"), "{err}");
    }

    #[test]
    fn spin_features_the_host_lacks_are_named_in_the_error() {
        let text = MINIMAL.replace(
            "[component.a]",
            "[component.a]\nsqlite_databases = [\"default\"]",
        );
        let err = format!("{:#}", parse(&text).unwrap_err());
        assert!(
            err.contains("sqlite_databases") && err.contains("not supported"),
            "{err}"
        );
        let tools = MINIMAL.replace(
            "[application]\nname = \"t\"",
            "[application]\nname = \"t\"\n[application.tool.lint]\nlevel = 1",
        );
        assert!(parse(&tools).is_ok());
    }

    #[test]
    fn variable_names_must_be_lower_snake() {
        assert!(check_variable_name("database_url").is_ok());
        assert!(check_variable_name("DatabaseUrl").is_err());
        assert!(check_variable_name("1abc").is_err());
    }
}
