-- Host-owned tables: the key-value store behind fermyon:spin/key-value.
CREATE TABLE spin_key_value (
    store      TEXT        NOT NULL,
    key        TEXT        NOT NULL,
    value      BYTEA       NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (store, key)
);
