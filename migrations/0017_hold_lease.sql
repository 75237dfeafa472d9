-- Extending a run's lease before a call that may outlast it (a long model
-- or tool call), as the agent step does: only the holder of an unexpired
-- lease on a ready run extends it, and a hold is never shortened. Answers
-- whether the lease is still held. (The host's dispatcher renews the leases
-- it holds differently: one lease length from now while the host lives.)
CREATE FUNCTION hold_lease(p_run UUID, p_lease TEXT, p_secs INTEGER)
RETURNS boolean AS $$
DECLARE
    v_held BOOLEAN;
BEGIN
    UPDATE runs SET lease_expires_at = greatest(lease_expires_at, now() + p_secs * interval '1 second')
    WHERE id = p_run AND lease_owner = p_lease AND lease_expires_at > now() AND status = 'ready'
    RETURNING true INTO v_held;
    RETURN coalesce(v_held, false);
END;
$$ LANGUAGE plpgsql;
