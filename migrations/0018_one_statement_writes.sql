-- Writes that took several round trips, each now one statement: a thread
-- message with the event announcing it, and a new run with the thread's
-- status, the run's event and the notifications that wake streams and a
-- dispatcher.

-- Appends a message to a thread, announced by a `message` event
-- ({id, kind, content}); returns the message's id.
CREATE FUNCTION add_message(p_thread UUID, p_run UUID, p_kind TEXT, p_content JSONB)
RETURNS BIGINT AS $$
DECLARE
    v_id BIGINT;
BEGIN
    INSERT INTO thread_messages (thread_id, run_id, kind, content)
    VALUES (p_thread, p_run, p_kind, p_content)
    RETURNING id INTO v_id;
    INSERT INTO run_events (thread_id, run_id, kind, data)
    VALUES (p_thread, p_run, 'message',
            jsonb_build_object('id', v_id, 'kind', p_kind, 'content', p_content));
    PERFORM pg_notify('synatra_events', p_thread::text);
    RETURN v_id;
END;
$$ LANGUAGE plpgsql;

-- Creates a ready run answering the thread's messages up to `p_input_upto`
-- (a delegated run inherits its parent's starter), sets the thread active,
-- announces the run and wakes a dispatcher; returns the run's id.
CREATE FUNCTION create_run(
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
    UPDATE threads SET status = 'active', updated_at = now() WHERE id = p_thread;
    INSERT INTO run_events (thread_id, run_id, kind, data)
    VALUES (p_thread, v_id, 'run', jsonb_build_object('run_id', v_id, 'status', 'ready'));
    PERFORM pg_notify('synatra_events', p_thread::text);
    PERFORM pg_notify('synatra_runs', v_id::text);
    RETURN v_id;
END;
$$ LANGUAGE plpgsql;
