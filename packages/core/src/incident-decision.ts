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
  /** The newest evidence of a burn that was not normal (absent in older states). */
  readonly lastBurnAt?: string | null | undefined;
  /** The earliest normal evaluation after `lastBurnAt`; null while it is not normal. */
  readonly normalSince?: string | null | undefined;
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
  /**
   * The service's declared SLOs: an incident resolves only once each has been evaluated normal
   * (one not heard from yet cannot be called healthy). Absent: the SLOs evaluated so far.
   */
  readonly sloNames?: readonly string[];
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
 * What an evaluation tells about how long its SLO's burn has been normal: `lastBurnAt`, the newest
 * evidence of a burn that was not normal, and `normalSince`, the earliest normal evaluation after
 * it. Folded whatever order evaluations arrive in: a late normal one before the last burn tells
 * nothing, a late burn after `normalSince` makes the normal time start again (with the next
 * normal evaluation after it).
 */
function withBurnEvidence(
  status: SloIncidentStatus | undefined,
  burn: Burn,
  at: string,
  legacyHealthySince: string | null,
): Pick<SloIncidentStatus, "lastBurnAt" | "normalSince"> {
  const lastBurnAt = status?.lastBurnAt ?? null;
  // States kept before this was tracked per SLO: normal since the service's healthy time.
  const normalSince =
    status?.normalSince !== undefined
      ? status.normalSince
      : status !== undefined && burnOf(status) === "normal"
        ? (legacyHealthySince ?? status.at)
        : null;
  if (burn === "normal") {
    if (lastBurnAt !== null && at <= lastBurnAt) return { lastBurnAt, normalSince };
    return { lastBurnAt, normalSince: normalSince === null || at < normalSince ? at : normalSince };
  }
  const last = lastBurnAt === null || at > lastBurnAt ? at : lastBurnAt;
  return {
    lastBurnAt: last,
    normalSince: normalSince !== null && normalSince <= last ? null : normalSince,
  };
}

/**
 * Since when every SLO's burn has been normal: the latest of their `normalSince`, or null while
 * one burns (or has not been normal since its last burn).
 */
function healthySinceOf(slos: ServiceIncidentState["slos"]): string | null {
  let since: string | null = null;
  for (const status of Object.values(slos)) {
    if (burnOf(status) !== "normal") return null;
    const normal = status.normalSince ?? null;
    if (normal === null) return null;
    if (since === null || normal > since) since = normal;
  }
  return since;
}

/**
 * Folds one evaluation into a service's incident state. Opens an incident when none is active (one
 * active incident per service) and an SLO burns at a level of `openIncidentOn`, or its budget
 * becomes exhausted (with `exhausted` listed); escalates its class when the burn gets worse; and
 * resolves an SLO incident once every SLO's burn has been normal for `resolveAfterMs`, even while
 * a budget stays spent. Evidence older than what is known for that SLO does not overwrite it, so
 * replicas that see evaluations out of order converge on the same state.
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
  const evidence = withBurnEvidence(known, evaluation.burn, at, state.healthySince);

  if (stale) {
    // Older than what is known: it must not overwrite the SLO's state, but it tells how long the
    // burn has been normal, and a burn it shows still counts if no incident covers it, so the
    // outcome depends on what arrived, not in which order.
    const slos = { ...state.slos, [evaluation.slo]: { ...known, ...evidence } };
    const closedAt = state.incident?.resolvedAt ?? null;
    const uncovered =
      active === null && (closedAt === null || Date.parse(at) > Date.parse(closedAt));
    if (!uncovered || !burnTriggers(evaluation.burn, policy)) {
      return foldLateEvidence(state, slos, policy, active);
    }
    const opened = openIncident(
      evaluation.service,
      evaluation.slo,
      { severity: evaluation.severity, objective: evaluation.objective, at },
      at,
      newIncidentId(),
    );
    // Newer evidence may already show the burn over: then it resolves at once, as it would have
    // had the evaluations arrived in order.
    const newest = Object.values(slos)
      .map((s) => s.at)
      .reduce((max, t) => (t > max ? t : max), at);
    const resolution = resolveIfHealthy(opened, slos, newest, policy);
    return {
      state: { ...state, slos, incident: resolution.incident, healthySince: healthySinceOf(slos) },
      events: [
        {
          kind: "opened",
          incident: opened,
          causeId: evaluation.id,
          reason: opened.transitions[0]?.reason ?? "",
          burnBegan: at,
        },
        ...resolution.events,
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
    ...evidence,
  };
  const slos = { ...state.slos, [evaluation.slo]: latest };
  const burning = Object.values(slos).some((s) => BURN_RANK[burnOf(s)] > 0);
  const burningSince = burning ? (state.burningSince ?? at) : null;
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
        healthySince: healthySinceOf(slos),
        burningSince,
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
  const resolution = resolveIfHealthy(incident, slos, at, policy);
  return {
    state: {
      ...state,
      slos,
      incident: resolution.incident,
      healthySince: healthySinceOf(slos),
      burningSince,
    },
    events: [...events, ...resolution.events],
    changed: true,
  };
}

/** Whether an incident resolves once every burn is normal: an SLO incident, or a mitigated one. */
function resolvesOnBurn(incident: Incident): boolean {
  return incident.origin === "slo" || incident.state === "mitigated";
}

