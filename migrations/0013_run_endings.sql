-- However a run ends (completed, failed, rejected, or cancelled by any path:
-- the agent step, a thread's cancellation, the dispatcher after a crash), in
-- the same transaction: its pending approvals and human requests are
-- cancelled, and a parent run waiting for it as a sub-agent is woken.
CREATE OR REPLACE FUNCTION cancel_pending_approvals() RETURNS trigger AS $$
DECLARE
    parent RECORD;
BEGIN
    WITH cancelled AS (
        UPDATE approvals SET status = 'cancelled', decided_at = now()
        WHERE run_id = NEW.id AND status = 'pending'
        RETURNING id
    )
    INSERT INTO approval_audit (approval_id, action, comment)
    SELECT id, 'cancelled', 'the run ended as ' || NEW.status FROM cancelled;

    UPDATE human_requests SET status = 'cancelled', responded_at = now()
    WHERE run_id = NEW.id AND status = 'pending';

    IF NEW.parent_run_id IS NOT NULL THEN
        UPDATE runs SET status = 'ready', updated_at = now()
        WHERE id = NEW.parent_run_id AND status = 'waiting'
        RETURNING id, thread_id INTO parent;
        IF FOUND THEN
            UPDATE threads SET status = 'active', updated_at = now() WHERE id = parent.thread_id;
            PERFORM pg_notify('synatra_runs', parent.id::text);
        END IF;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
