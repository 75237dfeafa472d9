-- Runs sleeping on a durable timer are found by their wake time.
CREATE INDEX runs_due ON runs (wake_at) WHERE status = 'waiting';
