-- Uploaded WIT tool components, by content: a tool version names one by its
-- SHA-256, so a pinned release keeps running exactly the bytes it had.
CREATE TABLE tool_components (
    org_id     UUID        NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    sha256     TEXT        NOT NULL,
    wasm       BYTEA       NOT NULL,
    imports    JSONB       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, sha256)
);
