-- Claiming takes turns between orgs: of the claimable runs, the one whose
-- org has the fewest runs being advanced right now (leased, lease alive)
-- goes first, oldest first among equals; with `p_org_limit`, an org that
-- already has that many on the claiming host (leases starting `p_host`;
-- on all hosts when it is NULL) is skipped, so one org's long runs can never
-- hold every worker of a host. (The limit is soft: two claims at the same
-- instant may both see the org one below it.) Otherwise the rule of 0015 is
-- unchanged.
CREATE INDEX runs_leased_org ON runs (org_id) WHERE status = 'ready' AND lease_owner IS NOT NULL;

DROP FUNCTION claim_next_run(TEXT, INT, UUID);
CREATE FUNCTION claim_next_run(p_lease TEXT, p_lease_secs INT, p_org UUID DEFAULT NULL,
                               p_org_limit INT DEFAULT NULL, p_host TEXT DEFAULT NULL)
RETURNS UUID AS $$
DECLARE
    claimed UUID;
BEGIN
    UPDATE runs SET status = 'ready', lease_owner = p_lease,
           lease_expires_at = now() + p_lease_secs * interval '1 second',
           attempts = attempts + 1, wake_at = NULL, updated_at = now()
     WHERE id = (
         SELECT r.id FROM runs r
         CROSS JOIN LATERAL (
             SELECT count(*) AS n,
                    count(*) FILTER (WHERE p_host IS NULL OR starts_with(l.lease_owner, p_host)) AS here
               FROM runs l
              WHERE l.org_id = r.org_id AND l.status = 'ready' AND l.lease_owner IS NOT NULL
                AND l.lease_expires_at > now()) busy
          WHERE (p_org IS NULL OR r.org_id = p_org)
            AND ((r.status = 'ready'
                  AND (r.wake_at IS NULL OR r.wake_at <= now())
                  AND (r.lease_expires_at IS NULL OR r.lease_expires_at < now()))
                 OR (r.status = 'waiting' AND r.wake_at <= now()))
            AND (p_org_limit IS NULL OR busy.here < p_org_limit)
          ORDER BY busy.n, r.created_at
          FOR UPDATE OF r SKIP LOCKED
          LIMIT 1)
    RETURNING id INTO claimed;
    RETURN claimed;
END;
$$ LANGUAGE plpgsql;
