-- Recording a step and ending a run, each in one statement: the agent step
-- records every step with one call of record_step (one round trip, one
-- commit) and ends a run with end_run, which the host's dispatcher also
-- uses for a run it interrupted. The rules live here once.

-- Records step `p_seq` of the run `p_lease` holds: the lease fence (which
-- extends the lease by `p_lease_secs` and adds `p_spent_ms` of active time),
-- the step row, the thread messages it produces (`[{kind, content}]`, each
-- announced by a `message` event), other events (`[{kind, data}]`), token
-- usage (a model step also clears the retry count), and one notification.
-- Answers `recorded`, or `cancel_requested` when someone asked the run to
-- stop, or `lease_lost`, writing nothing, when the lease is gone. Recording
-- a seq twice is a unique violation.
CREATE FUNCTION record_step(
    p_run UUID, p_lease TEXT, p_lease_secs INTEGER, p_spent_ms BIGINT,
    p_seq INTEGER, p_kind TEXT, p_key TEXT, p_input JSONB, p_output JSONB,
    p_messages JSONB, p_events JSONB, p_tokens_in BIGINT, p_tokens_out BIGINT)
RETURNS text AS $$
DECLARE
    v_thread UUID;
    v_cancel BOOLEAN;
    v_message JSONB;
    v_id BIGINT;
BEGIN
    UPDATE runs SET lease_expires_at = now() + p_lease_secs * interval '1 second',
                    active_ms = active_ms + p_spent_ms, updated_at = now(),
                    tokens_in = tokens_in + p_tokens_in, tokens_out = tokens_out + p_tokens_out,
                    retries = CASE WHEN p_kind = 'llm' THEN 0 ELSE retries END
    WHERE id = p_run AND lease_owner = p_lease AND lease_expires_at > now() AND status = 'ready'
    RETURNING thread_id, cancel_requested INTO v_thread, v_cancel;
    IF NOT FOUND THEN
        RETURN 'lease_lost';
    END IF;
    INSERT INTO run_steps (run_id, seq, kind, idempotency_key, input, output)
    VALUES (p_run, p_seq, p_kind, p_key, p_input, p_output);
    FOR v_message IN SELECT value FROM jsonb_array_elements(p_messages) LOOP
        INSERT INTO thread_messages (thread_id, run_id, kind, content)
        VALUES (v_thread, p_run, v_message->>'kind', v_message->'content')
        RETURNING id INTO v_id;
        INSERT INTO run_events (thread_id, run_id, kind, data)
        VALUES (v_thread, p_run, 'message', jsonb_build_object(
            'id', v_id, 'kind', v_message->>'kind', 'content', v_message->'content'));
    END LOOP;
    INSERT INTO run_events (thread_id, run_id, kind, data)
    SELECT v_thread, p_run, e.value->>'kind', e.value->'data'
    FROM jsonb_array_elements(p_events) AS e;
    PERFORM pg_notify('synatra_events', v_thread::text);
    RETURN CASE WHEN v_cancel THEN 'cancel_requested' ELSE 'recorded' END;
END;
$$ LANGUAGE plpgsql;

-- Ends the run `p_lease` holds as `p_status` (completed, failed, cancelled
-- or rejected): releases the lease, shows `p_error` on the thread, gives the
-- thread the same status unless another of its runs is unfinished, and
-- announces the change (the run_endings trigger then cancels what the run
-- left pending and wakes a parent run). False when the lease is gone.
CREATE FUNCTION end_run(p_run UUID, p_lease TEXT, p_status TEXT, p_error TEXT, p_spent_ms BIGINT)
RETURNS boolean AS $$
DECLARE
    v_thread UUID;
    v_content JSONB;
    v_id BIGINT;
BEGIN
    UPDATE runs SET status = p_status, error = p_error, finished_at = now(), updated_at = now(),
                    active_ms = active_ms + p_spent_ms, lease_owner = NULL, lease_expires_at = NULL
    WHERE id = p_run AND lease_owner = p_lease AND lease_expires_at > now() AND status = 'ready'
    RETURNING thread_id INTO v_thread;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    IF p_error IS NOT NULL THEN
        v_content := jsonb_build_object('message', p_error);
        INSERT INTO thread_messages (thread_id, run_id, kind, content)
        VALUES (v_thread, p_run, 'error', v_content)
        RETURNING id INTO v_id;
        INSERT INTO run_events (thread_id, run_id, kind, data)
        VALUES (v_thread, p_run, 'message',
                jsonb_build_object('id', v_id, 'kind', 'error', 'content', v_content));
    END IF;
    UPDATE threads SET status = p_status, updated_at = now()
    WHERE id = v_thread
      AND NOT EXISTS (SELECT 1 FROM runs WHERE thread_id = v_thread AND status IN ('ready', 'waiting'));
    INSERT INTO run_events (thread_id, run_id, kind, data)
    VALUES (v_thread, p_run, 'run',
            jsonb_build_object('run_id', p_run, 'status', p_status, 'error', p_error));
    PERFORM pg_notify('synatra_events', v_thread::text);
    RETURN true;
END;
$$ LANGUAGE plpgsql;
