-- A claim hands over the run it leased: what the agent step needs to advance
-- it (its state, its recorded step outputs in order, the thread messages it
-- answers), as one JSON value. The dispatcher claims and loads in one
-- statement and passes the value on, so the agent step starts without a
-- query of its own; a caller that only claimed (the API's inline advancer)
-- lets the agent step load it with the same function.
--
-- PL/pgSQL, so it reads what the claim in the same statement wrote.
CREATE FUNCTION load_run(p_run UUID, p_lease TEXT) RETURNS jsonb AS $$
DECLARE
    loaded jsonb;
BEGIN
    SELECT jsonb_build_object(
               'id', r.id, 'org_id', r.org_id, 'thread_id', r.thread_id,
               'environment_id', t.environment_id, 'channel_id', t.channel_id,
               'config', r.config, 'input_upto', r.input_upto, 'status', r.status,
               'cancel_requested', r.cancel_requested, 'active_ms', r.active_ms,
               'retries', r.retries,
               'leased', coalesce(r.lease_owner = p_lease AND r.lease_expires_at > now(), false),
               'steps', coalesce((SELECT jsonb_agg(s.output ORDER BY s.seq)
                                  FROM run_steps s WHERE s.run_id = r.id), '[]'),
               'history', coalesce((SELECT jsonb_agg(jsonb_build_array(m.kind, m.content) ORDER BY m.id)
                                    FROM thread_messages m
                                    WHERE m.thread_id = r.thread_id AND m.id <= r.input_upto), '[]'))
      INTO loaded
      FROM runs r JOIN threads t ON t.id = r.thread_id
     WHERE r.id = p_run;
    RETURN loaded;
END;
$$ LANGUAGE plpgsql;
