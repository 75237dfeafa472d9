-- A run's last step ends the run in the same UPDATE that records the step.
-- Before, `record_step` updated the run's row and then called `end_run`,
-- which updated it again in the same transaction: a second row version,
-- and (the row being this transaction's own) a re-check of every foreign
-- key of `runs`. What follows an ending (the error message, the thread's
-- status, the `run` event, the NOTIFY) now has one home, `announce_run_end`,
-- used by both.

CREATE FUNCTION announce_run_end(p_run UUID, p_thread UUID, p_status TEXT, p_error TEXT)
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
    PERFORM pg_notify('synatra_events', p_thread::text);
END;
$$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION end_run(p_run UUID, p_lease TEXT, p_status TEXT, p_error TEXT, p_spent_ms BIGINT)
RETURNS boolean AS $$
DECLARE
    v_thread UUID;
BEGIN
    UPDATE runs SET status = p_status, error = p_error, finished_at = now(), updated_at = now(),
                    active_ms = active_ms + p_spent_ms, lease_owner = NULL, lease_expires_at = NULL
    WHERE id = p_run AND lease_owner = p_lease AND lease_expires_at > now() AND status = 'ready'
    RETURNING thread_id INTO v_thread;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM announce_run_end(p_run, v_thread, p_status, p_error);
    RETURN true;
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
    PERFORM pg_notify('synatra_events', v_thread::text);
    RETURN CASE WHEN v_cancel THEN 'cancel_requested' ELSE 'recorded' END;
END;
$$ LANGUAGE plpgsql;
