-- A dispatcher told a run's id (NOTIFY synatra_runs) claims that run by its
-- primary key instead of scanning for one. The scan of `claim_next_run`
-- reads every entry of the partial index `runs_ready`, and each claimed or
-- ended run leaves a dead entry there until vacuum runs: with 64 runs kept
-- in flight, a scan read 1.3k entries per claim after 5 s and 7k after 25 s.
-- The scan stays for what no notification names (expired leases, due
-- timers, runs another host left) and for turn-taking between orgs. The org
-- limit of a claim by id is counted by the claiming host (its own runs in
-- flight), not by reading leases: `runs_leased_org` collects dead entries
-- the same way.
--
-- What makes a run claimable, what counts as in progress and what a claim
-- writes are now written once, as functions both claims use (the two SQL
-- ones are inlined by the planner, so the partial indexes still apply; the
-- others are PL/pgSQL, whose plans are kept per connection).

-- Ready with no live lease and no pending wake-up, or waiting with its
-- timer due.
CREATE FUNCTION run_is_claimable(p_status TEXT, p_wake_at TIMESTAMPTZ, p_lease_expires_at TIMESTAMPTZ)
RETURNS boolean AS $$
    SELECT (p_status = 'ready' AND (p_wake_at IS NULL OR p_wake_at <= now())
            AND (p_lease_expires_at IS NULL OR p_lease_expires_at < now()))
        OR (p_status = 'waiting' AND p_wake_at <= now())
$$ LANGUAGE sql STABLE;

-- Being advanced right now: ready, leased, the lease alive.
CREATE FUNCTION run_in_progress(p_status TEXT, p_lease_owner TEXT, p_lease_expires_at TIMESTAMPTZ)
RETURNS boolean AS $$
    SELECT p_status = 'ready' AND p_lease_owner IS NOT NULL AND p_lease_expires_at > now()
$$ LANGUAGE sql STABLE;

-- Leases a run the caller has locked and found claimable; NULL for NULL.
CREATE FUNCTION lease_run(p_run UUID, p_lease TEXT, p_lease_secs INT)
RETURNS UUID AS $$
DECLARE
    leased UUID;
BEGIN
    UPDATE runs SET status = 'ready', lease_owner = p_lease,
           lease_expires_at = now() + p_lease_secs * interval '1 second',
           attempts = attempts + 1, wake_at = NULL, updated_at = now()
     WHERE id = p_run
    RETURNING id INTO leased;
    RETURN leased;
END;
$$ LANGUAGE plpgsql;

-- As in 0025, through the functions above.
CREATE OR REPLACE FUNCTION claim_next_run(p_lease TEXT, p_lease_secs INT, p_org UUID DEFAULT NULL,
                                          p_org_limit INT DEFAULT NULL, p_host TEXT DEFAULT NULL)
RETURNS UUID AS $$
BEGIN
    RETURN lease_run((
        WITH busy AS (
            SELECT l.org_id, count(*) AS n,
                   count(*) FILTER (WHERE p_host IS NULL OR starts_with(l.lease_owner, p_host)) AS here
              FROM runs l
             WHERE run_in_progress(l.status, l.lease_owner, l.lease_expires_at)
             GROUP BY l.org_id)
        SELECT r.id FROM runs r LEFT JOIN busy ON busy.org_id = r.org_id
         WHERE (p_org IS NULL OR r.org_id = p_org)
           AND run_is_claimable(r.status, r.wake_at, r.lease_expires_at)
           AND (p_org_limit IS NULL OR coalesce(busy.here, 0) < p_org_limit)
         ORDER BY coalesce(busy.n, 0), r.created_at
         FOR UPDATE OF r SKIP LOCKED
         LIMIT 1), p_lease, p_lease_secs);
END;
$$ LANGUAGE plpgsql;

-- Claims run `p_run` if it is claimable, nobody else is claiming it, and its
-- org is not one of `p_full_orgs` (those the caller already advances as
-- many runs of as it allows). One row (the run's org, whether it was
-- claimed) for a claimable run, none otherwise.
CREATE FUNCTION claim_run(p_run UUID, p_lease TEXT, p_lease_secs INT, p_full_orgs UUID[])
RETURNS TABLE (org_id UUID, claimed BOOLEAN) AS $$
DECLARE
    v_org UUID;
BEGIN
    SELECT r.org_id INTO v_org FROM runs r
     WHERE r.id = p_run AND run_is_claimable(r.status, r.wake_at, r.lease_expires_at)
       FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    org_id := v_org;
    claimed := v_org <> ALL (p_full_orgs);
    IF claimed THEN
        PERFORM lease_run(p_run, p_lease, p_lease_secs);
    END IF;
    RETURN NEXT;
END;
$$ LANGUAGE plpgsql;
