-- Records a stage could not process because of their content: kept with the reason, out of the
-- way of the rest of their batch, until an operator retries them (`riskwatch quarantine retry`).
CREATE TABLE quarantine (
    id               bigserial PRIMARY KEY,
    quarantined_at   timestamptz NOT NULL DEFAULT now(),
    stage            text NOT NULL CHECK (stage IN ('normalize', 'risk')),
    topic            text NOT NULL,           -- where the record was consumed, and where a retry sends it
    kafka_partition  integer NOT NULL,
    kafka_offset     bigint NOT NULL,
    record_key       bytea,
    record           bytea NOT NULL,          -- the record as consumed: pseudonyms only, as on the topic
    event_id         uuid,                    -- when the record could be read that far
    reason_class     text NOT NULL,           -- bounded, the metric's label
    reason           text NOT NULL,           -- identity numbers withheld
    retried_at       timestamptz              -- sent back to its topic; a new failure is a new row
);
CREATE INDEX quarantine_open ON quarantine (quarantined_at) WHERE retried_at IS NULL;
CREATE INDEX quarantine_event ON quarantine (event_id);

-- A subject whose every event names a protected victim has no region that may be shown: as
-- for alerts, such a projection names none and only a national scope covers it.
ALTER TABLE risk_projection ALTER COLUMN region DROP NOT NULL;
