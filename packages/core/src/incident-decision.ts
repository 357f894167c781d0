import type { BudgetStatus, Burn, IncidentClass, Severity } from "@safedeploy/schema";
import { BURN_RANK, SEVERITY_RANK } from "./budget.js";
import { incidentClass, isActive, isWorseClass, transitionIncident } from "./incident.js";
import type { Incident, Transition } from "./incident.js";

/** The latest evaluation of one SLO as the incident decision keeps it. */
export interface SloIncidentStatus {
  readonly severity: Severity;
  /** Absent in states kept before burn and budget were apart: derived from the severity. */
  readonly burn?: Burn | undefined;
  readonly budget?: BudgetStatus | null | undefined;
  /** The time of the evidence it came from. */
  readonly at: string;
  readonly objective: number;
}

/** What the incident service keeps per service (in KV, updated by compare-and-set). */
export interface ServiceIncidentState {
  /** Latest evaluation per SLO. */
  readonly slos: Readonly<Record<string, SloIncidentStatus>>;
  readonly incident: Incident | null;
  /** Since when every SLO's burn has been normal while an incident is active. */
  readonly healthySince: string | null;
  /** Since when some SLO has burned (slow or fast) without a break; absent in older states. */
  readonly burningSince?: string | null | undefined;
  /**
   * The newest evidence time at which some SLO's burn was not normal: an evaluation arriving late
   * (replicas, concurrency) still counts toward `healthySince` when it is newer than this.
   */
  readonly lastBurningAt?: string | null | undefined;
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
  readonly burn: Burn;
  readonly budget: BudgetStatus | null;
  readonly evaluatedAt: string;
}

export interface IncidentPolicy {
  /**
   * What opens an incident: a burn of one of these (`fast-burn`, `slow-burn`, and `no-data` or
   * `unknown` if listed), or, with `exhausted`, a budget that becomes exhausted.
   */
  readonly openIncidentOn: readonly Severity[];
  /** Every SLO's burn normal this long → resolved by the system. */
  readonly resolveAfterMs: number;
}

/** An SLO's burn; for a state kept before burn and budget were apart, from its severity. */
export function burnOf(status: Pick<SloIncidentStatus, "severity" | "burn">): Burn {
  return status.burn ?? (status.severity === "exhausted" ? "unknown" : status.severity);
}

/** An SLO's budget; for a state kept before burn and budget were apart, from its severity. */
export function budgetOf(
  status: Pick<SloIncidentStatus, "severity" | "budget">,
): BudgetStatus | null {
  if (status.budget !== undefined) return status.budget;
  return status.severity === "exhausted" ? "exhausted" : null;
}

/** Whether a burn opens an incident under the policy. */
function burnTriggers(burn: Burn, policy: IncidentPolicy): boolean {
  return burn !== "normal" && policy.openIncidentOn.includes(burn);
}

