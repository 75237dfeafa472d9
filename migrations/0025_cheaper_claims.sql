-- Cheaper writes on a run's path, same rules:
-- - claiming counts each org's runs in progress once per claim, not once per
--   claimable run (the same turn-taking order and limits as 0021);
-- - a new run leaves an already active thread's row alone (a new thread is
--   created active), saving a row version per thread started.

CREATE OR REPLACE FUNCTION claim_next_run(p_lease TEXT, p_lease_secs INT, p_org UUID DEFAULT NULL,
                                          p_org_limit INT DEFAULT NULL, p_host TEXT DEFAULT NULL)
RETURNS UUID AS $$
DECLARE
    claimed UUID;
BEGIN
    UPDATE runs SET status = 'ready', lease_owner = p_lease,
           lease_expires_at = now() + p_lease_secs * interval '1 second',
           attempts = attempts + 1, wake_at = NULL, updated_at = now()
     WHERE id = (
         WITH busy AS (
             SELECT l.org_id, count(*) AS n,
                    count(*) FILTER (WHERE p_host IS NULL OR starts_with(l.lease_owner, p_host)) AS here
               FROM runs l
              WHERE l.status = 'ready' AND l.lease_owner IS NOT NULL AND l.lease_expires_at > now()
              GROUP BY l.org_id)
         SELECT r.id FROM runs r LEFT JOIN busy ON busy.org_id = r.org_id
          WHERE (p_org IS NULL OR r.org_id = p_org)
            AND ((r.status = 'ready'
                  AND (r.wake_at IS NULL OR r.wake_at <= now())
                  AND (r.lease_expires_at IS NULL OR r.lease_expires_at < now()))
                 OR (r.status = 'waiting' AND r.wake_at <= now()))
            AND (p_org_limit IS NULL OR coalesce(busy.here, 0) < p_org_limit)
          ORDER BY coalesce(busy.n, 0), r.created_at
          FOR UPDATE OF r SKIP LOCKED
          LIMIT 1)
    RETURNING id INTO claimed;
    RETURN claimed;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION create_run(
    p_org UUID, p_thread UUID, p_agent UUID, p_release UUID, p_config JSONB,
    p_input_upto BIGINT, p_parent UUID, p_started_by UUID, p_started_by_key UUID)
RETURNS UUID AS $$
DECLARE
    v_id UUID;
BEGIN
    INSERT INTO runs (org_id, thread_id, agent_id, release_id, config, input_upto, parent_run_id,
                      started_by, started_by_key)
    VALUES (p_org, p_thread, p_agent, p_release, p_config, p_input_upto, p_parent,
            coalesce(p_started_by, (SELECT started_by FROM runs WHERE id = p_parent)),
            coalesce(p_started_by_key, (SELECT started_by_key FROM runs WHERE id = p_parent)))
    RETURNING id INTO v_id;
    UPDATE threads SET status = 'active', updated_at = now()
    WHERE id = p_thread AND status <> 'active';
    INSERT INTO run_events (thread_id, run_id, kind, data)
    VALUES (p_thread, v_id, 'run', jsonb_build_object('run_id', v_id, 'status', 'ready'));
    PERFORM pg_notify('synatra_events', p_thread::text);
    PERFORM pg_notify('synatra_runs', v_id::text);
    RETURN v_id;
END;
$$ LANGUAGE plpgsql;
