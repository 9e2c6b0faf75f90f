-- Agency systems allowed to submit events, and which one sent each accepted event.

-- Like app_user: the token is random and shown once; only its SHA-256 is kept.
CREATE TABLE agency_client (
    name        text PRIMARY KEY,
    agency      text NOT NULL CHECK (agency IN ('police', 'prosecution', 'prison_probation', 'social_services', 'healthcare')),
    units       text[] NOT NULL CHECK (cardinality(units) > 0),  -- the envelope `unit`s it may submit for
    token_hash  bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

-- The client (an agency_client name, an OIDC client id, or "local-operator:<os user>") stays
-- here, never on a topic. Rows accepted before clients existed have none.
ALTER TABLE ingested_event ADD COLUMN client text;

-- An event id is claimed before its event is published: a row without a topic position is a
-- claim whose publication is under way, or failed with an unknown outcome (claimed_at set to
-- -infinity), so the same content may claim it again at once and different content may not.
ALTER TABLE ingested_event
    ALTER COLUMN topic DROP NOT NULL,
    ALTER COLUMN kafka_partition DROP NOT NULL,
    ALTER COLUMN kafka_offset DROP NOT NULL,
    ADD COLUMN claimed_at timestamptz NOT NULL DEFAULT now();
