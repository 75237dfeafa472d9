-- `create_run` read a parent's `started_by` and `started_by_key` with two
-- subqueries inside its INSERT. For a run with no parent (every run a user
-- or trigger starts) a custom plan folds them away, so the generic plan
-- always looked dearer and PL/pgSQL planned the INSERT again on every call
-- (pg_stat_statements: as many plans as calls, a third of the statement's
-- time). The parent is now read by its own statement, only when there is
-- one, and the INSERT keeps one generic plan. Otherwise the definition is
-- 0030's.
CREATE OR REPLACE FUNCTION create_run(
    p_org UUID, p_thread UUID, p_agent UUID, p_release UUID, p_config JSONB,
    p_input_upto BIGINT, p_parent UUID, p_started_by UUID, p_started_by_key UUID)
RETURNS UUID AS $$
DECLARE
    v_id UUID;
    v_parent_by UUID;
    v_parent_key UUID;
BEGIN
    IF p_parent IS NOT NULL THEN
        SELECT started_by, started_by_key INTO v_parent_by, v_parent_key
          FROM runs WHERE id = p_parent;
    END IF;
    INSERT INTO runs (org_id, thread_id, agent_id, release_id, config, input_upto, parent_run_id,
                      started_by, started_by_key)
    VALUES (p_org, p_thread, p_agent, p_release, p_config, p_input_upto, p_parent,
            coalesce(p_started_by, v_parent_by), coalesce(p_started_by_key, v_parent_key))
    RETURNING id INTO v_id;
    UPDATE threads SET status = 'active', updated_at = now()
    WHERE id = p_thread AND status <> 'active';
    INSERT INTO run_events (thread_id, run_id, kind, data)
    VALUES (p_thread, v_id, 'run', jsonb_build_object('run_id', v_id, 'status', 'ready'));
    PERFORM pg_notify('synatra_runs', v_id::text);
    RETURN v_id;
END;
$$ LANGUAGE plpgsql;
