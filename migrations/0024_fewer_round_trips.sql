-- Fewer statements on a run's path: a new thread with its first message and
-- run in one statement, and a run's last step recorded and the run ended in
-- one (with the step's last streamed text, which used to be a statement of
-- its own).

-- record_step gains `p_end`: when given (a run status), the run ends with it
-- right after the step is recorded, in the same statement (as `cancelled`
-- if someone asked the run to stop meanwhile), and the answer is `ended `
-- followed by the status it ended with.
-- The step's other events are now written before its messages, so a model
-- step's last streamed text precedes the message that records it.
DROP FUNCTION record_step(UUID, TEXT, INTEGER, BIGINT, INTEGER, TEXT, TEXT, JSONB, JSONB, JSONB,
                          JSONB, BIGINT, BIGINT);

CREATE FUNCTION record_step(
    p_run UUID, p_lease TEXT, p_lease_secs INTEGER, p_spent_ms BIGINT,
    p_seq INTEGER, p_kind TEXT, p_key TEXT, p_input JSONB, p_output JSONB,
    p_messages JSONB, p_events JSONB, p_tokens_in BIGINT, p_tokens_out BIGINT,
    p_end TEXT)
RETURNS text AS $$
DECLARE
    v_thread UUID;
    v_cancel BOOLEAN;
    v_message JSONB;
    v_id BIGINT;
    v_end TEXT;
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
    INSERT INTO run_events (thread_id, run_id, kind, data)
    SELECT v_thread, p_run, e.value->>'kind', e.value->'data'
    FROM jsonb_array_elements(p_events) WITH ORDINALITY AS e(value, n)
    ORDER BY e.n;
    FOR v_message IN SELECT value FROM jsonb_array_elements(p_messages) LOOP
        INSERT INTO thread_messages (thread_id, run_id, kind, content)
        VALUES (v_thread, p_run, v_message->>'kind', v_message->'content')
        RETURNING id INTO v_id;
        INSERT INTO run_events (thread_id, run_id, kind, data)
        VALUES (v_thread, p_run, 'message', jsonb_build_object(
            'id', v_id, 'kind', v_message->>'kind', 'content', v_message->'content'));
    END LOOP;
    IF p_end IS NOT NULL THEN
        v_end := CASE WHEN v_cancel THEN 'cancelled' ELSE p_end END;
        -- end_run announces the change itself.
        PERFORM end_run(p_run, p_lease, v_end, NULL, 0);
        RETURN 'ended ' || v_end;
    END IF;
    PERFORM pg_notify('synatra_events', v_thread::text);
    RETURN CASE WHEN v_cancel THEN 'cancel_requested' ELSE 'recorded' END;
END;
$$ LANGUAGE plpgsql;

-- Creates a thread with its first user message (`p_message`, the content)
-- and the ready run answering it (create_run: thread active, events,
-- notifications); returns both ids.
CREATE FUNCTION start_thread(
    p_org UUID, p_agent UUID, p_channel UUID, p_environment UUID, p_kind TEXT,
    p_subject TEXT, p_created_by UUID, p_message JSONB, p_release UUID, p_config JSONB,
    p_started_by UUID, p_started_by_key UUID)
RETURNS TABLE (new_thread UUID, new_run UUID) AS $$
DECLARE
    v_thread UUID;
    v_message BIGINT;
BEGIN
    INSERT INTO threads (org_id, agent_id, channel_id, environment_id, kind, subject, created_by)
    VALUES (p_org, p_agent, p_channel, p_environment, p_kind, p_subject, p_created_by)
    RETURNING id INTO v_thread;
    v_message := add_message(v_thread, NULL, 'user', p_message);
    RETURN QUERY SELECT v_thread, create_run(p_org, v_thread, p_agent, p_release, p_config,
                                             v_message, NULL, p_started_by, p_started_by_key);
END;
$$ LANGUAGE plpgsql;