/**
 * Resolves the incident at `at` when every SLO's burn has been normal for `resolveAfter`: since
 * the latest of their normal times, up to the oldest of their latest evaluations (each SLO's own
 * evidence must reach the end of that time, so one whose evaluations arrive late cannot be
 * resolved past).
 */
function resolveIfHealthy(
  incident: Incident,
  slos: ServiceIncidentState["slos"],
  at: string,
  policy: IncidentPolicy,
): { incident: Incident; events: IncidentDecisionEvent[] } {
  const unchanged = { incident, events: [] };
  const healthySince = healthySinceOf(slos);
  if (healthySince === null || !resolvesOnBurn(incident)) return unchanged;
  if ((policy.sloNames ?? []).some((name) => slos[name] === undefined)) return unchanged;
  const reached = Math.min(...Object.values(slos).map((s) => Date.parse(s.at)));
  if (reached - Date.parse(healthySince) < policy.resolveAfterMs) return unchanged;
  const result = transitionIncident(incident, {
    to: "resolved",
    initiator: "system",
    actor: "system",
    reason: `every SLO's burn normal since ${healthySince}`,
    at,
  });
  if (!result.ok) return unchanged;
  return {
    incident: result.incident,
    events: [{ kind: "transitioned", incident: result.incident, transition: result.transition }],
  };
}

/** Late evidence that opens nothing: its SLO's normal time is kept, and may resolve. */
function foldLateEvidence(
  state: ServiceIncidentState,
  slos: ServiceIncidentState["slos"],
  policy: IncidentPolicy,
  active: Incident | null,
): IncidentDecision {
  const same = Object.keys(slos).every((key) => {
    const before = state.slos[key];
    const after = slos[key];
    return before?.lastBurnAt === after?.lastBurnAt && before?.normalSince === after?.normalSince;
  });
  if (same) return { state, events: [], changed: false };
  const newest = Object.values(slos)
    .map((s) => s.at)
    .reduce((max, t) => (t > max ? t : max), "");
  const resolution =
    active === null
      ? { incident: state.incident, events: [] }
      : resolveIfHealthy(active, slos, newest, policy);
  return {
    state: { ...state, slos, incident: resolution.incident, healthySince: healthySinceOf(slos) },
    events: resolution.events,
    changed: true,
  };
}

/** A service's budget evaluation: every SLO's, at one moment. */
export interface ServiceEvaluationInput {
  readonly id: string;
  readonly service: string;
  readonly slos: readonly Omit<EvaluationInput, "id" | "service">[];
}

/**
 * Folds every SLO of one service-wide evaluation into the service's incident state, in order, as
 * if each had arrived alone: the first burning SLO opens the incident, a later worse one
 * escalates it. Unchanged when every SLO was older than what is known.
 */
export function decideIncidentOnEvaluation(
  state: ServiceIncidentState,
  evaluation: ServiceEvaluationInput,
  policy: IncidentPolicy,
  newIncidentId: () => string,
): IncidentDecision {
  let current = state;
  const events: IncidentDecisionEvent[] = [];
  let changed = false;
  for (const slo of evaluation.slos) {
    const decision = decideIncident(
      current,
      { ...slo, id: evaluation.id, service: evaluation.service },
      policy,
      newIncidentId,
    );
    if (!decision.changed) continue;
    current = decision.state;
    events.push(...decision.events);
    changed = true;
  }
  return { state: current, events, changed };
}
