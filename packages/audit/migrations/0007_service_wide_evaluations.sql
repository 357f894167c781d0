-- A budget evaluation now holds every SLO of its service (data.slos), one message per service and
-- interval; older messages held one SLO (data.slo). The history of one SLO is found by service and
-- the time the evaluation describes, then picked out of either shape.
CREATE INDEX IF NOT EXISTS audit_log_service_evaluation_history_idx
  ON audit_log (service, safedeploy_instant(payload -> 'data' ->> 'evaluatedAt'))
  WHERE type = 'budget.evaluated';

DROP INDEX IF EXISTS audit_log_evaluation_history_idx;
