//! `fermyon:spin/key-value@2.0.0`, backed by the `spin_key_value` table of
//! the application database. A component may open only the stores listed in
//! its `key_value_stores`.

use sqlx::Row;
use wasmtime::component::Resource;

use crate::bindings::fermyon::spin::key_value::{Error, Host, HostStore};
use crate::instance::InstanceState;

/// The host side of a `store` resource: the label it was opened with.
pub struct KvStore {
    label: String,
}

/// Largest value a component may store, in bytes.
const MAX_VALUE_BYTES: usize = 1 << 20;

fn other(e: sqlx::Error) -> Error {
    Error::Other(e.to_string())
}

impl InstanceState {
    fn kv_label(&self, store: &Resource<KvStore>) -> wasmtime::Result<String> {
        Ok(self.table.get(store)?.label.clone())
    }
}

impl Host for InstanceState {}

impl HostStore for InstanceState {
    async fn open(&mut self, label: String) -> wasmtime::Result<Result<Resource<KvStore>, Error>> {
        if !self.component.key_value_stores.contains(&label) {
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
            .fetch_optional(&self.app.db)
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
        .execute(&self.app.db)
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
            .execute(&self.app.db)
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
        .fetch_one(&self.app.db)
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
        .fetch_all(&self.app.db)
        .await;
        Ok(result.map_err(other))
    }

    async fn drop(&mut self, this: Resource<KvStore>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
