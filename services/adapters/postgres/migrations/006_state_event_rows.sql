-- A subject's state as one row per event: a risk batch inserts the events it adds and deletes
-- those the retention cut-off drops, instead of rewriting the whole history in one document.
-- risk_projection stays readable as before (a view with the state assembled from the rows);
-- the risk stage writes subject_projection and risk_state_event.

CREATE TABLE risk_state_event (
    subject     text NOT NULL,
    event_time  bigint NOT NULL,              -- epoch ms
    event_id    text NOT NULL,
    event       jsonb NOT NULL,               -- the compact form of one event of SubjectState.to_dict()
    PRIMARY KEY (subject, event_time, event_id)
);

INSERT INTO risk_state_event (subject, event_time, event_id, event)
SELECT p.subject, (e->>'t')::bigint, e->>'id', e
FROM risk_projection p, jsonb_array_elements(p.state->'events') AS e;

ALTER TABLE risk_projection RENAME TO subject_projection;
ALTER TABLE subject_projection DROP COLUMN state;
-- Raised by every write: a worker that kept a subject's state in memory reuses it only while
-- the version is still the one it wrote.
ALTER TABLE subject_projection ADD COLUMN state_version bigint NOT NULL DEFAULT 0;

CREATE VIEW risk_projection AS
SELECT p.subject,
       jsonb_build_object('format', 1, 'subject', p.subject, 'events', COALESCE(
           (SELECT jsonb_agg(e.event ORDER BY e.event_time, e.event_id COLLATE "C")
            FROM risk_state_event e WHERE e.subject = p.subject), '[]'::jsonb)) AS state,
       p.assessment, p.level, p.score, p.region, p.caseload, p.policy_version, p.assessed_at,
       p.next_review_at, p.updated_at, p.state_version
FROM subject_projection p;
