import { ACTIVE_INCIDENT_STATES } from "@safedeploy/schema";
import type { IncidentClass, IncidentOrigin, IncidentState, Severity } from "@safedeploy/schema";

/**
 * The incident lifecycle: detected → investigating → mitigated → resolved → postmortem-complete.
 * Pure: every function takes the time it acts at and returns a new value.
 */

/** Who may make a transition: the system (automatic) or a person (through the API). */
export type Initiator = "system" | "human";

/** Legal transitions and who may make them. Anything absent is refused. */
export const INCIDENT_TRANSITIONS: Readonly<
  Record<IncidentState, Readonly<Partial<Record<IncidentState, readonly Initiator[]>>>>
> = {
  detected: {
    investigating: ["human"],
    mitigated: ["system", "human"],
    resolved: ["system", "human"],
  },
  investigating: { mitigated: ["system", "human"], resolved: ["system", "human"] },
  // A mitigation that did not hold sends the incident back to investigation.
  mitigated: { investigating: ["human"], resolved: ["system", "human"] },
  resolved: { "postmortem-complete": ["human"] },
  "postmortem-complete": {},
};

/** States in which a service still has an open incident (one at most per service). */
export const ACTIVE_STATES: readonly IncidentState[] = ACTIVE_INCIDENT_STATES;

export function isActive(state: IncidentState): boolean {
  return ACTIVE_STATES.includes(state);
}

export interface Transition {
  readonly from: IncidentState | null;
  readonly to: IncidentState;
  readonly at: string;
  readonly actor: string;
  readonly reason: string;
  readonly link?: string;
}

export interface Incident {
  readonly id: string;
  readonly service: string;
  /** A burning SLO, or a structural policy violation (then `slo` is null). */
  readonly origin: IncidentOrigin;
  readonly slo: string | null;
  readonly state: IncidentState;
  readonly severity: Severity;
  readonly class: IncidentClass;
  readonly openedAt: string;
  readonly updatedAt: string;
  /** When the evidence that opened it was measured: for MTTD. */
  readonly detectedFrom: string;
  readonly mitigatedAt: string | null;
  readonly resolvedAt: string | null;
  readonly transitions: readonly Transition[];
}

/** Why a transition was refused; the gateway answers 409. */
export interface TransitionRefusal {
  readonly code: "illegal-transition" | "not-allowed-for-initiator" | "link-required";
  readonly message: string;
}

export type TransitionResult =
  | { readonly ok: true; readonly incident: Incident; readonly transition: Transition }
  | { readonly ok: false; readonly refusal: TransitionRefusal };

/**
 * Applies a transition if the table allows it for this initiator. Completing the postmortem needs
 * a link to the postmortem document.
 */
export function transitionIncident(
  incident: Incident,
  request: {
    readonly to: IncidentState;
    readonly initiator: Initiator;
    readonly actor: string;
    readonly reason: string;
    readonly at: string;
    readonly link?: string;
  },
): TransitionResult {
  const allowed = INCIDENT_TRANSITIONS[incident.state][request.to];
  if (allowed === undefined) {
    return {
      ok: false,
      refusal: {
        code: "illegal-transition",
        message: `an incident cannot go from ${incident.state} to ${request.to}`,
      },
    };
  }
  if (!allowed.includes(request.initiator)) {
    return {
      ok: false,
      refusal: {
        code: "not-allowed-for-initiator",
        message: `${incident.state} → ${request.to} is made by ${allowed.join(" or ")}, not by ${request.initiator}`,
      },
    };
  }
  if (request.to === "postmortem-complete" && (request.link === undefined || request.link === "")) {
    return {
      ok: false,
      refusal: { code: "link-required", message: "completing the postmortem needs a link to it" },
    };
  }
  const transition: Transition = {
    from: incident.state,
    to: request.to,
    at: request.at,
    actor: request.actor,
    reason: request.reason,
    ...(request.link === undefined ? {} : { link: request.link }),
  };
  return {
    ok: true,
    transition,
    incident: {
      ...incident,
      state: request.to,
      updatedAt: request.at,
      mitigatedAt: request.to === "mitigated" ? request.at : incident.mitigatedAt,
      resolvedAt: request.to === "resolved" ? request.at : incident.resolvedAt,
      transitions: [...incident.transitions, transition],
    },
  };
}

/**
 * Severity class from the burn severity and how strict the SLO is: a spent budget is P0; a fast
 * burn is P1 (P0 for SLOs of 99.95% and above, where minutes matter); a slow burn P2; else P3.
 */
export function incidentClass(severity: Severity, objective: number): IncidentClass {
  switch (severity) {
    case "exhausted":
      return "P0";
    case "fast-burn":
      return objective >= 99.95 ? "P0" : "P1";
    case "slow-burn":
      return "P2";
    default:
      return "P3";
  }
}

const CLASS_RANK: Readonly<Record<IncidentClass, number>> = { P0: 0, P1: 1, P2: 2, P3: 3 };

/** Whether `candidate` is a worse (more urgent) class than `current`. */
export function isWorseClass(candidate: IncidentClass, current: IncidentClass): boolean {
  return CLASS_RANK[candidate] < CLASS_RANK[current];
}

/** Mean time to detect and to resolve, in milliseconds; `null` until the incident is resolved. */
export function incidentTimings(incident: Incident): { ttdMs: number; ttrMs: number | null } {
  const opened = Date.parse(incident.openedAt);
  return {
    ttdMs: opened - Date.parse(incident.detectedFrom),
    ttrMs: incident.resolvedAt === null ? null : Date.parse(incident.resolvedAt) - opened,
  };
}
