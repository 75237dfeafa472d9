-- The one rule for which run is due and how it is leased. The host's
-- dispatcher, the API's inline advancer (plain `spin up`) and the tick route
-- all claim through this function: the oldest run that is ready (unleased,
-- or its lease expired after a crash) or whose durable timer is due, of one
-- org or of all, locked with SKIP LOCKED so concurrent claimers never take
-- the same run. PL/pgSQL, so each session plans the statement once.
CREATE FUNCTION claim_next_run(p_lease TEXT, p_lease_secs INT, p_org UUID DEFAULT NULL)
RETURNS UUID AS $$
DECLARE
    claimed UUID;
BEGIN
    UPDATE runs SET status = 'ready', lease_owner = p_lease,
           lease_expires_at = now() + p_lease_secs * interval '1 second',
           attempts = attempts + 1, wake_at = NULL, updated_at = now()
     WHERE id = (
         SELECT id FROM runs
          WHERE (p_org IS NULL OR org_id = p_org)
            AND ((status = 'ready'
                  AND (wake_at IS NULL OR wake_at <= now())
                  AND (lease_expires_at IS NULL OR lease_expires_at < now()))
                 OR (status = 'waiting' AND wake_at <= now()))
          ORDER BY created_at
          FOR UPDATE SKIP LOCKED
          LIMIT 1)
    RETURNING id INTO claimed;
    RETURN claimed;
END;
$$ LANGUAGE plpgsql;
