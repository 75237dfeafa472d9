-- LLM provider credentials per org and environment. The API key is sealed
-- (AES-256-GCM) by the gateway component, the only holder of ENCRYPTION_KEY.
CREATE TABLE llm_credentials (
    org_id         UUID        NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    environment_id UUID        NOT NULL REFERENCES environments (id) ON DELETE CASCADE,
    provider       TEXT        NOT NULL CHECK (provider IN ('openai', 'anthropic', 'google', 'openai-compatible')),
    api_key_sealed BYTEA,
    api_key_hint   TEXT,
    base_url       TEXT,
    updated_by     UUID        REFERENCES users (id) ON DELETE SET NULL,
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, environment_id, provider)
);
