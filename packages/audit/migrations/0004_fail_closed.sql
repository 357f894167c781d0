-- Governance that fails closed: the gate's three-valued verdict and the age of its evidence,
-- burn and budget of each evaluation apart, the commit a revert targets (and why it would harm),
-- and the release-train guards that block a service's gate until cleared.

ALTER TABLE services ADD COLUMN IF NOT EXISTS verdict_kind text;
ALTER TABLE services ADD COLUMN IF NOT EXISTS verdict_evidence_age double precision;

ALTER TABLE evaluations ADD COLUMN IF NOT EXISTS burn text;
ALTER TABLE evaluations ADD COLUMN IF NOT EXISTS budget text;

ALTER TABLE verdicts ADD COLUMN IF NOT EXISTS verdict text;

ALTER TABLE actions ADD COLUMN IF NOT EXISTS target jsonb;
ALTER TABLE actions ADD COLUMN IF NOT EXISTS harm text;

CREATE TABLE IF NOT EXISTS guards (
  id           text PRIMARY KEY,
  service      text        NOT NULL,
  train        text,
  train_id     text,
  step         integer,
  reason       text,
  evidence     jsonb,
  at           timestamptz,
  cleared_at   timestamptz,
  cleared_by   text,
  clear_reason text,
  cleared_how  text
);
CREATE INDEX IF NOT EXISTS guards_service_idx ON guards (service, at);
