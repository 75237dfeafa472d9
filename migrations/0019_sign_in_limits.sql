-- Sign-in failures are judged per (email, client address), so a stranger's
-- wrong passwords never lock out the account's owner; sign-ups are counted
-- per client address.
CREATE INDEX login_failures_pair ON login_failures (lower(email), client, id);

CREATE TABLE signup_attempts (
    id         BIGSERIAL   PRIMARY KEY,
    client     TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX signup_attempts_client ON signup_attempts (client, id);
