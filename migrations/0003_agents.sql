-- Agents: a mutable working copy and immutable semver releases.

CREATE TABLE agents (
    id                 UUID        PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id             UUID        NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    slug               TEXT        NOT NULL,
    name               TEXT        NOT NULL,
    description        TEXT,
    icon               TEXT,
    working_copy       JSONB       NOT NULL DEFAULT '{}'::jsonb,
    current_release_id UUID,
    created_by         UUID        REFERENCES users (id) ON DELETE SET NULL,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (org_id, slug)
);

CREATE TABLE agent_releases (
    id         UUID        PRIMARY KEY DEFAULT gen_random_uuid(),
    agent_id   UUID        NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    version    TEXT        NOT NULL,
    major      INTEGER     NOT NULL,
    minor      INTEGER     NOT NULL,
    patch      INTEGER     NOT NULL,
    config     JSONB       NOT NULL,
    notes      TEXT        NOT NULL DEFAULT '',
    created_by UUID        REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (agent_id, version),
    UNIQUE (agent_id, major, minor, patch)
);

ALTER TABLE agents
    ADD CONSTRAINT agents_current_release_fk
    FOREIGN KEY (current_release_id) REFERENCES agent_releases (id) ON DELETE SET NULL;

-- Releases are immutable: no UPDATE ever changes one.
CREATE FUNCTION agent_releases_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'agent releases are immutable';
END;
$$;
CREATE TRIGGER agent_releases_no_update BEFORE UPDATE ON agent_releases
    FOR EACH ROW EXECUTE FUNCTION agent_releases_immutable();
