-- A model call's credential travels with its run. The gateway read the
-- org's credential row for each model call: two statements per run of two
-- calls, on the path between a step and the next. The claim now loads the
-- row with the run (`load_run`'s `credential`), the agent step passes it
-- on, and the gateway uses it without a read when its `url_seal` opens.
--
-- `url_seal` is written by the gateway alone: an AES-256-GCM seal of nothing
-- whose associated data is the row's org, environment, provider, sealed key
-- (if any), base URL and allowed URLs. The agent step never holds the encryption key,
-- so it cannot make a seal for URLs an admin did not set; a row whose seal
-- does not open is read again. Every write of the row clears the seal (the
-- gateway's upsert); the gateway seals a row again the next time it reads it.
ALTER TABLE llm_credentials ADD COLUMN url_seal BYTEA;

-- 0028's definition, plus the credential of the run's model provider in the
-- thread's environment (NULL when there is none, or it has no seal yet).
CREATE OR REPLACE FUNCTION load_run(p_run UUID, p_lease TEXT) RETURNS jsonb AS $$
DECLARE
    loaded jsonb;
BEGIN
    SELECT jsonb_build_object(
               'id', r.id, 'org_id', r.org_id, 'thread_id', r.thread_id,
               'environment_id', t.environment_id, 'channel_id', t.channel_id,
               'config', r.config, 'input_upto', r.input_upto, 'status', r.status,
               'cancel_requested', r.cancel_requested, 'active_ms', r.active_ms,
               'retries', r.retries,
               'leased', coalesce(r.lease_owner = p_lease AND r.lease_expires_at > now(), false),
               'steps', coalesce((SELECT jsonb_agg(s.output ORDER BY s.seq)
                                  FROM run_steps s WHERE s.run_id = r.id), '[]'),
               'history', coalesce((SELECT jsonb_agg(jsonb_build_array(m.kind, m.content) ORDER BY m.id)
                                    FROM thread_messages m
                                    WHERE m.thread_id = r.thread_id AND m.id <= r.input_upto), '[]'),
               'credential', (SELECT jsonb_build_object(
                                         'provider', c.provider,
                                         'api_key_sealed', encode(c.api_key_sealed, 'hex'),
                                         'base_url', c.base_url,
                                         'allowed_base_urls', c.allowed_base_urls,
                                         'url_seal', encode(c.url_seal, 'hex'))
                                FROM llm_credentials c
                               WHERE c.org_id = r.org_id AND c.environment_id = t.environment_id
                                 AND c.provider = r.config #>> '{model,provider}'
                                 AND c.url_seal IS NOT NULL))
      INTO loaded
      FROM runs r JOIN threads t ON t.id = r.thread_id
     WHERE r.id = p_run;
    RETURN loaded;
END;
$$ LANGUAGE plpgsql;
