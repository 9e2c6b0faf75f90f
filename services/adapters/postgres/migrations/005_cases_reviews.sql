-- The workload: history that does not page, one open case per subject, reviews as a work queue.

-- An alert is paged (live queue, SSE, a case, escalation) or history (recorded, calls no one).
-- Alerts stored before were all paged.
ALTER TABLE alert ADD COLUMN paged boolean NOT NULL DEFAULT true;
CREATE INDEX alert_paged_open ON alert (created_at) WHERE status = 'open' AND paged;

-- Event ids ingested as a backfill (`riskwatch ingest --backfill`): their alerts are history.
CREATE TABLE backfill_event (
    event_id     uuid PRIMARY KEY,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);

-- One open (not closed) case per subject; paged alerts attach to it.
CREATE TABLE alert_case (
    case_id      uuid PRIMARY KEY,
    subject      text NOT NULL,
    status       text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'acknowledged', 'closed')),
    priority     smallint NOT NULL,          -- the most urgent of its alerts
    level        text NOT NULL,              -- the latest alert's level_after
    region       text,                       -- NULL: withheld (a protected victim)
    caseload     text,
    triggers     text[] NOT NULL,
    alert_count  integer NOT NULL,
    explanation  text NOT NULL,              -- the latest alert's
    assignee     text,
    escalated    boolean NOT NULL DEFAULT false,
    opened_at    timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    seq          bigint NOT NULL
);
CREATE UNIQUE INDEX alert_case_one_open ON alert_case (subject) WHERE status <> 'closed';
CREATE INDEX alert_case_region ON alert_case (region, status, priority);
CREATE INDEX alert_case_caseload ON alert_case (caseload, status, priority);
CREATE UNIQUE INDEX alert_case_seq_order ON alert_case (seq);
ALTER TABLE alert ADD COLUMN case_id uuid REFERENCES alert_case (case_id);
CREATE INDEX alert_case_alerts ON alert (case_id);

-- As for alerts (migration 002): `seq` follows commit order, so the live feed misses nothing.
-- Every change renumbers the case; the lock is held to the commit.
CREATE SEQUENCE alert_case_seq;
CREATE FUNCTION number_case() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(1128354629);  -- "CASE"
    NEW.seq := nextval('alert_case_seq');
    RETURN NEW;
END $$;
CREATE TRIGGER alert_case_numbered BEFORE INSERT OR UPDATE ON alert_case FOR EACH ROW EXECUTE FUNCTION number_case();

CREATE TABLE case_workflow (
    event_id   uuid PRIMARY KEY,
    case_id    uuid NOT NULL REFERENCES alert_case (case_id),
    action     text NOT NULL CHECK (action IN ('acknowledged', 'assigned', 'closed', 'escalated', 'reopened')),
    actor      text NOT NULL,
    assignee   text,
    note       text,                         -- free text stays here: it never goes on a topic
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX case_workflow_case ON case_workflow (case_id, at);
CREATE TRIGGER case_workflow_append_only BEFORE UPDATE OR DELETE ON case_workflow
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- Due reviews: at most one open item per subject, completed with who decided what.
CREATE TABLE review (
    review_id       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    subject         text NOT NULL,
    level           text NOT NULL,
    due_at          timestamptz NOT NULL,
    overdue_at      timestamptz NOT NULL,
    interval_hours  integer NOT NULL,        -- the level's review interval when it was opened
    region          text,
    caseload        text,
    status          text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'completed')),
    opened_at       timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    reviewer        text,
    decision        text,
    next_due_at     timestamptz              -- completed_at + interval: the next review, unless events move it
);
CREATE UNIQUE INDEX review_one_open ON review (subject) WHERE status = 'open';
CREATE INDEX review_open_due ON review (due_at) WHERE status = 'open';
CREATE INDEX review_subject_latest ON review (subject, opened_at DESC);

-- The decision itself, append-only: a review is completed once, a correction is a new review.
CREATE TABLE review_decision (
    event_id   uuid PRIMARY KEY,
    review_id  uuid NOT NULL UNIQUE REFERENCES review (review_id),
    reviewer   text NOT NULL,
    decision   text NOT NULL,
    note       text,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER review_decision_append_only BEFORE UPDATE OR DELETE ON review_decision
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
