import type { GateReason } from "@safedeploy/schema";
import { isActive, transitionIncident } from "./incident.js";
import type { Incident } from "./incident.js";
import type {
  IncidentDecision,
  IncidentDecisionEvent,
  ServiceIncidentState,
} from "./incident-decision.js";

/** A published promotion verdict, as the incident decision needs it. */
export interface VerdictInput {
  readonly id: string;
  readonly service: string;
  readonly reasons: readonly GateReason[];
  readonly evaluatedAt: string;
}

/** Reason codes that say the service is declared wrong, not that it is unhealthy right now. */
export const STRUCTURAL_REASON_CODES: readonly string[] = [
  "no-slos",
  "no-rollback",
  "canary-required",
];

/** The structural violations among a verdict's reasons. */
export function structuralViolations(reasons: readonly GateReason[]): GateReason[] {
  return reasons.filter((reason) => STRUCTURAL_REASON_CODES.includes(reason.code));
}

function openPolicyIncident(
  verdict: VerdictInput,
  violations: readonly GateReason[],
  id: string,
): Incident {
  const at = verdict.evaluatedAt;
  const reason = `policy violation: ${violations.map((v) => v.message).join("; ")}`;
  return {
    id,
    service: verdict.service,
    origin: "policy",
    slo: null,
    state: "detected",
    severity: "normal",
    class: "P3",
    openedAt: at,
    updatedAt: at,
    detectedFrom: at,
    mitigatedAt: null,
    resolvedAt: null,
    transitions: [{ from: null, to: "detected", at, actor: "system", reason }],
  };
}

/**
 * Folds a promotion verdict into a service's incident state. A structural violation (no SLO, no
 * rollback, no canary where the policy requires one) opens a policy incident when no incident is
 * active; once the violations are gone the system resolves the policy incident it opened. A
 * verdict older than the last one folded in changes nothing, so replicas converge.
 */
export function decidePolicyIncident(
  state: ServiceIncidentState,
  verdict: VerdictInput,
  newIncidentId: () => string,
): IncidentDecision {
  const at = verdict.evaluatedAt;
  if (state.policy !== undefined && Date.parse(state.policy.at) >= Date.parse(at)) {
    return { state, events: [], changed: false };
  }
  const violations = structuralViolations(verdict.reasons);
  const policy = { at, violations: violations.map((v) => v.code) };
  const active = state.incident !== null && isActive(state.incident.state) ? state.incident : null;
  const events: IncidentDecisionEvent[] = [];
  let incident = state.incident;

  if (violations.length > 0 && active === null) {
    incident = openPolicyIncident(verdict, violations, newIncidentId());
    events.push({
      kind: "opened",
      incident,
      causeId: verdict.id,
      reason: incident.transitions[0]?.reason ?? "",
      burnBegan: at,
    });
  } else if (violations.length === 0 && active?.origin === "policy") {
    const result = transitionIncident(active, {
      to: "resolved",
      initiator: "system",
      actor: "system",
      reason: "the policy violations were corrected",
      at,
    });
    if (result.ok) {
      incident = result.incident;
      events.push({ kind: "transitioned", incident, transition: result.transition });
    }
  }
  return { state: { ...state, incident, policy }, events, changed: true };
}
