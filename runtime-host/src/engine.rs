//! The wasmtime engine: pooling allocator, epoch ticker and the on-disk cache
//! of compiled components.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Interval of the epoch ticker; time limits are counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Engine settings derived from the manifest.
#[derive(Debug, Clone, Copy)]
pub struct EngineSettings {
    /// Largest memory any component may use, in bytes.
    pub max_memory_bytes: usize,
    /// Concurrent instances the pool reserves slots for.
    pub max_instances: u32,
    /// Whether to use the pooling allocator (else instances are allocated on demand).
    pub pooling: bool,
}

/// Builds the engine, trying the pooling allocator first.
pub fn build_engine(settings: EngineSettings) -> Result<Engine> {
    if !settings.pooling {
        return Ok(Engine::new(&base_config())?);
    }
    let mut config = base_config();
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(settings.max_instances)
        .total_core_instances(settings.max_instances * 8)
        .total_memories(settings.max_instances * 2)
        .total_tables(settings.max_instances * 4)
        .max_core_instances_per_component(64)
        .max_memories_per_component(8)
        .max_tables_per_component(16)
        .max_memory_size(settings.max_memory_bytes)
        // Reset the first pages of a slot with memset instead of madvise, so
        // the next instance does not fault them in again.
        .linear_memory_keep_resident(2 << 20)
        .table_keep_resident(64 << 10);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    match Engine::new(&config) {
        Ok(engine) => Ok(engine),
        Err(e) => {
            tracing::warn!(error = %e, "pooling allocator unavailable, using on-demand allocation");
            Ok(Engine::new(&base_config())?)
        }
    }
}

fn base_config() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on a background thread.
pub fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("epoch-ticker".into())
        .spawn(move || loop {
            std::thread::sleep(EPOCH_TICK);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => break,
            }
        })
        .expect("spawn epoch ticker");
}

/// Compiles components once and keeps the native code on disk, keyed by the
/// hash of the Wasm bytes and the engine's compatibility settings.
pub struct ComponentCache {
    dir: PathBuf,
}

impl ComponentCache {
    /// A cache rooted at `dir` (created when missing).
    pub fn new(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create cache directory {}", dir.display()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// Loads the compiled component for the Wasm file at `path`.
    pub fn load(&self, engine: &Engine, path: &Path) -> Result<Component> {
        let wasm = std::fs::read(path).with_context(|| {
            format!(
                "cannot read component {} (build it with `make components`)",
                path.display()
            )
        })?;
        self.load_bytes(engine, &wasm, &path.display().to_string())
    }

    /// Loads the compiled component for `wasm` (`label` names it in logs).
    pub fn load_bytes(&self, engine: &Engine, wasm: &[u8], label: &str) -> Result<Component> {
        let mut hasher = Sha256::new();
        hasher.update(wasm);
        let mut engine_hash = std::hash::DefaultHasher::new();
        std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut engine_hash);
        hasher.update(std::hash::Hasher::finish(&engine_hash).to_le_bytes());
        let key = hex(&hasher.finalize());
        let cached = self.dir.join(format!("{key}.cwasm"));
        if cached.exists() {
            // SAFETY: the file was written by `Component::serialize` of an
            // engine with the same compatibility hash (it is in the key), into
            // a directory only this host writes.
            match unsafe { Component::deserialize_file(engine, &cached) } {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::warn!(error = %e, file = %cached.display(), "discarding bad cache entry")
                }
            }
        }
        let started = std::time::Instant::now();
        let component = Component::new(engine, wasm)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("cannot compile component {label}"))?;
        tracing::info!(component = %label, ms = started.elapsed().as_millis() as u64, "compiled");
        if let Err(e) = store_atomically(&cached, &component.serialize()?) {
            // Caching is an optimisation: a failed write only costs a recompile.
            tracing::warn!(error = %e, file = %cached.display(), "cannot write cache entry");
        }
        Ok(component)
    }
}

/// Writes `bytes` to a temporary file unique to this process and thread, then
/// renames it over `path`, so hosts sharing a cache never see a partial entry
/// or race on each other's temporary file.
fn store_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!(
        "{}.{:?}.tmp",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
