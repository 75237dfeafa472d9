-- Model URLs an org admin allows agents of one environment to name for a
-- provider (`model.base_url`). A stored key still goes only to its
-- credential's own URL (or the provider's default); an allowed agent URL
-- is called without it.
ALTER TABLE llm_credentials ADD COLUMN allowed_base_urls JSONB NOT NULL DEFAULT '[]';
