//! Names and limits the host and the components agree on, written once.
//! Plain constants, no dependencies: the native host and every Wasm
//! component use this crate. The SQL functions in `migrations/` notify the
//! same channels (a test below checks they name no other).

/// PostgreSQL `NOTIFY` channels.
pub mod channels {
    /// A run became ready (payload: the run's id): dispatchers claim it.
    pub const RUNS: &str = "synatra_runs";
    /// Someone asked a run to stop (payload: the run's id): the host
    /// executing it interrupts the step.
    pub const CANCEL: &str = "synatra_cancel";
    /// Every channel.
    pub const ALL: [&str; 2] = [RUNS, CANCEL];
}

/// HTTP headers on calls between components and the host.
pub mod headers {
    /// Carries the `service_secret` variable on calls to private routes.
    pub const SERVICE_SECRET: &str = "x-synatra-service-secret";
    /// How long the callee may take, in milliseconds (a sandboxed tool call).
    pub const DEADLINE_MS: &str = "x-synatra-deadline-ms";
    /// The `run_id:seq` of the step a side effect belongs to.
    pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
}

/// Private services: components (and one host service) reached in-process
/// through `http://<name>.spin.internal`.
pub mod services {
    /// The component that advances runs.
    pub const AGENT_STEP: &str = "agent-step";
    /// Its route: `POST {run_id, lease, lease_secs, run?}` (`run`: the
    /// run as the claim loaded it, SQL `load_run`).
    pub const AGENT_STEP_ADVANCE: &str = "http://agent-step.spin.internal/advance";
    /// The gateway's model-call route (it adds the org's credential).
    pub const GATEWAY_LLM: &str = "http://gateway.spin.internal/llm/complete";
    /// The gateway's route storing provider credentials.
    pub const GATEWAY_CREDENTIALS: &str = "http://gateway.spin.internal/llm-credentials";
    /// The JavaScript tool sandbox.
    pub const TOOL_JS_RUN: &str = "http://tool-js.spin.internal/run";
    /// The host's runner of users' WIT tool components (served by
    /// `synatra up`, not a manifest component).
    pub const WIT_TOOLS: &str = "wasm-tools";
    /// Its route.
    pub const WIT_TOOLS_RUN: &str = "http://wasm-tools.spin.internal/run";
}

/// Application variables (`[variables]` in `spin.toml`) read by more than
/// one party.
pub mod variables {
    /// The secret private routes require.
    pub const SERVICE_SECRET: &str = "service_secret";
    /// Sub-agent levels allowed below a thread's own run (the API checks
    /// saved configurations, the agent step each delegation).
    pub const MAX_DELEGATION_DEPTH: &str = "max_delegation_depth";
}

/// Scheduling limits shared by every party that advances runs.
pub mod limits {
    /// Failed advances (traps, timeouts, unreachable step) before a run is
    /// failed for good (SQL `record_run_crash` applies it).
    pub const MAX_CRASHES: i32 = 5;

    /// How often a lease of `lease_secs` is renewed while its holder works
    /// (the host's dispatcher, the agent step during a call): every third
    /// of it, so two renewals may fail before it lapses, at least every
    /// 100 ms.
    pub fn renew_interval(lease_secs: i32) -> std::time::Duration {
        let lease_ms = u64::from(lease_secs.max(1).unsigned_abs()) * 1000;
        std::time::Duration::from_millis((lease_ms / 3).max(100))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Channels that earlier migrations notified, with the migration from
    /// which the live schema no longer does (no one listened on
    /// `synatra_events`: event streams poll the log).
    const RETIRED: [(&str, &str); 1] = [("synatra_events", "0030")];

    #[test]
    fn migrations_notify_only_known_channels() {
        // Read at run time: a test binary cached from another checkout must
        // read this checkout's migrations.
        let root = std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo test");
        let dir = std::path::Path::new(&root).join("../../migrations");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).expect("migrations/") {
            let entry = entry.unwrap();
            let file = entry.file_name().to_string_lossy().into_owned();
            let sql = std::fs::read_to_string(entry.path()).unwrap();
            for (i, _) in sql.match_indices("pg_notify('") {
                let name = sql[i + 11..].split('\'').next().unwrap();
                let retired_before = RETIRED
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, from)| *from);
                match retired_before {
                    Some(from) => assert!(
                        file.as_str() < from,
                        "{file} notifies {name}, retired from migration {from}"
                    ),
                    None => assert!(channels::ALL.contains(&name), "unknown channel {name}"),
                }
                seen += 1;
            }
        }
        assert!(seen > 0, "the migrations notify no channel by name");
        assert!(services::AGENT_STEP_ADVANCE.contains(services::AGENT_STEP));
        assert!(services::WIT_TOOLS_RUN.contains(services::WIT_TOOLS));
    }
}
