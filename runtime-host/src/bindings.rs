//! Host bindings for the Spin interfaces of `wit/host.wit`.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "synatra:host/spin-host",
    imports: { default: async | trappable },
    with: {
        "spin:postgres/postgres.connection": crate::factors::postgres::PgConnection,
        "fermyon:spin/key-value.store": crate::factors::key_value::KvStore,
    },
});
