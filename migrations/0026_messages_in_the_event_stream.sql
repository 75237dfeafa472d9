-- A thread's messages are part of its event stream without a copy. Until now
-- each message was written twice: into thread_messages, and into run_events
-- as a `message` event carrying the same content. Now message ids and event
-- ids come from one sequence, and the stream (the view `thread_events`)
-- reads both tables in id order, a message showing as the `message` event
-- ({id, kind, content}) it used to be written as. Messages written before
-- this migration keep the events that announced them and are marked so,
-- not to be streamed twice.

SELECT setval('run_events_id_seq', greatest(
    (SELECT max(id) FROM run_events), (SELECT max(id) FROM thread_messages), 1));
ALTER TABLE thread_messages ALTER COLUMN id SET DEFAULT nextval('run_events_id_seq');
DROP SEQUENCE thread_messages_id_seq;
ALTER TABLE thread_messages ADD COLUMN announced_by_event BOOLEAN NOT NULL DEFAULT true;
ALTER TABLE thread_messages ALTER COLUMN announced_by_event SET DEFAULT false;

-- A thread's event stream, oldest first by id: what `GET .../events` sends.
CREATE VIEW thread_events AS
    SELECT id, thread_id, run_id, kind, data FROM run_events
    UNION ALL
    SELECT id, thread_id, run_id, 'message',
           jsonb_build_object('id', id, 'kind', kind, 'content', content)
    FROM thread_messages WHERE NOT announced_by_event;

CREATE OR REPLACE FUNCTION add_message(p_thread UUID, p_run UUID, p_kind TEXT, p_content JSONB)
RETURNS BIGINT AS $$
DECLARE
    v_id BIGINT;
BEGIN
    INSERT INTO thread_messages (thread_id, run_id, kind, content)
    VALUES (p_thread, p_run, p_kind, p_content)
    RETURNING id INTO v_id;
    PERFORM pg_notify('synatra_events', p_thread::text);
    RETURN v_id;
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
    IF p_error IS NOT NULL THEN
        INSERT INTO thread_messages (thread_id, run_id, kind, content)
        VALUES (v_thread, p_run, 'error', jsonb_build_object('message', p_error));
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

-- As in 0024; a step's messages are now one INSERT (in order, after the
-- step's other events) instead of a message and its event each.
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
    INSERT INTO thread_messages (thread_id, run_id, kind, content)
    SELECT v_thread, p_run, m.value->>'kind', m.value->'content'
    FROM jsonb_array_elements(p_messages) WITH ORDINALITY AS m(value, n)
    ORDER BY m.n;
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
