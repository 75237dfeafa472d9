-- Who started each run (a person or an API key), so a tool's self_approval
-- setting also covers someone continuing another person's thread; and the
-- index approvals are settled by.
ALTER TABLE runs ADD COLUMN started_by UUID REFERENCES users (id) ON DELETE SET NULL;
ALTER TABLE runs ADD COLUMN started_by_key UUID;
CREATE INDEX approvals_run ON approvals (run_id);
