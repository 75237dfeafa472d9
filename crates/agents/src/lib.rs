//! An agent's configuration (model, prompt, tools, sub-agents, limits), its
//! validation with errors that name the field, and semver release bumps.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub mod delegation;

/// Why `url` cannot be a provider's base URL, if it cannot: it must be
/// http(s) with a host, and carry no user, query or fragment (the request
/// path is appended to it, and a key must go only where it names).
pub fn base_url_problem(url: &str) -> Option<&'static str> {
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return Some("must be an http(s) URL");
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Some("must name a host");
    }
    if authority.contains('@') {
        return Some("must not carry a user or password");
    }
    if url.contains('?') || url.contains('#') {
        return Some("must not carry a query or fragment");
    }
    None
}

/// LLM provider families; `openai-compatible` is any server speaking the
/// OpenAI Chat Completions wire format at `base_url` (vLLM, Ollama, LiteLLM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Provider {
    Openai,
    Anthropic,
    Google,
    OpenaiCompatible,
}

impl Provider {
    /// All providers.
    pub const ALL: [Provider; 4] = [
        Provider::Openai,
        Provider::Anthropic,
        Provider::Google,
        Provider::OpenaiCompatible,
    ];

    /// The provider's name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Openai => "openai",
            Provider::Anthropic => "anthropic",
            Provider::Google => "google",
            Provider::OpenaiCompatible => "openai-compatible",
        }
    }

    /// Parses a provider name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// Reasoning effort for models that support it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReasoningEffort {
    Low,
    Medium,
    High,
}

/// `reasoning`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reasoning {
    pub effort: ReasoningEffort,
}

/// `model`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub provider: Provider,
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<Reasoning>,
}

/// `limits`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Model turns per run.
    pub max_iterations: u32,
    /// Tool calls the model may make in one turn.
    pub max_tool_calls_per_iteration: u32,
    /// Seconds a run may be active, not counting time spent waiting.
    pub max_active_time: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_iterations: 10,
            max_tool_calls_per_iteration: 10,
            max_active_time: 600,
        }
    }
}

/// A whole agent configuration (working copy or release).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelConfig>,
    #[serde(default)]
    pub system_prompt: String,
    /// Tool ids.
    #[serde(default)]
    pub tools: Vec<String>,
    /// Slugs or ids of agents this one may delegate to.
    #[serde(default)]
    pub subagents: Vec<String>,
    #[serde(default)]
    pub limits: Limits,
}

/// A problem with one field, named by its dotted path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn err(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

impl AgentConfig {
    /// Parses and validates `value`. A working copy may lack a model; a
    /// release (`for_release`) may not.
    pub fn parse(value: &Value, for_release: bool) -> Result<Self, Vec<FieldError>> {
        let config: AgentConfig = serde_path_to_error::deserialize(value.clone()).map_err(|e| {
            let path = e.path().to_string();
            let field = if path == "." {
                "config".to_string()
            } else {
                format!("config.{path}")
            };
            vec![err(field, e.into_inner().to_string())]
        })?;
        let errors = config.problems(for_release);
        if errors.is_empty() {
            Ok(config)
        } else {
            Err(errors)
        }
    }

    fn problems(&self, for_release: bool) -> Vec<FieldError> {
        let mut out = Vec::new();
        match &self.model {
            None if for_release => out.push(err("config.model", "a release needs a model")),
            None => {}
            Some(m) => {
                if m.model.trim().is_empty() || m.model.len() > 200 {
                    out.push(err("config.model.model", "must be 1 to 200 characters"));
                }
                if m.temperature.is_some_and(|t| !(0.0..=2.0).contains(&t)) {
                    out.push(err("config.model.temperature", "must be between 0 and 2"));
                }
                if m.top_p.is_some_and(|t| !(t > 0.0 && t <= 1.0)) {
                    out.push(err("config.model.top_p", "must be in (0, 1]"));
                }
                if m.max_output_tokens.is_some_and(|t| t == 0 || t > 1_000_000) {
                    out.push(err(
                        "config.model.max_output_tokens",
                        "must be 1 to 1000000",
                    ));
                }
                // Without one, the environment's credential supplies it.
                if let Some(problem) = m.base_url.as_deref().and_then(base_url_problem) {
                    out.push(err("config.model.base_url", problem))
                }
            }
        }
        if self.system_prompt.len() > 100_000 {
            out.push(err("config.system_prompt", "must be at most 100000 bytes"));
        }
        for (field, list, max) in [
            ("config.tools", &self.tools, 128),
            ("config.subagents", &self.subagents, 32),
        ] {
            if list.len() > max {
                out.push(err(field, format!("at most {max} entries")));
            }
            let mut seen = std::collections::HashSet::new();
            if list.iter().any(|x| x.trim().is_empty() || !seen.insert(x)) {
                out.push(err(field, "entries must be non-empty and unique"));
            }
        }
        let l = &self.limits;
        if !(1..=100).contains(&l.max_iterations) {
            out.push(err("config.limits.max_iterations", "must be 1 to 100"));
        }
        if !(1..=64).contains(&l.max_tool_calls_per_iteration) {
            out.push(err(
                "config.limits.max_tool_calls_per_iteration",
                "must be 1 to 64",
            ));
        }
        if !(1..=86_400).contains(&l.max_active_time) {
            out.push(err(
                "config.limits.max_active_time",
                "must be 1 to 86400 seconds",
            ));
        }
        out
    }
}

