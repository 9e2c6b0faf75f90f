-- Users of the query API, the access log, and the alert workflow.

-- Bearer tokens are random, so a plain SHA-256 of the token is enough to recognise one;
-- the token itself is shown once when the user is created and never stored.
CREATE TABLE app_user (
    name         text PRIMARY KEY,
    role         text NOT NULL CHECK (role IN ('intelligence_analyst', 'probation_officer', 'operator', 'admin')),
    scope        text[] NOT NULL DEFAULT '{}',   -- regions (analysts) or caseload units (probation officers)
    supervisor   boolean NOT NULL DEFAULT false, -- receives escalated alerts of the scope
    token_hash   bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);

-- Brottsdatalagen / Directive (EU) 2016/680 art. 25: who consulted, disclosed or altered whose
-- personal data, when, through which endpoint and why. Written in the request, before answering.
CREATE TABLE access_log (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    actor     text NOT NULL,
    role      text NOT NULL,
    action    text NOT NULL CHECK (action IN ('consultation', 'disclosure', 'alteration')),
    endpoint  text NOT NULL,                 -- method and route, e.g. "GET /v1/subjects/{pseudonym}"
    subjects  text[] NOT NULL,               -- pseudonyms
    purpose   text NOT NULL,
    query     jsonb NOT NULL DEFAULT '{}'    -- the filters asked for
);
CREATE INDEX access_log_at ON access_log (at);
CREATE INDEX access_log_actor ON access_log (actor, at);
CREATE INDEX access_log_subjects ON access_log USING gin (subjects);

-- What people did with an alert; escalations are written by Riskwatch itself.
CREATE TABLE alert_workflow (
    event_id   uuid PRIMARY KEY,
    alert_id   uuid NOT NULL REFERENCES alert (alert_id),
    action     text NOT NULL CHECK (action IN ('acknowledged', 'assigned', 'closed', 'escalated')),
    actor      text NOT NULL,
    assignee   text,
    note       text,                         -- free text stays here: it never goes on a topic
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_workflow_alert ON alert_workflow (alert_id, at);

-- Both logs are append-only: a correction is a new row, never an edit.
CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;
CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE ON access_log
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER alert_workflow_append_only BEFORE UPDATE OR DELETE ON alert_workflow
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

ALTER TABLE alert
    ADD COLUMN seq bigint,
    ADD COLUMN for_supervisor boolean NOT NULL DEFAULT false,
    ADD COLUMN escalated_from uuid REFERENCES alert (alert_id),
    ADD COLUMN assignee text,
    ADD COLUMN status_changed_at timestamptz,
    ADD CONSTRAINT alert_status CHECK (status IN ('open', 'escalated', 'acknowledged', 'closed'));

-- `seq` numbers alerts in commit order, so a live feed that has seen number n has seen every
-- alert numbered below n. A plain sequence would not do: a transaction can take a number and
-- commit after a later one. The lock is held from the alert insert to the commit.
CREATE SEQUENCE alert_seq;
UPDATE alert SET seq = numbered.n
FROM (SELECT alert_id, row_number() OVER (ORDER BY created_at, alert_id) AS n FROM alert) AS numbered
WHERE alert.alert_id = numbered.alert_id;
SELECT setval('alert_seq', coalesce((SELECT max(seq) FROM alert), 0) + 1, false);
ALTER TABLE alert ALTER COLUMN seq SET NOT NULL;
CREATE UNIQUE INDEX alert_seq_order ON alert (seq);

CREATE FUNCTION number_alert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(1095520852);  -- "ALRT"
    NEW.seq := nextval('alert_seq');
    RETURN NEW;
END $$;
CREATE TRIGGER alert_numbered BEFORE INSERT ON alert FOR EACH ROW EXECUTE FUNCTION number_alert();

CREATE INDEX alert_caseload ON alert (caseload, priority, created_at DESC);
CREATE INDEX alert_unacknowledged ON alert (created_at) WHERE status = 'open';
CREATE INDEX risk_history_timeline ON risk_history (subject, event_time);
CREATE INDEX event_archive_type_time ON event_archive (source_type, event_time);
