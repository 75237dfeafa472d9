//! `fermyon:spin/variables`: application variables resolved at start-up.
//!
//! Values come, in Spin's order of precedence, from the runtime config
//! file's `[[variables_provider]]` entries in the order written (`type =
//! "static"` with `values`, or `type = "env"` with a `prefix`), then
//! `SPIN_VARIABLE_<NAME>` environment variables, then values the host
//! provides itself (such as `database_url` for the embedded database), then
//! the manifest default. A required variable without a value stops start-up
//! with an error naming it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use wasmtime::component::{HasSelf, Linker};

use super::{ConfigureContext, Factor, HasFactors, PrepareContext};
use bindings::fermyon::spin::variables::{add_to_linker, Error, Host};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "synatra:host/variables-host",
        imports: { default: async | trappable },
    });
}
use crate::manifest::{check_variable_name, Manifest};

/// One `[[variables_provider]]` of a Spin runtime config file.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum VariablesProvider {
    /// Fixed values.
    Static { values: BTreeMap<String, String> },
    /// Environment variables `<PREFIX>_<NAME>` (`SPIN_VARIABLE` by default).
    Env { prefix: Option<String> },
}

impl VariablesProvider {
    fn get(&self, name: &str) -> Option<String> {
        match self {
            Self::Static { values } => values.get(name).cloned(),
            Self::Env { prefix } => env_variable(prefix.as_deref(), name),
        }
    }
}

fn env_variable(prefix: Option<&str>, name: &str) -> Option<String> {
    let prefix = prefix.unwrap_or("SPIN_VARIABLE");
    std::env::var(format!("{prefix}_{}", name.to_ascii_uppercase())).ok()
}

/// Resolved application-level variables.
#[derive(Debug, Clone, Default)]
pub struct AppVariables {
    values: HashMap<String, String>,
}

impl AppVariables {
    /// Resolves every `[variables]` entry of the manifest.
    pub fn resolve(
        manifest: &Manifest,
        providers: &[VariablesProvider],
        host_provided: &BTreeMap<String, String>,
    ) -> Result<Self> {
        for provider in providers {
            if let VariablesProvider::Static { values } = provider {
                for name in values.keys() {
                    check_variable_name(name).context("runtime config [[variables_provider]]")?;
                }
            }
        }
        let mut values = HashMap::new();
        for (name, decl) in &manifest.variables {
            let env_name = format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase());
            let value = providers
                .iter()
                .find_map(|p| p.get(name))
                .or_else(|| env_variable(None, name))
                .or_else(|| host_provided.get(name).cloned())
                .or_else(|| decl.default.clone());
            match value {
                Some(v) => {
                    values.insert(name.clone(), v);
                }
                None if decl.required => bail!(
                    "required variable `{name}` has no value: set {env_name} or add it to the runtime config"
                ),
                None => {}
            }
        }
        Ok(Self { values })
    }

    /// The value of application variable `name`, if it has one.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Expands `{{ name }}` references in `template`.
    pub fn expand(&self, template: &str) -> Result<String> {
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find("}}") else {
                bail!("unterminated `{{{{` in `{template}`");
            };
            let name = after[..end].trim();
            let value = self
                .values
                .get(name)
                .with_context(|| format!("`{template}` refers to undefined variable `{name}`"))?;
            out.push_str(value);
            rest = &after[end + 2..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Resolves a component's `[component.X.variables]` templates.
    pub fn component_variables(
        &self,
        templates: &BTreeMap<String, String>,
    ) -> Result<HashMap<String, String>> {
        templates
            .iter()
            .map(|(k, t)| Ok((k.clone(), self.expand(t)?)))
            .collect()
    }
}

/// The variables factor: a component reads the values of its own
/// `[component.X.variables]`, expanded once at start-up.
pub struct VariablesFactor;

/// The variables one component may read.
#[derive(Default)]
pub struct ComponentVariables(Arc<HashMap<String, String>>);

impl Factor for VariablesFactor {
    type AppState = HashMap<String, Arc<HashMap<String, String>>>;
    type InstanceState = ComponentVariables;

    fn configure(ctx: &ConfigureContext) -> Result<Self::AppState> {
        ctx.manifest
            .component
            .iter()
            .map(|(id, decl)| {
                let values = ctx
                    .variables
                    .component_variables(&decl.variables)
                    .with_context(|| format!("component `{id}`"))?;
                Ok((id.clone(), Arc::new(values)))
            })
            .collect()
    }

    fn prepare(app: &Self::AppState, ctx: &PrepareContext) -> ComponentVariables {
        ComponentVariables(app.get(ctx.component).cloned().unwrap_or_default())
    }

    fn link<T: HasFactors>(
        linker: &mut Linker<T>,
        get: fn(&mut T) -> &mut ComponentVariables,
    ) -> Result<()> {
        Ok(add_to_linker::<T, HasSelf<ComponentVariables>>(
            linker, get,
        )?)
    }
}

impl Host for ComponentVariables {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, Error>> {
        if check_variable_name(&name).is_err() {
            return Ok(Err(Error::InvalidName(name)));
        }
        Ok(self.0.get(&name).cloned().ok_or(Error::Undefined(name)))
    }
}

/// For local development only: values for required secret variables that
/// nothing else sets, generated once and kept in `path` (mode 0600) so they
/// survive restarts.
pub fn development_secrets(
    manifest: &Manifest,
    path: &std::path::Path,
    provided: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>> {
    use std::io::Read;
    let mut stored: BTreeMap<String, String> = match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).with_context(|| format!("invalid {}", path.display()))?,
        Err(_) => BTreeMap::new(),
    };
    let mut changed = false;
    for (name, decl) in &manifest.variables {
        let env_set = std::env::var_os(format!("SPIN_VARIABLE_{}", name.to_ascii_uppercase()))
            .is_some()
            || std::env::var_os(name.to_ascii_uppercase()).is_some();
        if decl.required
            && decl.secret
            && !env_set
            && !provided.contains_key(name)
            && !stored.contains_key(name)
        {
            let mut buf = [0u8; 32];
            std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
            stored.insert(
                name.clone(),
                buf.iter().map(|b| format!("{b:02x}")).collect(),
            );
            tracing::warn!(variable = %name, file = %path.display(), "generated a development secret");
            changed = true;
        }
    }
    if changed {
        // Owner-only from the moment it exists.
        use std::io::Write;
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        file.write_all(toml::to_string(&stored)?.as_bytes())?;
    }
    Ok(stored)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> AppVariables {
        AppVariables {
            values: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn templates_expand_with_surrounding_text() {
        let v = vars(&[("host", "db"), ("port", "5432")]);
        assert_eq!(
            v.expand("postgres://{{ host }}:{{port}}").unwrap(),
            "postgres://db:5432"
        );
        assert_eq!(v.expand("plain").unwrap(), "plain");
    }

    #[test]
    fn undefined_reference_names_the_variable() {
        let err = vars(&[]).expand("{{ missing }}").unwrap_err().to_string();
        assert!(err.contains("missing"), "{err}");
        assert!(vars(&[]).expand("{{ open").is_err());
    }
}
