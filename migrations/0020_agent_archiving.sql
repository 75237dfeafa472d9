-- Nothing but deleting the org erases history: an agent with threads is
-- archived (hidden from lists, no new threads, its threads readable), and
-- the database itself refuses to delete an agent that threads or runs still
-- name, so threads, runs, messages, approvals and the approval audit can no
-- longer cascade away with one. Deleting the org still removes everything
-- (threads and runs cascade from the org in the same statement).
ALTER TABLE agents ADD COLUMN archived_at TIMESTAMPTZ;

ALTER TABLE threads DROP CONSTRAINT threads_agent_id_fkey,
    ADD CONSTRAINT threads_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES agents (id);
ALTER TABLE runs DROP CONSTRAINT runs_agent_id_fkey,
    ADD CONSTRAINT runs_agent_id_fkey FOREIGN KEY (agent_id) REFERENCES agents (id);
