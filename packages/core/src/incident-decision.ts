import type { IncidentClass, Severity } from "@safedeploy/schema";
import { SEVERITY_RANK } from "./budget.js";
import { incidentClass, isActive, isWorseClass, transitionIncident } from "./incident.js";
import type { Incident, Transition } from "./incident.js";

/** What the incident service keeps per service (in KV, updated by compare-and-set). */
export interface ServiceIncidentState {
  /** Latest severity per SLO, with the time of the evidence it came from. */
  readonly slos: Readonly<
    Record<string, { readonly severity: Severity; readonly at: string; readonly objective: number }>
  >;
  readonly incident: Incident | null;
  /** Since when every SLO has been normal while the incident is mitigated. */
  readonly healthySince: string | null;
  /** The structural violations of the latest verdict folded in, and its time. */
  readonly policy?: { readonly at: string; readonly violations: readonly string[] };
}

export const EMPTY_SERVICE_STATE: ServiceIncidentState = {
  slos: {},
  incident: null,
  healthySince: null,
};

/** One budget evaluation, as the incident decision needs it. */
export interface EvaluationInput {
  readonly id: string;
  readonly service: string;
  readonly slo: string;
  readonly objective: number;
  readonly severity: Severity;
  readonly evaluatedAt: string;
}

export interface IncidentPolicy {
  readonly openIncidentOn: readonly Severity[];
  readonly resolveAfterMs: number;
}

export type IncidentDecisionEvent =
  | {
      readonly kind: "opened";
      readonly incident: Incident;
      readonly causeId: string;
      readonly reason: string;
    }
  | {
      readonly kind: "escalated";
      readonly incident: Incident;
      readonly previousClass: IncidentClass;
      readonly causeId: string;
    }
  | { readonly kind: "transitioned"; readonly incident: Incident; readonly transition: Transition };

export interface IncidentDecision {
  readonly state: ServiceIncidentState;
  readonly events: readonly IncidentDecisionEvent[];
  /** False when the evidence was older than what is known: nothing to save or publish. */
  readonly changed: boolean;
}

function openIncident(
  service: string,
  slo: string,
  evidence: { readonly severity: Severity; readonly objective: number; readonly at: string },
  at: string,
  id: string,
): Incident {
  const reason = `${slo} is ${evidence.severity}`;
  return {
    id,
    service,
    origin: "slo",
    slo,
    state: "detected",
    severity: evidence.severity,
    class: incidentClass(evidence.severity, evidence.objective),
    openedAt: at,
    updatedAt: at,
    detectedFrom: evidence.at,
    mitigatedAt: null,
    resolvedAt: null,
    transitions: [{ from: null, to: "detected", at, actor: "system", reason }],
  };
}

function worst(
  slos: ServiceIncidentState["slos"],
): { slo: string; severity: Severity; objective: number } | null {
  let found: { slo: string; severity: Severity; objective: number } | null = null;
  for (const [slo, status] of Object.entries(slos)) {
    if (found === null || SEVERITY_RANK[status.severity] > SEVERITY_RANK[found.severity]) {
      found = { slo, severity: status.severity, objective: status.objective };
    }
  }
  return found;
}

/**
 * Folds one evaluation into a service's incident state. Opens an incident when a severity of
 * `openIncidentOn` appears and none is active (one active incident per service), escalates its
 * class when the burn gets worse, and resolves a mitigated incident once every SLO has been normal
 * for `resolveAfterMs`. Evidence older than what is known for that SLO is ignored, so replicas that
 * see evaluations out of order converge on the same state.
 */
export function decideIncident(
  state: ServiceIncidentState,
  evaluation: EvaluationInput,
  policy: IncidentPolicy,
  newIncidentId: () => string,
): IncidentDecision {
  const known = state.slos[evaluation.slo];
  const stale = known !== undefined && Date.parse(known.at) >= Date.parse(evaluation.evaluatedAt);
  const at = evaluation.evaluatedAt;
  const active = state.incident !== null && isActive(state.incident.state) ? state.incident : null;

  if (stale) {
    // Older than what is known: it must not overwrite the SLO's state, but a burn it shows still
    // counts if no incident covers it, so the outcome depends on what arrived, not in which order.
    const closedAt = state.incident?.resolvedAt ?? null;
    const uncovered =
      active === null && (closedAt === null || Date.parse(at) > Date.parse(closedAt));
    if (!uncovered || !policy.openIncidentOn.includes(evaluation.severity)) {
      return { state, events: [], changed: false };
    }
    const opened = openIncident(
      evaluation.service,
      evaluation.slo,
      { severity: evaluation.severity, objective: evaluation.objective, at },
      at,
      newIncidentId(),
    );
    return {
      state: { ...state, incident: opened, healthySince: null },
      events: [
        {
          kind: "opened",
          incident: opened,
          causeId: evaluation.id,
          reason: opened.transitions[0]?.reason ?? "",
        },
      ],
      changed: true,
    };
  }

  const slos = {
    ...state.slos,
    [evaluation.slo]: { severity: evaluation.severity, at, objective: evaluation.objective },
  };
  const events: IncidentDecisionEvent[] = [];
  let incident = active;
  const current = worst(slos);

  if (incident === null) {
    const trigger = Object.entries(slos).find(([, s]) =>
      policy.openIncidentOn.includes(s.severity),
    );
    if (trigger !== undefined) {
      const [slo, status] = trigger;
      const opened = openIncident(evaluation.service, slo, status, at, newIncidentId());
      incident = opened;
      events.push({
        kind: "opened",
        incident: opened,
        causeId: evaluation.id,
        reason: opened.transitions[0]?.reason ?? "",
      });
    }
    return {
      state: { ...state, slos, incident: incident ?? state.incident, healthySince: null },
      events,
      changed: true,
    };
  }

  if (current !== null && SEVERITY_RANK[current.severity] > 0) {
    const candidate = incidentClass(current.severity, current.objective);
    if (isWorseClass(candidate, incident.class)) {
      const previousClass = incident.class;
      incident = { ...incident, class: candidate, severity: current.severity, updatedAt: at };
      events.push({ kind: "escalated", incident, previousClass, causeId: evaluation.id });
    }
  }

  const allNormal = Object.values(slos).every((s) => s.severity === "normal");
  let healthySince: string | null = null;
  if (incident.state === "mitigated" && allNormal) {
    healthySince = state.healthySince ?? at;
    if (Date.parse(at) - Date.parse(healthySince) >= policy.resolveAfterMs) {
      const result = transitionIncident(incident, {
        to: "resolved",
        initiator: "system",
        actor: "system",
        reason: `every SLO normal since ${healthySince}`,
        at,
      });
      if (result.ok) {
        incident = result.incident;
        events.push({ kind: "transitioned", incident, transition: result.transition });
        healthySince = null;
      }
    }
  }
  return { state: { ...state, slos, incident, healthySince }, events, changed: true };
}
