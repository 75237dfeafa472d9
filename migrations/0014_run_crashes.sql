-- A failed advance of a run (the agent step crashed, trapped or could not
-- record), in one place for the host's dispatcher and for components that
-- advance runs themselves under plain `spin up`: release the lease with an
-- exponential backoff, and fail the run (and its thread, with an error
-- message) after `max_crashes`.
CREATE FUNCTION record_run_crash(p_run UUID, p_lease TEXT, p_error TEXT, max_crashes INTEGER)
RETURNS void AS $$
DECLARE
    r RECORD;
    message TEXT;
BEGIN
    UPDATE runs SET crashes = crashes + 1, lease_owner = NULL, lease_expires_at = NULL,
                    wake_at = now() + (power(2, crashes) * interval '1 second'), updated_at = now()
    WHERE id = p_run AND lease_owner = p_lease
    RETURNING crashes, thread_id INTO r;
    IF NOT FOUND OR r.crashes < max_crashes THEN
        RETURN;
    END IF;
    message := 'the agent step failed ' || r.crashes || ' times; last error: ' || p_error;
    UPDATE runs SET status = 'failed', error = message, finished_at = now() WHERE id = p_run;
    UPDATE threads SET status = 'failed', updated_at = now() WHERE id = r.thread_id;
    INSERT INTO thread_messages (thread_id, run_id, kind, content)
    VALUES (r.thread_id, p_run, 'error', jsonb_build_object('message', message));
END;
$$ LANGUAGE plpgsql;
