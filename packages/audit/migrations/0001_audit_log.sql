-- Every message of every stream, once, keyed by (stream, seq), hash-chained per stream by
-- position. Positions and hashes are assigned by the writer (appendBatch) under an advisory
-- transaction lock per stream, never by a trigger reading "the last row".
CREATE TABLE IF NOT EXISTS audit_log (
  stream     text        NOT NULL,
  seq        bigint      NOT NULL,
  position   bigint      NOT NULL CHECK (position >= 1),
  subject    text        NOT NULL,
  message_id text,
  type       text,
  service    text,
  headers    jsonb       NOT NULL,
  payload    jsonb       NOT NULL,
  stored_at  timestamptz NOT NULL,
  prev_hash  text        NOT NULL,
  hash       text        NOT NULL,
  PRIMARY KEY (stream, seq),
  CONSTRAINT audit_log_stream_position_key UNIQUE (stream, position)
);

CREATE INDEX IF NOT EXISTS audit_log_type_idx ON audit_log (type);
CREATE INDEX IF NOT EXISTS audit_log_message_id_idx ON audit_log (message_id);
CREATE INDEX IF NOT EXISTS audit_log_service_type_idx ON audit_log (service, type, stored_at);
CREATE INDEX IF NOT EXISTS audit_log_incident_idx ON audit_log ((payload -> 'data' ->> 'incidentId'));
CREATE INDEX IF NOT EXISTS audit_log_proposal_idx ON audit_log ((payload -> 'data' ->> 'proposalId'));

CREATE OR REPLACE FUNCTION audit_log_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END;
$$;

DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log;
CREATE TRIGGER audit_log_append_only
  BEFORE UPDATE OR DELETE ON audit_log
  FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();

DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log;
CREATE TRIGGER audit_log_no_truncate
  BEFORE TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