export type IncidentDecisionEvent =
  | {
      readonly kind: "opened";
      readonly incident: Incident;
      readonly causeId: string;
      readonly reason: string;
      /** When the burn began, as far as the evaluations tell: no change after it caused it. */
      readonly burnBegan: string;
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

function worst(slos: ServiceIncidentState["slos"]): {
  slo: string;
  severity: Severity;
  objective: number;
} | null {
  let found: { slo: string; severity: Severity; objective: number } | null = null;
  for (const [slo, status] of Object.entries(slos)) {
    if (found === null || SEVERITY_RANK[status.severity] > SEVERITY_RANK[found.severity]) {
      found = { slo, severity: status.severity, objective: status.objective };
    }
  }
  return found;
}

/**
 * Folds one evaluation into a service's incident state. Opens an incident when none is active (one
 * active incident per service) and an SLO burns at a level of `openIncidentOn`, or its budget
 * becomes exhausted (with `exhausted` listed); escalates its class when the burn gets worse; and
 * resolves an SLO incident once every SLO's burn has been normal for `resolveAfterMs`, even while
 * a budget stays spent. Evidence older than what is known for that SLO is ignored, so replicas that
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
    if (!uncovered || !burnTriggers(evaluation.burn, policy)) {
      return foldLateEvidence(state, evaluation, policy, active);
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
          burnBegan: at,
        },
      ],
      changed: true,
    };
  }

  const latest: SloIncidentStatus = {
    severity: evaluation.severity,
    burn: evaluation.burn,
    budget: evaluation.budget,
    at,
    objective: evaluation.objective,
  };
  const slos = { ...state.slos, [evaluation.slo]: latest };
  const burning = Object.values(slos).some((s) => BURN_RANK[burnOf(s)] > 0);
  const burningSince = burning ? (state.burningSince ?? at) : null;
  const burnedAt = state.lastBurningAt ?? null;
  const lastBurningAt =
    evaluation.burn === "normal" || (burnedAt !== null && burnedAt > at) ? burnedAt : at;
  const events: IncidentDecisionEvent[] = [];
  let incident = active;
  const current = worst(slos);

  if (incident === null) {
    // A budget that becomes exhausted opens one; one that stays spent (after a person resolved
    // its incident) does not. A burn opens one for as long as it lasts.
    const exhausts =
      policy.openIncidentOn.includes("exhausted") &&
      evaluation.budget === "exhausted" &&
      (known === undefined || budgetOf(known) !== "exhausted");
    const trigger: [string, SloIncidentStatus] | undefined = exhausts
      ? [evaluation.slo, latest]
      : Object.entries(slos).find(([, s]) => burnTriggers(burnOf(s), policy));
    if (trigger !== undefined) {
      const [slo, status] = trigger;
      const opened = openIncident(evaluation.service, slo, status, at, newIncidentId());
      incident = opened;
      events.push({
        kind: "opened",
        incident: opened,
        causeId: evaluation.id,
        reason: opened.transitions[0]?.reason ?? "",
        burnBegan: burningSince ?? at,
      });
    }
    return {
      state: {
        ...state,
        slos,
        incident: incident ?? state.incident,
        healthySince: null,
        burningSince,
        lastBurningAt,
      },
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

  // The burn resolves an SLO incident, whatever is left of the budget (a spent budget keeps
  // promotion blocked through the gate and its freeze, not the incident open). A policy
  // incident is resolved by the correction of its violations, or once mitigated.
  const allBurnNormal = Object.values(slos).every((s) => burnOf(s) === "normal");
  const healthySince =
    allBurnNormal && resolvesOnBurn(incident) ? (state.healthySince ?? at) : null;
  const resolution = resolveIfHealthy(incident, healthySince, at, policy);
  return {
    state: {
      ...state,
      slos,
      incident: resolution.incident,
      healthySince: resolution.healthySince,
      burningSince,
      lastBurningAt,
    },
    events: [...events, ...resolution.events],
    changed: true,
  };
}

/** Whether an incident resolves once every burn is normal: an SLO incident, or a mitigated one. */
function resolvesOnBurn(incident: Incident): boolean {
  return incident.origin === "slo" || incident.state === "mitigated";
}

/** Resolves the incident at `at` when every burn has been normal since `healthySince` long enough. */
function resolveIfHealthy(
  incident: Incident,
  healthySince: string | null,
  at: string,
  policy: IncidentPolicy,
): { incident: Incident; healthySince: string | null; events: IncidentDecisionEvent[] } {
  if (healthySince === null || Date.parse(at) - Date.parse(healthySince) < policy.resolveAfterMs) {
    return { incident, healthySince, events: [] };
  }
  const result = transitionIncident(incident, {
    to: "resolved",
    initiator: "system",
    actor: "system",
    reason: `every SLO's burn normal since ${healthySince}`,
    at,
  });
  if (!result.ok) return { incident, healthySince, events: [] };
  return {
    incident: result.incident,
    healthySince: null,
    events: [{ kind: "transitioned", incident: result.incident, transition: result.transition }],
  };
}

/**
 * Evidence older than what is known for its SLO (it arrived late): it does not overwrite the
 * SLO's state, but it tells how long the burns have been normal, so an incident resolves whatever
 * order replicas saw the evaluations in. A late burn makes the healthy time start again (later,
 * with the next normal evaluation); a late normal evaluation newer than every known burn moves it
 * back to itself.
 */
function foldLateEvidence(
  state: ServiceIncidentState,
  evaluation: EvaluationInput,
  policy: IncidentPolicy,
  active: Incident | null,
): IncidentDecision {
  const at = evaluation.evaluatedAt;
  const unchanged = { state, events: [], changed: false };
  const lastBurningAt = state.lastBurningAt ?? null;
  if (evaluation.burn !== "normal") {
    const newer = lastBurningAt === null || at > lastBurningAt;
    const undone = state.healthySince !== null && state.healthySince <= at;
    if (!newer && !undone) return unchanged;
    return {
      state: {
        ...state,
        lastBurningAt: newer ? at : lastBurningAt,
        healthySince: undone ? null : state.healthySince,
      },
      events: [],
      changed: true,
    };
  }
  const allBurnNormal = Object.values(state.slos).every((s) => burnOf(s) === "normal");
  const earlier =
    active !== null &&
    resolvesOnBurn(active) &&
    allBurnNormal &&
    (lastBurningAt === null || at > lastBurningAt) &&
    (state.healthySince === null || at < state.healthySince);
  if (!earlier) return unchanged;
  const newest = Object.values(state.slos)
    .map((s) => s.at)
    .reduce((max, t) => (t > max ? t : max), at);
  const resolution = resolveIfHealthy(active, at, newest, policy);
  return {
    state: { ...state, incident: resolution.incident, healthySince: resolution.healthySince },
    events: resolution.events,
    changed: true,
  };
}
