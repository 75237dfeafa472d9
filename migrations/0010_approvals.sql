-- Approvals: a tool call that its tool's policy makes wait for a person.
-- Runs may end as `rejected`; threads show approval requests as messages.
ALTER TABLE runs DROP CONSTRAINT runs_status_check;
ALTER TABLE runs ADD CONSTRAINT runs_status_check CHECK (status IN (
    'ready', 'waiting', 'completed', 'failed', 'cancelled', 'rejected'));

ALTER TABLE thread_messages DROP CONSTRAINT thread_messages_kind_check;
ALTER TABLE thread_messages ADD CONSTRAINT thread_messages_kind_check CHECK (kind IN (
    'user', 'assistant', 'tool_call', 'tool_result', 'system', 'error', 'widget', 'human_request',
    'approval'));

CREATE TABLE approvals (
    id             UUID        PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id         UUID        NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    thread_id      UUID        NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    run_id         UUID        NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    call_id        TEXT        NOT NULL,
    tool_name      TEXT        NOT NULL,
    tool_version   TEXT        NOT NULL,
    policy         TEXT        NOT NULL CHECK (policy IN ('owner-only', 'any-member')),
    self_approval  BOOLEAN     NOT NULL,
    review         BOOLEAN     NOT NULL,
    -- The arguments as the model gave them, their schema, and its rationale.
    params         JSONB       NOT NULL,
    params_schema  JSONB       NOT NULL,
    rationale      TEXT,
    status         TEXT        NOT NULL DEFAULT 'pending'
                               CHECK (status IN ('pending', 'approved', 'rejected', 'timed_out', 'cancelled')),
    -- The arguments the tool runs with (edited by the reviewer, or as given).
    final_params   JSONB,
    comment        TEXT,
    decided_by     UUID        REFERENCES users (id) ON DELETE SET NULL,
    decided_at     TIMESTAMPTZ,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at     TIMESTAMPTZ NOT NULL
);
CREATE INDEX approvals_org ON approvals (org_id, created_at DESC);
CREATE INDEX approvals_pending ON approvals (run_id) WHERE status = 'pending';

-- Every event in an approval's life, append-only.
CREATE TABLE approval_audit (
    id          BIGSERIAL   PRIMARY KEY,
    approval_id UUID        NOT NULL REFERENCES approvals (id) ON DELETE CASCADE,
    action      TEXT        NOT NULL CHECK (action IN ('requested', 'approved', 'rejected', 'timed_out', 'cancelled')),
    actor_user  UUID        REFERENCES users (id) ON DELETE SET NULL,
    actor_key   UUID,
    comment     TEXT,
    params      JSONB,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX approval_audit_approval ON approval_audit (approval_id, id);

-- However a run ends (finished, failed, rejected, cancelled by any path), its
-- approvals still pending are cancelled, with an audit entry.
CREATE FUNCTION cancel_pending_approvals() RETURNS trigger AS $$
BEGIN
    WITH cancelled AS (
        UPDATE approvals SET status = 'cancelled', decided_at = now()
        WHERE run_id = NEW.id AND status = 'pending'
        RETURNING id
    )
    INSERT INTO approval_audit (approval_id, action, comment)
    SELECT id, 'cancelled', 'the run ended as ' || NEW.status FROM cancelled;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER runs_end_cancels_approvals
    AFTER UPDATE OF status ON runs
    FOR EACH ROW
    WHEN (NEW.status NOT IN ('ready', 'waiting') AND OLD.status IN ('ready', 'waiting'))
    EXECUTE FUNCTION cancel_pending_approvals();
