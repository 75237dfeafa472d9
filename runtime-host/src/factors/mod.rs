//! Host capabilities as factors, in the spirit of Spin's `Factor`: each
//! capability is configured once per application from the manifest
//! ([`Factor::configure`]), builds the state of every instance it serves
//! ([`Factor::prepare`]) and links its WIT interfaces ([`Factor::link`]).
//! A factor owns its state; nothing else reads it. Adding a capability is
//! its module plus one line in the [`factors!`] list at the end of this file.

pub mod key_value;
pub mod outbound_http;
pub mod postgres;
pub mod variables;

use std::sync::Arc;

use anyhow::Result;
use sqlx::PgPool;
use wasmtime::component::Linker;
use wasmtime_wasi_http::WasiHttpView;

use crate::allowed_hosts::AllowedHosts;
use crate::manifest::{ComponentLimits, Manifest};
use crate::metrics::Metrics;
use outbound_http::InProcess;
use variables::AppVariables;

/// What a factor may read of the application when it is configured.
pub struct ConfigureContext<'a> {
    pub manifest: &'a Manifest,
    /// The host's metrics, for factors that report their own.
    pub metrics: &'a Arc<Metrics>,
    /// Resolved application variables.
    pub variables: &'a AppVariables,
    /// The application database (key-value store).
    pub db: &'a PgPool,
    /// Pool size per Postgres address.
    pub pg_max_connections: u32,
}

/// What a factor may read of the instance it prepares state for.
pub struct PrepareContext<'a> {
    /// The component's id in the manifest.
    pub component: &'a str,
    /// Its expanded `allowed_outbound_hosts`.
    pub allowed_hosts: &'a Arc<AllowedHosts>,
    pub limits: &'a ComponentLimits,
    /// Nested in-process calls above this instance (service chaining).
    pub depth: u32,
    /// Serves requests to the app itself and to its components.
    pub in_process: &'a Arc<dyn InProcess>,
}

/// One host capability.
pub trait Factor: 'static {
    /// Configuration of the whole application, built once at load.
    type AppState: Send + Sync + 'static;
    /// What one instance holds (connections, opened stores…).
    type InstanceState: Send + 'static;

    /// Reads the manifest once; an error stops start-up.
    fn configure(ctx: &ConfigureContext) -> Result<Self::AppState>;

    /// Builds the state of one instance.
    fn prepare(app: &Self::AppState, ctx: &PrepareContext) -> Self::InstanceState;

    /// Adds the capability's interfaces to `linker`; host calls reach the
    /// factor's instance state through `get`.
    fn link<T: HasFactors>(
        linker: &mut Linker<T>,
        get: fn(&mut T) -> &mut Self::InstanceState,
    ) -> Result<()>;
}

/// A store's data that carries every factor's instance state. wasi:http
/// needs the instance's WASI resource table, hence the `WasiHttpView` bound.
pub trait HasFactors: WasiHttpView + Send + 'static {
    fn factors(&mut self) -> &mut InstanceStates;
}

/// Declares the host's factors: one field each in [`AppStates`] and
/// [`InstanceStates`], configured, prepared and linked in this order.
macro_rules! factors {
    ($($field:ident: $factor:ty),* $(,)?) => {
        /// Every factor's application state.
        pub struct AppStates {
            $(pub $field: <$factor as Factor>::AppState,)*
        }

        /// Every factor's state in one instance.
        pub struct InstanceStates {
            $(pub $field: <$factor as Factor>::InstanceState,)*
        }

        impl AppStates {
            /// Configures every factor for the application.
            pub fn configure(ctx: &ConfigureContext) -> Result<Self> {
                Ok(Self { $($field: <$factor as Factor>::configure(ctx)?,)* })
            }

            /// Prepares every factor's state for one instance.
            pub fn prepare(&self, ctx: &PrepareContext) -> InstanceStates {
                InstanceStates {
                    $($field: <$factor as Factor>::prepare(&self.$field, ctx),)*
                }
            }
        }

        /// Links every factor's interfaces.
        pub fn link<T: HasFactors>(linker: &mut Linker<T>) -> Result<()> {
            $(<$factor as Factor>::link(linker, |t: &mut T| &mut t.factors().$field)?;)*
            Ok(())
        }
    };
}

factors! {
    variables: variables::VariablesFactor,
    key_value: key_value::KeyValueFactor,
    postgres: postgres::PostgresFactor,
    outbound_http: outbound_http::OutboundHttpFactor,
}
