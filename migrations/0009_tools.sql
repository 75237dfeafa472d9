-- User tools (JavaScript for now), versioned by content hash, with approval settings.
CREATE TABLE tools (
    id                    UUID        PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id                UUID        NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    name                  TEXT        NOT NULL,
    definition            JSONB       NOT NULL,
    version               TEXT        NOT NULL,
    created_by            UUID        REFERENCES users (id) ON DELETE SET NULL,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (org_id, name)
);

-- Every version a tool has had, so a release can pin one.
CREATE TABLE tool_versions (
    tool_id    UUID        NOT NULL REFERENCES tools (id) ON DELETE CASCADE,
    version    TEXT        NOT NULL,
    definition JSONB       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tool_id, version)
);
