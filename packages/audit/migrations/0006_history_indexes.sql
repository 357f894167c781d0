-- History for the DORA metrics and the dashboard's charts: budget evaluations of one SLO over a
-- time range, and deploys over a range, found by the time each event describes (not the time it
-- was stored, which a backfill or a late report moves). safedeploy_instant is the text → instant
-- cast an index may hold: every Timestamp of the schema carries an offset, so the result does not
-- depend on the session's TimeZone; text that is not an instant is NULL instead of an error, so a
-- malformed message can neither fail an INSERT into the log nor a history query.
CREATE OR REPLACE FUNCTION safedeploy_instant(value text) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
  IF value IS NULL OR value !~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)$' THEN
    RETURN NULL;
  END IF;
  RETURN value::timestamptz;
EXCEPTION WHEN others THEN
  RETURN NULL;
END;
$$;

CREATE INDEX IF NOT EXISTS audit_log_evaluation_history_idx
  ON audit_log (service, (payload -> 'data' ->> 'slo'),
                safedeploy_instant(payload -> 'data' ->> 'evaluatedAt'))
  WHERE type = 'budget.evaluated';

CREATE INDEX IF NOT EXISTS audit_log_deploy_history_idx
  ON audit_log (safedeploy_instant(payload -> 'data' ->> 'at'))
  WHERE type = 'governance.deploy-recorded';
