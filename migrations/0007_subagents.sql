-- Sub-agent delegation: a child run answers one tool call of its parent.
ALTER TABLE runs ADD COLUMN parent_run_id UUID REFERENCES runs (id) ON DELETE SET NULL;
CREATE INDEX runs_parent ON runs (parent_run_id) WHERE parent_run_id IS NOT NULL;
