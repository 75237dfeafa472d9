-- Widgets and human requests: new message kinds, and the requests a run waits on.
ALTER TABLE thread_messages DROP CONSTRAINT thread_messages_kind_check;
ALTER TABLE thread_messages ADD CONSTRAINT thread_messages_kind_check CHECK (kind IN (
    'user', 'assistant', 'tool_call', 'tool_result', 'system', 'error', 'widget', 'human_request'));

CREATE TABLE human_requests (
    id           UUID        PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id       UUID        NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    thread_id    UUID        NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    run_id       UUID        NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    call_id      TEXT        NOT NULL,
    request      JSONB       NOT NULL,
    status       TEXT        NOT NULL DEFAULT 'pending'
                             CHECK (status IN ('pending', 'responded', 'cancelled', 'skipped')),
    response     JSONB,
    responded_by UUID        REFERENCES users (id) ON DELETE SET NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    responded_at TIMESTAMPTZ
);
CREATE INDEX human_requests_pending ON human_requests (thread_id) WHERE status = 'pending';
