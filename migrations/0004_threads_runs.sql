-- Threads, their messages, durable runs with an append-only step table, and
-- the event log that the SSE endpoint streams.

CREATE TABLE threads (
    id             UUID        PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id         UUID        NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    agent_id       UUID        NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    channel_id     UUID        REFERENCES channels (id) ON DELETE SET NULL,
    environment_id UUID        REFERENCES environments (id) ON DELETE SET NULL,
    kind           TEXT        NOT NULL DEFAULT 'normal' CHECK (kind IN ('normal', 'playground')),
    subject        TEXT,
    status         TEXT        NOT NULL DEFAULT 'active' CHECK (status IN (
                       'active', 'waiting_approval', 'waiting_user', 'waiting_subagent',
                       'completed', 'failed', 'cancelled', 'rejected')),
    created_by     UUID        REFERENCES users (id) ON DELETE SET NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX threads_org ON threads (org_id, created_at DESC);

CREATE TABLE thread_messages (
    id         BIGSERIAL   PRIMARY KEY,
    thread_id  UUID        NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    run_id     UUID,
    kind       TEXT        NOT NULL CHECK (kind IN ('user', 'assistant', 'tool_call', 'tool_result', 'system', 'error')),
    content    JSONB       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX thread_messages_thread ON thread_messages (thread_id, id);

CREATE TABLE runs (
    id               UUID        PRIMARY KEY DEFAULT gen_random_uuid(),
    org_id           UUID        NOT NULL REFERENCES orgs (id) ON DELETE CASCADE,
    thread_id        UUID        NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    agent_id         UUID        NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    release_id       UUID        REFERENCES agent_releases (id) ON DELETE SET NULL,
    -- The configuration this run executes: a release's, or the working copy for playground threads.
    config           JSONB       NOT NULL,
    -- The conversation this run answers: thread messages with id <= input_upto.
    input_upto       BIGINT      NOT NULL,
    status           TEXT        NOT NULL DEFAULT 'ready' CHECK (status IN (
                         'ready', 'waiting', 'completed', 'failed', 'cancelled')),
    lease_owner      TEXT,
    lease_expires_at TIMESTAMPTZ,
    wake_at          TIMESTAMPTZ,
    attempts         INTEGER     NOT NULL DEFAULT 0,
    retries          INTEGER     NOT NULL DEFAULT 0,
    crashes          INTEGER     NOT NULL DEFAULT 0,
    cancel_requested BOOLEAN     NOT NULL DEFAULT false,
    tokens_in        BIGINT      NOT NULL DEFAULT 0,
    tokens_out       BIGINT      NOT NULL DEFAULT 0,
    active_ms        BIGINT      NOT NULL DEFAULT 0,
    error            TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at      TIMESTAMPTZ,
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX runs_ready ON runs (created_at) WHERE status = 'ready';
CREATE INDEX runs_thread ON runs (thread_id, created_at);

-- One row per executed step; (run_id, seq) makes a second recording of the same step impossible.
CREATE TABLE run_steps (
    run_id          UUID        NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq             INTEGER     NOT NULL,
    kind            TEXT        NOT NULL,
    idempotency_key TEXT        NOT NULL,
    input           JSONB       NOT NULL,
    output          JSONB       NOT NULL,
    recorded_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE run_events (
    id         BIGSERIAL   PRIMARY KEY,
    thread_id  UUID        NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    run_id     UUID,
    kind       TEXT        NOT NULL,
    data       JSONB       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX run_events_thread ON run_events (thread_id, id);
