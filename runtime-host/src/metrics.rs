//! Prometheus metrics of the host, served on the admin port.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    component: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ComponentLabels {
    component: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    component: String,
    kind: String,
}

/// Host metrics: requests, latency, live instances and errors per component.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<ComponentLabels, Histogram>,
    errors: Family<ErrorLabels, Counter>,
    instances: Gauge<i64, std::sync::atomic::AtomicI64>,
    instantiations: Counter<u64, AtomicU64>,
    instantiate: Family<ComponentLabels, Histogram>,
    busy: Family<ComponentLabels, Histogram>,
    statements: Family<ComponentLabels, Histogram>,
    run_advances: Family<OutcomeLabels, Counter>,
    run_claims: Family<ClaimLabels, Counter>,
    empty_scans: Counter,
    outbound: Family<ConnectionLabels, Counter>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionLabels {
    /// `new` or `reused`.
    connection: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClaimLabels {
    /// `id` (a notified run) or `scan`.
    by: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("synatra");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<ComponentLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 18))
        });
        let errors = Family::<ErrorLabels, Counter>::default();
        let instances = Gauge::default();
        let instantiations = Counter::default();
        let seconds = || Histogram::new(exponential_buckets(0.00005, 2.0, 20));
        let instantiate = Family::<ComponentLabels, Histogram>::new_with_constructor(seconds);
        let busy = Family::<ComponentLabels, Histogram>::new_with_constructor(seconds);
        let statements = Family::<ComponentLabels, Histogram>::new_with_constructor(seconds);
        let run_advances = Family::<OutcomeLabels, Counter>::default();
        let run_claims = Family::<ClaimLabels, Counter>::default();
        let empty_scans = Counter::default();
        let outbound = Family::<ConnectionLabels, Counter>::default();
        registry.register(
            "run_claims",
            "Runs the dispatcher claimed, by how it found them: `id` (notified) or `scan`",
            run_claims.clone(),
        );
        registry.register(
            "empty_run_scans",
            "Scans by the dispatcher for a ready run that found none",
            empty_scans.clone(),
        );
        registry.register(
            "outbound_requests",
            "Requests to external hosts, by whether they opened a connection or reused a kept-alive one",
            outbound.clone(),
        );
        registry.register(
            "run_advances",
            "Agent-step invocations by outcome",
            run_advances.clone(),
        );
        registry.register("http_requests", "HTTP requests served", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "Time to response headers",
            latency.clone(),
        );
        registry.register(
            "component_errors",
            "Component failures by kind",
            errors.clone(),
        );
        registry.register(
            "component_instances",
            "Live component instances",
            instances.clone(),
        );
        registry.register(
            "component_instantiations",
            "Component instances created",
            instantiations.clone(),
        );
        registry.register(
            "component_instantiate_seconds",
            "Time to instantiate a component, per instance",
            instantiate.clone(),
        );
        registry.register(
            "component_busy_seconds",
            "Time an instance lives, from dispatch until its handler returns (requests from components included)",
            busy.clone(),
        );
        registry.register(
            "postgres_statement_seconds",
            "Time of one spin:postgres query or execute, per component",
            statements.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            errors,
            instances,
            instantiations,
            instantiate,
            busy,
            statements,
            run_advances,
            run_claims,
            empty_scans,
            outbound,
        }
    }
}

impl Metrics {
    /// Records a finished request.
    pub fn request(&self, component: &str, status: u16, seconds: f64) {
        self.requests
            .get_or_create(&RequestLabels {
                component: component.to_string(),
                status,
            })
            .inc();
        self.latency
            .get_or_create(&ComponentLabels {
                component: component.to_string(),
            })
            .observe(seconds);
    }

    /// Records a component failure (`trap`, `timeout`, `memory`, …).
    pub fn error(&self, component: &str, kind: &str) {
        self.errors
            .get_or_create(&ErrorLabels {
                component: component.to_string(),
                kind: kind.to_string(),
            })
            .inc();
    }

    /// Records how one advance of a durable run ended.
    pub fn run_advance(&self, outcome: &str) {
        self.run_advances
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Counts a run the dispatcher claimed, found `by` its notified id or a scan.
    pub fn run_claimed(&self, by: &str) {
        self.run_claims
            .get_or_create(&ClaimLabels { by: by.to_string() })
            .inc();
    }

    /// Counts a scan for a ready run that found none.
    pub fn empty_scan(&self) {
        self.empty_scans.inc();
    }

    /// Counts a request to an external host, sent on a `new` or `reused`
    /// connection.
    pub fn outbound_request(&self, connection: &str) {
        self.outbound
            .get_or_create(&ConnectionLabels {
                connection: connection.to_string(),
            })
            .inc();
    }

    /// Records how long instantiating `component` took.
    pub fn instantiated(&self, component: &str, seconds: f64) {
        self.instantiate
            .get_or_create(&ComponentLabels {
                component: component.to_string(),
            })
            .observe(seconds);
    }

    /// Records how long an instance of `component` lived.
    pub fn busy(&self, component: &str, seconds: f64) {
        self.busy
            .get_or_create(&ComponentLabels {
                component: component.to_string(),
            })
            .observe(seconds);
    }

    /// Records one Postgres statement of `component`.
    pub fn statement(&self, component: &str, seconds: f64) {
        self.statements
            .get_or_create(&ComponentLabels {
                component: component.to_string(),
            })
            .observe(seconds);
    }

    /// Counts a live instance until the guard drops.
    pub fn instance(&self) -> InstanceGuard {
        self.instances.inc();
        self.instantiations.inc();
        InstanceGuard(self.instances.clone())
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// Decrements the live-instance gauge on drop.
pub struct InstanceGuard(Gauge<i64, std::sync::atomic::AtomicI64>);

impl Drop for InstanceGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
