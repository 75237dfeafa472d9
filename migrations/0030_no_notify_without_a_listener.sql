-- No more NOTIFY on `synatra_events`. Nothing has listened on it: event
-- streams read the event log by polling (a component cannot LISTEN), so
-- each step, message and run's start or end announced itself to no one.
-- That was not free. PostgreSQL wakes every listening backend of the
-- database for each notification, whatever its channel, and each woken
-- backend (the dispatchers' listeners) runs a transaction to read the
-- queue: about one wake-up and a third of a transaction per step. And a
-- notifying transaction holds the global notify-queue lock from its commit
-- until the commit is flushed, so with synchronous commit the steps of
-- concurrent runs committed one at a time. The functions below are the live
-- definitions (0025, 0026, 0029) without it; `synatra_runs` (dispatchers
-- claim new runs) and `synatra_cancel` stay.

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
    PERFORM pg_notify('synatra_runs', v_id::text);
    RETURN v_id;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION add_message(p_thread UUID, p_run UUID, p_kind TEXT, p_content JSONB)
RETURNS BIGINT AS $$
DECLARE
    v_id BIGINT;
BEGIN
    INSERT INTO thread_messages (thread_id, run_id, kind, content)
    VALUES (p_thread, p_run, p_kind, p_content)
    RETURNING id INTO v_id;
    RETURN v_id;
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION announce_run_end(p_run UUID, p_thread UUID, p_status TEXT, p_error TEXT)
RETURNS void AS $$
BEGIN
    IF p_error IS NOT NULL THEN
        INSERT INTO thread_messages (thread_id, run_id, kind, content)
        VALUES (p_thread, p_run, 'error', jsonb_build_object('message', p_error));
    END IF;
    UPDATE threads SET status = p_status, updated_at = now()
    WHERE id = p_thread
      AND NOT EXISTS (SELECT 1 FROM runs WHERE thread_id = p_thread AND status IN ('ready', 'waiting'));
    INSERT INTO run_events (thread_id, run_id, kind, data)
    VALUES (p_thread, p_run, 'run',
            jsonb_build_object('run_id', p_run, 'status', p_status, 'error', p_error));
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION record_step(
    p_run UUID, p_lease TEXT, p_lease_secs INTEGER, p_spent_ms BIGINT,
    p_seq INTEGER, p_kind TEXT, p_key TEXT, p_input JSONB, p_output JSONB,
    p_messages JSONB, p_events JSONB, p_tokens_in BIGINT, p_tokens_out BIGINT,
    p_end TEXT)
RETURNS text AS $$
DECLARE
    v_thread UUID;
    v_cancel BOOLEAN;
    v_end TEXT;
BEGIN
    IF p_end IS NULL THEN
        UPDATE runs SET lease_expires_at = now() + p_lease_secs * interval '1 second',
                        active_ms = active_ms + p_spent_ms, updated_at = now(),
                        tokens_in = tokens_in + p_tokens_in, tokens_out = tokens_out + p_tokens_out,
                        retries = CASE WHEN p_kind = 'llm' THEN 0 ELSE retries END
        WHERE id = p_run AND lease_owner = p_lease AND lease_expires_at > now() AND status = 'ready'
        RETURNING thread_id, cancel_requested INTO v_thread, v_cancel;
    ELSE
        -- A cancel requested meanwhile wins over the ending the step asks for.
        UPDATE runs SET status = CASE WHEN cancel_requested THEN 'cancelled' ELSE p_end END,
                        error = NULL, finished_at = now(), updated_at = now(),
                        active_ms = active_ms + p_spent_ms,
                        tokens_in = tokens_in + p_tokens_in, tokens_out = tokens_out + p_tokens_out,
                        retries = CASE WHEN p_kind = 'llm' THEN 0 ELSE retries END,
                        lease_owner = NULL, lease_expires_at = NULL
        WHERE id = p_run AND lease_owner = p_lease AND lease_expires_at > now() AND status = 'ready'
        RETURNING thread_id, status INTO v_thread, v_end;
    END IF;
    IF NOT FOUND THEN
        RETURN 'lease_lost';
    END IF;
    INSERT INTO run_steps (run_id, seq, kind, idempotency_key, input, output)
    VALUES (p_run, p_seq, p_kind, p_key, p_input, p_output);
    INSERT INTO run_events (thread_id, run_id, kind, data)
    SELECT v_thread, p_run, e.value->>'kind', e.value->'data'
    FROM jsonb_array_elements(p_events) WITH ORDINALITY AS e(value, n)
    ORDER BY e.n;
    INSERT INTO thread_messages (thread_id, run_id, kind, content)
    SELECT v_thread, p_run, m.value->>'kind', m.value->'content'
    FROM jsonb_array_elements(p_messages) WITH ORDINALITY AS m(value, n)
    ORDER BY m.n;
    IF p_end IS NOT NULL THEN
        PERFORM announce_run_end(p_run, v_thread, v_end, NULL);
        RETURN 'ended ' || v_end;
    END IF;
    RETURN CASE WHEN v_cancel THEN 'cancel_requested' ELSE 'recorded' END;
END;
$$ LANGUAGE plpgsql;
