-- The read model the gateway, CLI and evidence export query. Maintained from the same envelopes,
-- in the same transaction that appends them to audit_log; every write is idempotent and tolerates
-- arrival out of stream order (several replicas).

CREATE TABLE IF NOT EXISTS services (
  name              text PRIMARY KEY,
  verdict_allowed   boolean,
  verdict_reasons   jsonb,
  verdict_at        timestamptz,
  verdict_message_id text,
  updated_at        timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS evaluations (
  service          text        NOT NULL,
  slo              text        NOT NULL,
  severity         text        NOT NULL,
  budget_remaining double precision,
  error_ratio      double precision,
  objective        double precision NOT NULL,
  explanation      text        NOT NULL,
  evaluated_at     timestamptz NOT NULL,
  snapshot_id      text        NOT NULL,
  message_id       text        NOT NULL,
  PRIMARY KEY (service, slo)
);

CREATE TABLE IF NOT EXISTS incidents (
  id          text PRIMARY KEY,
  service     text        NOT NULL,
  slo         text,
  state       text        NOT NULL CHECK (state IN ('detected', 'investigating', 'mitigated', 'resolved', 'postmortem-complete')),
  severity    text        NOT NULL,
  class       text        NOT NULL CHECK (class IN ('P0', 'P1', 'P2', 'P3')),
  opened_at   timestamptz NOT NULL,
  updated_at  timestamptz NOT NULL,
  cause_id    text        NOT NULL,
  reason      text        NOT NULL,
  message_id  text        NOT NULL
);
-- Invariant 1 of DESIGN.md, held by the database itself.
CREATE UNIQUE INDEX IF NOT EXISTS incidents_one_active_per_service
  ON incidents (service) WHERE state IN ('detected', 'investigating', 'mitigated');
CREATE INDEX IF NOT EXISTS incidents_service_idx ON incidents (service, opened_at);

CREATE TABLE IF NOT EXISTS incident_transitions (
  incident_id text        NOT NULL,
  service     text        NOT NULL,
  from_state  text,
  to_state    text        NOT NULL,
  at          timestamptz NOT NULL,
  actor       text        NOT NULL,
  reason      text        NOT NULL,
  link        text,
  message_id  text        NOT NULL,
  CONSTRAINT incident_transitions_once UNIQUE (incident_id, to_state, at)
);

CREATE TABLE IF NOT EXISTS proposals (
  id          text PRIMARY KEY,
  service     text        NOT NULL,
  incident_id text,
  kind        text,
  state       text        NOT NULL,
  created_at  timestamptz,
  summary     text,
  plan        jsonb,
  cause_id    text,
  updated_at  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS proposals_incident_idx ON proposals (incident_id);

CREATE TABLE IF NOT EXISTS approvals (
  proposal_id text        NOT NULL,
  by          text        NOT NULL,
  at          timestamptz NOT NULL,
  reason      text        NOT NULL,
  approved    boolean     NOT NULL,
  message_id  text        NOT NULL,
  CONSTRAINT approvals_once UNIQUE (proposal_id, by)
);

CREATE TABLE IF NOT EXISTS actions (
  proposal_id  text PRIMARY KEY,
  outcome      text        NOT NULL CHECK (outcome IN ('completed', 'failed')),
  at           timestamptz NOT NULL,
  branch       text,
  commit       text,
  pr_url       text,
  diff         text,
  dry_run      boolean,
  reason       text,
  needs_triage boolean,
  message_id   text        NOT NULL
);

CREATE TABLE IF NOT EXISTS freezes (
  id          text PRIMARY KEY,
  service     text        NOT NULL,
  from_at     timestamptz,
  until_at    timestamptz,
  reason      text,
  actor       text,
  origin      text,
  lifted_at   timestamptz,
  lifted_by   text,
  lift_reason text
);

CREATE TABLE IF NOT EXISTS verdicts (
  message_id   text PRIMARY KEY,
  service      text        NOT NULL,
  allowed      boolean     NOT NULL,
  reasons      jsonb       NOT NULL,
  evaluated_at timestamptz NOT NULL,
  cause_id     text        NOT NULL
);
CREATE INDEX IF NOT EXISTS verdicts_service_idx ON verdicts (service, evaluated_at);

-- How far along a proposal is: a later event never moves it back.
CREATE OR REPLACE FUNCTION proposal_state_rank(state text) RETURNS int
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE state
    WHEN 'pending' THEN 0
    WHEN 'approved' THEN 1
    WHEN 'needs-triage' THEN 2
    ELSE 3
  END
$$;
