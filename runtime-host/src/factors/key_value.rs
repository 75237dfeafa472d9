//! `fermyon:spin/key-value@2.0.0`, backed by the `spin_key_value` table of
//! the application database. A component may open only the stores listed in
//! its `key_value_stores`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use anyhow::Result;
use sqlx::{PgPool, Row};
use wasmtime::component::{HasSelf, Linker, Resource, ResourceTable};

use super::{ConfigureContext, Factor, HasFactors, PrepareContext};
use bindings::fermyon::spin::key_value::{add_to_linker, Error, Host, HostStore};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "synatra:host/key-value-host",
        imports: { default: async | trappable },
        with: { "fermyon:spin/key-value.store": super::KvStore },
    });
}

/// The host side of a `store` resource: the label it was opened with.
pub struct KvStore {
    label: String,
}

/// Largest value a component may store, in bytes.
const MAX_VALUE_BYTES: usize = 1 << 20;

fn other(e: sqlx::Error) -> Error {
    Error::Other(e.to_string())
}

/// The key-value factor.
pub struct KeyValueFactor;

/// The application's key-value settings: the database and the stores each
/// component may open.
pub struct KeyValueApp {
    db: PgPool,
    stores: HashMap<String, Arc<HashSet<String>>>,
}

/// One instance's key-value access and its opened stores.
pub struct KeyValueInstance {
    db: PgPool,
    allowed: Arc<HashSet<String>>,
    table: ResourceTable,
}

impl Factor for KeyValueFactor {
    type AppState = KeyValueApp;
    type InstanceState = KeyValueInstance;

    fn configure(ctx: &ConfigureContext) -> Result<KeyValueApp> {
        let stores = ctx
            .manifest
            .component
            .iter()
            .map(|(id, decl)| {
                let labels = decl.key_value_stores.iter().cloned().collect();
                (id.clone(), Arc::new(labels))
            })
            .collect();
        Ok(KeyValueApp {
            db: ctx.db.clone(),
            stores,
        })
    }

    fn prepare(app: &KeyValueApp, ctx: &PrepareContext) -> KeyValueInstance {
        KeyValueInstance {
            db: app.db.clone(),
            allowed: app.stores.get(ctx.component).cloned().unwrap_or_default(),
            table: ResourceTable::new(),
        }
    }

    fn link<T: HasFactors>(
        linker: &mut Linker<T>,
        get: fn(&mut T) -> &mut KeyValueInstance,
    ) -> Result<()> {
        Ok(add_to_linker::<T, HasSelf<KeyValueInstance>>(linker, get)?)
    }
}

impl KeyValueInstance {
    fn kv_label(&self, store: &Resource<KvStore>) -> wasmtime::Result<String> {
        Ok(self.table.get(store)?.label.clone())
    }
}

impl Host for KeyValueInstance {}

impl HostStore for KeyValueInstance {
    async fn open(&mut self, label: String) -> wasmtime::Result<Result<Resource<KvStore>, Error>> {
        if !self.allowed.contains(&label) {
            return Ok(Err(Error::AccessDenied));
        }
        Ok(Ok(self.table.push(KvStore { label })?))
    }

    async fn get(
        &mut self,
        this: Resource<KvStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let label = self.kv_label(&this)?;
        let row = sqlx::query("SELECT value FROM spin_key_value WHERE store = $1 AND key = $2")
            .bind(label)
            .bind(key)
            .fetch_optional(&self.db)
            .await;
        Ok(row
            .map(|r| r.map(|r| r.get::<Vec<u8>, _>(0)))
            .map_err(other))
    }

    async fn set(
        &mut self,
        this: Resource<KvStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        if value.len() > MAX_VALUE_BYTES {
            return Ok(Err(Error::Other(format!(
                "value of {} bytes exceeds the {MAX_VALUE_BYTES}-byte limit",
                value.len()
            ))));
        }
        let label = self.kv_label(&this)?;
        let result = sqlx::query(
            "INSERT INTO spin_key_value (store, key, value) VALUES ($1, $2, $3)
             ON CONFLICT (store, key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
        )
        .bind(label)
        .bind(key)
        .bind(value)
        .execute(&self.db)
        .await;
        Ok(result.map(|_| ()).map_err(other))
    }

    async fn delete(
        &mut self,
        this: Resource<KvStore>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let label = self.kv_label(&this)?;
        let result = sqlx::query("DELETE FROM spin_key_value WHERE store = $1 AND key = $2")
            .bind(label)
            .bind(key)
            .execute(&self.db)
            .await;
        Ok(result.map(|_| ()).map_err(other))
    }

    async fn exists(
        &mut self,
        this: Resource<KvStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let label = self.kv_label(&this)?;
        let result = sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM spin_key_value WHERE store = $1 AND key = $2)",
        )
        .bind(label)
        .bind(key)
        .fetch_one(&self.db)
        .await;
        Ok(result.map_err(other))
    }

    async fn get_keys(
        &mut self,
        this: Resource<KvStore>,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let label = self.kv_label(&this)?;
        let result = sqlx::query_scalar::<_, String>(
            "SELECT key FROM spin_key_value WHERE store = $1 ORDER BY key",
        )
        .bind(label)
        .fetch_all(&self.db)
        .await;
        Ok(result.map_err(other))
    }

    async fn drop(&mut self, this: Resource<KvStore>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
