-- Read models, event archive, outbox and tracking for Riskwatch.
-- Clear identities live only in subject_identity; everything else carries pseudonyms.

CREATE TABLE subject_identity (
    pseudonym        text PRIMARY KEY,
    identity_number  text NOT NULL UNIQUE,
    kind             text NOT NULL CHECK (kind IN ('personal_identity_number', 'coordination_number')),
    first_seen       timestamptz NOT NULL DEFAULT now()
);

-- What the ingest gateway accepted: duplicate event ids are recognised here. An event
-- accepted by another (since emptied) broker cluster and never archived is accepted again.
CREATE TABLE ingested_event (
    event_id      uuid PRIMARY KEY,
    event_type    text NOT NULL,
    cluster_id    text NOT NULL,
    content_hash  bytea NOT NULL,
    topic         text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset  bigint NOT NULL,
    accepted_at   timestamptz NOT NULL DEFAULT now()
);

-- Every canonical risk event folded into a projection, exactly once (unique on event_id).
CREATE TABLE event_archive (
    event_id       uuid PRIMARY KEY,
    subject        text NOT NULL,
    source_type    text NOT NULL,
    agency         text NOT NULL,
    region         text NOT NULL,
    event_time     timestamptz NOT NULL,
    recorded_time  timestamptz NOT NULL,
    body           bytea NOT NULL,            -- Avro riskwatch.canonical.RiskEvent
    archived_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX event_archive_subject_time ON event_archive (subject, event_time);

CREATE TABLE risk_projection (
    subject          text PRIMARY KEY,
    state            jsonb NOT NULL,
    assessment       jsonb NOT NULL,
    level            text NOT NULL,
    score            double precision NOT NULL,
    region           text NOT NULL,
    caseload         text,
    policy_version   text NOT NULL,
    assessed_at      timestamptz NOT NULL,    -- event time the assessment refers to
    next_review_at   timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX risk_projection_region_score ON risk_projection (region, score DESC);
CREATE INDEX risk_projection_next_review ON risk_projection (next_review_at);

CREATE TABLE risk_history (
    subject         text NOT NULL,
    event_id        uuid NOT NULL,
    event_time      timestamptz NOT NULL,
    level           text NOT NULL,
    score           double precision NOT NULL,
    explanation     text NOT NULL,
    policy_version  text NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (subject, event_id)
);

CREATE TABLE alert (
    alert_id          uuid PRIMARY KEY,       -- uuid5(subject, trigger, causing event, policy version)
    subject           text NOT NULL,
    trigger           text NOT NULL,
    priority          smallint NOT NULL,
    level_before      text NOT NULL,
    level_after       text NOT NULL,
    score             double precision NOT NULL,
    explanation       text NOT NULL,
    factors           jsonb NOT NULL,
    region            text,                   -- NULL: every known region could point at a protected victim
    caseload          text,
    event_time        timestamptz NOT NULL,
    causing_event_id  uuid NOT NULL,
    policy_version    text NOT NULL,
    status            text NOT NULL DEFAULT 'open',
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_region_priority ON alert (region, priority, created_at DESC);

-- Transactional outbox: written with the effects, published by the relay.
CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    topic         text NOT NULL,
    message_key   text NOT NULL,
    message       bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

-- Consumed positions, written in the same transaction as the effects they led to.
-- Keyed by the broker's cluster id: a new (empty) broker starts from scratch.
CREATE TABLE tracking (
    cluster_id       text NOT NULL,
    topic            text NOT NULL,
    kafka_partition  integer NOT NULL,
    kafka_offset     bigint NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cluster_id, topic, kafka_partition)
);

-- Refused input in full (it may hold clear identity numbers, so it stays beside
-- subject_identity; the dead-letter topic carries a copy with identity numbers withheld).
CREATE TABLE dead_letter (
    id            bigserial PRIMARY KEY,
    received_at   timestamptz NOT NULL DEFAULT now(),
    source        text NOT NULL,
    reason        text NOT NULL,
    original      bytea NOT NULL
);
