-- Per-org limits on work that waits (tool tests, event streams): a row per
-- slot taken, released when the work ends, or by its expiry if the holder
-- died. Taking a slot serialises on the (org, kind) pair, so the limit is
-- exact however many take at once.
CREATE TABLE org_slots (
    id         UUID        PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id     UUID        NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    kind       TEXT        NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX org_slots_org_kind ON org_slots (org_id, kind);

-- A slot of `p_kind` for `p_org` held for at most `p_secs`; NULL when the org
-- already holds `p_limit` live ones.
CREATE FUNCTION take_org_slot(p_org UUID, p_kind TEXT, p_limit INT, p_secs INT)
RETURNS UUID AS $$
DECLARE
    taken UUID;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended(p_org::text || '/' || p_kind, 0));
    DELETE FROM org_slots WHERE org_id = p_org AND kind = p_kind AND expires_at <= now();
    IF (SELECT count(*) FROM org_slots WHERE org_id = p_org AND kind = p_kind) >= p_limit THEN
        RETURN NULL;
    END IF;
    INSERT INTO org_slots (org_id, kind, expires_at)
    VALUES (p_org, p_kind, now() + p_secs * interval '1 second')
    RETURNING id INTO taken;
    RETURN taken;
END
$$ LANGUAGE plpgsql;