/// Which part of the version a release increments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bump {
    Major,
    Minor,
    Patch,
}

/// A release version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl Version {
    /// The next version after `self` (use `Version::default()` for the first release).
    pub fn bump(self, bump: Bump) -> Self {
        match bump {
            Bump::Major => Version {
                major: self.major + 1,
                minor: 0,
                patch: 0,
            },
            Bump::Minor => Version {
                major: self.major,
                minor: self.minor + 1,
                patch: 0,
            },
            Bump::Patch => Version {
                patch: self.patch + 1,
                ..self
            },
        }
    }

    /// Parses `MAJOR.MINOR.PATCH`.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.split('.').map(|p| p.parse::<u32>().ok());
        let v = Version {
            major: parts.next()??,
            minor: parts.next()??,
            patch: parts.next()??,
        };
        parts.next().is_none().then_some(v)
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_complete_config_parses_with_default_limits() {
        let c = AgentConfig::parse(
            &json!({ "model": { "provider": "openai", "model": "gpt-4o-mini", "temperature": 0.2 }, "system_prompt": "Be brief." }),
            true,
        )
        .unwrap();
        assert_eq!(c.limits, Limits::default());
        assert_eq!(c.model.unwrap().provider, Provider::Openai);
    }

    #[test]
    fn errors_name_the_field() {
        let e = AgentConfig::parse(
            &json!({ "model": { "provider": "openai", "model": "x", "temperatur": 1 } }),
            false,
        )
        .unwrap_err();
        assert_eq!(e[0].field, "config.model.temperatur", "{e:?}");
        assert!(e[0].message.contains("temperatur"));
        let e = AgentConfig::parse(
            &json!({ "model": { "provider": "openai", "model": "x", "temperature": 3 } }),
            false,
        )
        .unwrap_err();
        assert_eq!(e[0].field, "config.model.temperature");
        let e =
            AgentConfig::parse(&json!({ "limits": { "max_iterations": 0 } }), false).unwrap_err();
        assert_eq!(e[0].field, "config.limits.max_iterations");
        let e = AgentConfig::parse(
            &json!({ "model": { "provider": "martian", "model": "x" } }),
            false,
        )
        .unwrap_err();
        assert_eq!(e[0].field, "config.model.provider");
    }

    #[test]
    fn releases_need_a_model_but_not_a_base_url() {
        assert!(AgentConfig::parse(&json!({}), false).is_ok());
        assert_eq!(
            AgentConfig::parse(&json!({}), true).unwrap_err()[0].field,
            "config.model"
        );
        // The environment's credential may supply the URL.
        let compatible = json!({ "model": { "provider": "openai-compatible", "model": "llama" } });
        assert!(AgentConfig::parse(&compatible, true).is_ok());
    }

    #[test]
    fn base_urls_name_a_host_and_nothing_else() {
        for ok in [
            "http://localhost:11434/v1",
            "https://api.example.com",
            "http://10.0.0.5:8000/v1/",
        ] {
            assert_eq!(base_url_problem(ok), None, "{ok}");
        }
        for (bad, why) in [
            ("ftp://x", "http(s)"),
            ("localhost:11434", "http(s)"),
            ("https://", "host"),
            ("https:///v1", "host"),
            ("https://user:pw@api.example.com", "user"),
            ("https://evil.example@api.example.com/v1", "user"),
            ("https://api.example.com/v1?x=", "query"),
            ("https://api.example.com/v1#", "fragment"),
        ] {
            let problem = base_url_problem(bad).unwrap_or_default();
            assert!(problem.contains(why), "{bad}: {problem}");
        }
        let e = AgentConfig::parse(
            &json!({ "model": { "provider": "openai", "model": "m", "base_url": "https://a@b/v1" } }),
            true,
        )
        .unwrap_err();
        assert_eq!(e[0].field, "config.model.base_url");
    }

    #[test]
    fn versions_bump_semver_style() {
        let v0 = Version::default();
        assert_eq!(v0.bump(Bump::Patch).to_string(), "0.0.1");
        assert_eq!(v0.bump(Bump::Minor).to_string(), "0.1.0");
        let v = Version::parse("1.2.3").unwrap();
        assert_eq!(v.bump(Bump::Major).to_string(), "2.0.0");
        assert_eq!(v.bump(Bump::Minor).to_string(), "1.3.0");
        assert_eq!(v.bump(Bump::Patch).to_string(), "1.2.4");
        assert!(Version::parse("1.2").is_none());
        assert!(Version::parse("1.2.3.4").is_none());
        assert!(Version::parse("a.b.c").is_none());
    }
}
